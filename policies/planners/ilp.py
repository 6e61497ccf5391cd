"""The per-plan integer programme of the LobRA planner (paper Sec. 5).

With the plan fixed, n_ij sequences of bucket i go to config j's d_j replicas in k_ij >= n_ij / m_ij micro-batches
(integers); sum_j n_ij covers the expected count c_i; each replica of j carries (alpha n_ij + beta k_ij) / d_j, its
config's work shared evenly (the dispatchers balance within a config); a pipelined config adds its 1F1B bubble
u_j >= (pp - 1) x a full micro-batch's stage time of every bucket it runs. Minimise the makespan z.

Giving every replica of a config the same integer share instead (the form this replaced) forces, with many
replicas and few sequences of a bucket, each replica to take one (24 replicas, 5 sequences: 24 sequences of work):
it rated plans of many small replicas up to half again slower than they run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from lobra.costmodel import DeploymentPlan
from lobra.policies.costs import CostTable
from lobra.policies.quiet_milp import milp
from lobra.policies.registry import PolicyError
from lobra.policies.solver import milp_options, stopped_by_clock
from scipy.optimize import Bounds, LinearConstraint
from scipy.sparse import coo_matrix


@dataclass(frozen=True)
class IlpScore:
    makespan_s: float  # the best solution found
    proven: bool  # within the MIP gap of optimal; False: a limit stopped the search first
    clock_stopped: bool = False  # the limit was the wall-clock safety net: the answer depends on the load


def plan_makespan_ilp(
    plan: DeploymentPlan, counts: dict[int, float], table: CostTable, time_limit_s: float, node_limit: int
) -> IlpScore:
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
        add([(p, 1.0) for p, (ii, _) in enumerate(pairs) if ii == i], counts[s], np.inf)
    load = {j: [] for j in range(len(configs))}
    ub = np.full(n_var, np.inf)
    for p, (i, j) in enumerate(pairs):
        lc = table.length_cost(configs[j], lengths[i])
        cap = float(np.ceil(counts[lengths[i]]))
        ub[p], ub[n_pairs + p], ub[2 * n_pairs + p] = cap, np.ceil(cap / lc.per_mb), 1.0 if j in u_of else 0.0
        add([(n_pairs + p, float(lc.per_mb)), (p, -1.0)], 0.0, np.inf)
        replicas = float(d[configs[j]])
        load[j] += [(p, lc.alpha_s / replicas), (n_pairs + p, lc.beta_s / replicas)]
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
        options=milp_options(time_limit_s, node_limit),
    )
    if result.x is None:
        raise PolicyError(f"the planning programme for {plan} found no solution within its limits")
    return IlpScore(float(result.x[z]), result.status == 0, stopped_by_clock(result))
