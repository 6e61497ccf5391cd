"""What certifies a plan's gap: a lower bound on GPU-seconds per step that knows replicas come in whole numbers,
and, on clusters small enough to enumerate, the best plan under a given dispatcher.

The fluid bound (base.lower_bound_gpu_seconds) sends every sequence to its cheapest config and lets configs split
GPUs fractionally; no deployable plan reaches it. This one is the minimum, over every plan the cluster can deploy,
of that plan's linear relaxation (policies/lp.py: replica counts whole, sequences fractional across them, each
pipelined replica its least fill and drain). It needs no enumeration: for a makespan T, "some plan finishes the step
within T" is a mixed-integer feasibility problem,

    sum_s a_sc y_sc <= (T - B_c) x_c   (each config's share of the step fits its x_c replicas),
    sum_c y_sc = n_s                   (every sequence placed, on a config that holds it),
    sum_c g_c x_c <= N,   x_c integer,

and the least such T is found by bisection. A programme its node limit stops is counted as feasible, so the bound
stays a bound (only looser). The step's gradient sync and optimizer are added at their least over the configs.

Both hold under the planners' cost tables, the model every estimate shares; a replica a dispatch leaves idle pays
no fill and drain, which the bound charges every replica it uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from lobra.costmodel import CostModel, DeploymentPlan, ParallelConfig
from lobra.policies.costs import CostTable, min_bubble_s
from lobra.policies.dispatchers import DispatcherConfig
from lobra.policies.planners.base import WorkloadSample, _feasible, evaluate_plan
from lobra.policies.planners.lobra import EXHAUSTIVE_MAX_GPUS
from lobra.policies.planners.search import enumerate_plans
from lobra.policies.quiet_milp import milp
from lobra.policies.registry import PolicyError
from lobra.policies.solver import DEFAULT_NODE_LIMIT, DEFAULT_TIME_LIMIT_S, milp_options
from scipy.optimize import Bounds, LinearConstraint

GRANULE = 64  # lengths are rounded down to this (costs grow with length, so the bound still holds)
REL_TOL = 1e-3  # bisection stops when the bracket is this narrow


@dataclass(frozen=True)
class IntegerBound:
    gpu_seconds: float  # per step, the bound
    proven: bool  # every programme of the bisection decided; False: a node limit stopped one (still a bound)


def integer_lower_bound(
    sample: WorkloadSample,
    cost: CostModel,
    num_gpus: int,
    node_limit: int = DEFAULT_NODE_LIMIT,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> IntegerBound:
    table = CostTable(cost, packing=True)
    configs = _feasible(cost, num_gpus)
    largest = max(table.max_tokens(c) for c in configs)
    lengths = np.maximum(np.minimum(sample.lengths(), largest) // GRANULE * GRANULE, GRANULE)
    values, counts = np.unique(lengths, return_counts=True)
    per_step = {int(s): n / len(sample.steps) for s, n in zip(values, counts, strict=True)}
    bubbles = {c: min_bubble_s(c, list(per_step), table) for c in configs}
    feasible = _Feasibility(
        per_step, configs, table, bubbles, num_gpus, milp_options(time_limit_s, node_limit)
    )
    # Below the makespan with every replica count fractional nothing is feasible; double up to a feasible T.
    lo = feasible.relaxed_makespan()
    hi = 2 * lo
    while not feasible(hi):
        lo, hi = hi, 2 * hi
    while hi - lo > REL_TOL * lo:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if feasible(mid) else (mid, hi)
    overhead = min(cost.dp_sync_s(c, 1, False) + cost.optimizer_s(c) for c in configs)
    return IntegerBound((lo + overhead) * num_gpus, feasible.proven)


def exhaustive_optimum(
    sample: WorkloadSample,
    cost: CostModel,
    num_gpus: int,
    dispatcher: str,
    config: DispatcherConfig,
    progress=None,
) -> tuple[DeploymentPlan, float]:
    """(plan, mean step time) of the best of every plan the cluster can deploy, each scored by dispatching the
    sampled steps on it as `dispatcher` will (progress: called once per plan scored)."""
    if num_gpus > EXHAUSTIVE_MAX_GPUS:
        raise PolicyError(f"the exhaustive optimum is for clusters of at most {EXHAUSTIVE_MAX_GPUS} GPUs")
    configs = _feasible(cost, num_gpus)
    longest = int(min(sample.lengths().max(), max(cost.max_tokens(c) for c in configs)))
    must_hold = [c for c in configs if cost.max_tokens(c) >= longest]
    best: tuple[DeploymentPlan, float] | None = None
    for plan in enumerate_plans(configs, num_gpus, None, must_hold):
        step = evaluate_plan(plan, sample, cost, dispatcher, config)
        if best is None or step < best[1]:
            best = (plan, step)
        if progress:
            progress()
    return best


class _Feasibility:
    """Whether some plan of num_gpus GPUs finishes the step's relaxation within a makespan T."""

    def __init__(self, per_step, configs: list[ParallelConfig], table: CostTable, bubbles, num_gpus, options):
        self.lengths = sorted(per_step)
        self.need = np.array([per_step[s] for s in self.lengths])
        self.configs, self.bubbles, self.num_gpus, self.options = configs, bubbles, num_gpus, options
        self.pairs = [
            (g, j, lc.alpha_s + lc.beta_s / lc.per_mb)
            for g, s in enumerate(self.lengths)
            for j, c in enumerate(configs)
            if (lc := table.length_cost(c, s)) is not None
        ]
        self.proven = True

    def relaxed_makespan(self) -> float:
        """The fluid makespan (every length on its cheapest config, GPUs shared fractionally, no bubble)."""
        gpu_s = sum(
            self.need[g] * min(a * self.configs[j].num_gpus for gg, j, a in self.pairs if gg == g)
            for g in range(len(self.lengths))
        )
        return gpu_s / self.num_gpus

    def __call__(self, makespan: float) -> bool:
        n_y, n_x = len(self.pairs), len(self.configs)
        room = np.array([makespan - self.bubbles[c] for c in self.configs])
        pairs = [(g, j, a) for g, j, a in self.pairs if room[j] > 0]
        if {g for g, _, _ in pairs} != set(range(len(self.lengths))):
            return False  # some length fits no config whose bubble leaves room within T
        n_y = len(pairs)
        load = np.zeros((n_x, n_y + n_x))
        place = np.zeros((len(self.lengths), n_y + n_x))
        for p, (g, j, a) in enumerate(pairs):
            load[j, p] = a
            place[g, p] = 1.0
        load[np.arange(n_x), n_y + np.arange(n_x)] = -np.maximum(room, 0.0)
        gpus = np.zeros(n_y + n_x)
        gpus[n_y:] = [c.num_gpus for c in self.configs]
        upper = np.concatenate([np.full(n_y, np.inf), [self.num_gpus // c.num_gpus for c in self.configs]])
        result = milp(
            gpus,
            constraints=[LinearConstraint(load, -np.inf, 0.0), LinearConstraint(place, self.need, self.need)],
            integrality=np.concatenate([np.zeros(n_y), np.ones(n_x)]),
            bounds=Bounds(0.0, upper),
            options=self.options,
        )
        if result.status == 2:  # infeasible: no plan within the cluster's replica counts
            return False
        if result.status == 0:
            return result.fun <= self.num_gpus + 1e-6
        self.proven = False
        dual = getattr(result, "mip_dual_bound", None)
        return dual is None or not np.isfinite(dual) or dual <= self.num_gpus + 1e-6
