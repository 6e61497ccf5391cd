"""The per-plan integer programme of the LobRA planner (paper Sec. 5).

With the plan fixed, n_ij sequences of bucket i go to each replica of config j (identical replicas take identical
shares), k_ij >= n_ij / m_ij micro-batches; sum_j d_j n_ij covers the expected count c_i; a pipelined config adds
its 1F1B bubble u_j >= (pp - 1) x a full micro-batch's stage time of every bucket it runs. Minimise the makespan z.
"""

from __future__ import annotations

import numpy as np
from lobra.costmodel import DeploymentPlan
from lobra.policies.costs import CostTable
from lobra.policies.quiet_milp import milp
from lobra.policies.registry import PolicyError
from scipy.optimize import Bounds, LinearConstraint
from scipy.sparse import coo_matrix


def plan_makespan_ilp(
    plan: DeploymentPlan, counts: dict[int, float], table: CostTable, time_limit_s: float
) -> float:
    configs = [c for c, _ in plan.entries]
    d = dict(plan.entries)
    lengths = sorted(counts)
    pairs = [(i, j) for i, s in enumerate(lengths) for j, c in enumerate(configs) if table.length_cost(c, s)]
    for i, s in enumerate(lengths):
        if not any(ii == i for ii, _ in pairs):
            raise PolicyError(f"plan {plan} has no replica that holds {s} tokens")
    piped = [j for j, c in enumerate(configs) if c.pp > 1]
    n_pairs = len(pairs)
    # variables: n (n_pairs) | k (n_pairs) | y (n_pairs) | u (len(piped)) | z
    n_var = 3 * n_pairs + len(piped) + 1
    z = n_var - 1
    u_of = {j: 3 * n_pairs + k for k, j in enumerate(piped)}
    rows, cols, vals, lo, hi = [], [], [], [], []

    def add(entries, low, high):
        r = len(lo)
        for c, v in entries:
            rows.append(r)
            cols.append(c)
            vals.append(v)
        lo.append(low)
        hi.append(high)

    for i, s in enumerate(lengths):
        add([(p, float(d[configs[j]])) for p, (ii, j) in enumerate(pairs) if ii == i], counts[s], np.inf)
    load = {j: [] for j in range(len(configs))}
    ub = np.full(n_var, np.inf)
    for p, (i, j) in enumerate(pairs):
        lc = table.length_cost(configs[j], lengths[i])
        cap = float(np.ceil(counts[lengths[i]]))
        ub[p], ub[n_pairs + p], ub[2 * n_pairs + p] = cap, np.ceil(cap / lc.per_mb), 1.0 if j in u_of else 0.0
        add([(n_pairs + p, float(lc.per_mb)), (p, -1.0)], 0.0, np.inf)
        load[j] += [(p, lc.alpha_s), (n_pairs + p, lc.beta_s)]
        if j in u_of:
            add([(u_of[j], 1.0), (2 * n_pairs + p, -(configs[j].pp - 1) * lc.full_mb_s)], 0.0, np.inf)
            add([(p, 1.0), (2 * n_pairs + p, -cap)], -np.inf, 0.0)
    for j, terms in load.items():
        add(terms + ([(u_of[j], 1.0)] if j in u_of else []) + [(z, -1.0)], -np.inf, 0.0)
    objective = np.zeros(n_var)
    objective[z] = 1.0
    integrality = np.zeros(n_var)
    integrality[: 3 * n_pairs] = 1
    matrix = coo_matrix((vals, (rows, cols)), shape=(len(lo), n_var)).tocsr()
    result = milp(
        objective,
        integrality=integrality,
        bounds=Bounds(np.zeros(n_var), ub),
        constraints=LinearConstraint(matrix, lo, hi),
        # Plans are compared with each other: a 1% optimality gap is plenty, and far cheaper to prove.
        options={"time_limit": time_limit_s, "disp": False, "mip_rel_gap": 1e-2},
    )
    if result.x is None:
        raise PolicyError(f"the planning programme for {plan} found no solution in {time_limit_s} s")
    return float(result.x[z])
