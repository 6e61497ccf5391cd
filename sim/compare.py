"""Compare the paper's baselines, its ablations, full LobRA and ours on one scenario, by simulation.

task-sequential, task-fused: the baselines. lobra-length: LobRA's heterogeneous plan with length-based dispatch and
fixed power-of-two buckets; lobra-balanced: the same plan with balanced dispatch; lobra: + dynamic bucketing (the
full method); lobra-plus (ours): its own plan, packing and the fast balanced dispatcher. The ablations reuse the
lobra plan, planned once.

Beside them, what certifies the gaps, all on the simulated steps: lower-bound, the fluid bound (every sequence on its
cheapest config, GPUs shared fractionally; policies/planners/base.py); integer-bound, the least over every deployable
plan of its relaxation (policies/planners/certify.py); and on clusters of at most 16 GPUs optimum, the best of every
plan under lobra-plus's dispatcher, simulated like the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from lobra.costmodel import CostModel
from lobra.policies.dispatchers import DispatcherConfig
from lobra.policies.planners import PLANNERS
from lobra.policies.planners.base import (
    WorkloadSample,
    lower_bound_cut_pct,
    lower_bound_gpu_seconds,
    workload_memory,
)
from lobra.policies.planners.certify import EXHAUSTIVE_MAX_GPUS, exhaustive_optimum, integer_lower_bound
from lobra.policies.solver import DEFAULT_NODE_LIMIT, DEFAULT_TIME_LIMIT_S
from lobra.sim.config import Policy, SimConfig
from lobra.sim.simulator import Simulator
from lobra.traces import Workload

POLICIES = ["task-sequential", "task-fused", "lobra-length", "lobra-balanced", "lobra", "lobra-plus"]
BOUNDS = ["lower-bound", "integer-bound"]  # rows that are bounds, not runs
POW2 = DispatcherConfig(bucketing="pow2")


@dataclass
class CompareRow:
    policy: str
    plan: str
    step_time_s: float
    gpu_seconds_per_step: float
    truncated_pct: float = 0.0  # of the sampled tokens: cut off sequences longer than the plan holds
    dropped_pct: float = 0.0  # in sequences dropped whole for that

    @property
    def cut_pct(self) -> float:
        return self.truncated_pct + self.dropped_pct

    @property
    def equal_work_gpu_seconds(self) -> float:
        """GPU-seconds per step had it trained every sampled token at its own rate: a plan that cuts tokens pays
        for them instead of looking cheaper."""
        return self.gpu_seconds_per_step / (1 - self.cut_pct / 100)

    def to_dict(self) -> dict:
        return {
            "policy": self.policy,
            "plan": self.plan,
            "step_time_s": self.step_time_s,
            "gpu_seconds_per_step": self.gpu_seconds_per_step,
            "truncated_pct": self.truncated_pct,
            "dropped_pct": self.dropped_pct,
            "equal_work_gpu_seconds": self.equal_work_gpu_seconds,
        }


def compare(
    workload: Workload,
    cost: CostModel,
    num_gpus: int,
    steps: int = 10,
    seed: int = 0,
    ilp_time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
    ilp_node_limit: int = DEFAULT_NODE_LIMIT,
    beyond_capacity: str = "error",
) -> list[CompareRow]:
    """beyond_capacity: what every policy does with sequences longer than its plan holds (DispatcherConfig)."""
    planner_opts = {"seed": seed} | ({} if workers is None else {"workers": workers})
    planner_opts |= {"time_limit_s": ilp_time_limit_s, "node_limit": ilp_node_limit}
    config = SimConfig(steps=steps, seed=seed)

    def planned(name: str, **opts) -> Policy:
        own = PLANNERS.get(name).dispatcher_config.with_changes(beyond_capacity=beyond_capacity)
        return Policy.of_planner(name, dispatcher_config=own, **opts)

    lobra = planned("lobra", **planner_opts).make_planner().plan(workload, cost, num_gpus)
    ilp = DispatcherConfig(
        time_limit_s=ilp_time_limit_s, node_limit=ilp_node_limit, beyond_capacity=beyond_capacity
    )
    pow2 = replace(POW2, beyond_capacity=beyond_capacity)
    policies = {
        "task-sequential": planned("task-sequential", **planner_opts),
        "task-fused": planned("task-fused", **planner_opts),
        "lobra-length": Policy("lobra-length", "length", pow2, plan=lobra.plan),
        "lobra-balanced": Policy(
            "lobra-balanced",
            "balanced-ilp",
            replace(ilp, bucketing="pow2"),
            plan=lobra.plan,
        ),
        "lobra": Policy("lobra", "balanced-ilp", ilp, plan=lobra.plan),
        "lobra-plus": planned("lobra-plus", **planner_opts),
    }
    rows = []

    def run(name: str, policy: Policy | Callable[[], Policy]) -> None:
        if progress:
            progress(name)
        policy = policy() if callable(policy) else policy
        summary = Simulator(workload, cost, num_gpus, policy, config).run().summary
        rows.append(
            CompareRow(
                name,
                summary["plan"],
                summary["step_time_s"],
                summary["gpu_seconds_per_step"],
                summary["truncated_pct"] or 0.0,
                summary["dropped_pct"] or 0.0,
            )
        )

    for name, policy in policies.items():
        run(name, policy)
    if num_gpus <= EXHAUSTIVE_MAX_GPUS:
        run("optimum", lambda: _optimum(workload, cost, num_gpus, steps, seed, policies["lobra-plus"]))
    sample, own = _simulated_steps(workload, cost, steps, seed)
    cut = lower_bound_cut_pct(sample, own, num_gpus)  # the bounds train what the largest config holds
    fluid = lower_bound_gpu_seconds(sample, own, num_gpus)
    integer = integer_lower_bound(sample, own, num_gpus, ilp_node_limit, ilp_time_limit_s).gpu_seconds
    for name, bound in zip(BOUNDS, (fluid, integer), strict=True):
        rows.append(CompareRow(name, "-", bound / num_gpus, bound, cut))
    return rows


def _simulated_steps(workload: Workload, cost: CostModel, steps: int, seed: int):
    """The steps the simulations run (the same sampler, seed and order, every task active) and the cost model
    with the workload's memory, as the planners see it."""
    own = cost.with_memory(workload_memory(workload, cost.memory))
    return WorkloadSample.draw(workload, steps, seed), own


def _optimum(workload, cost, num_gpus, steps, seed, plus: Policy) -> Policy:
    """The best plan for the simulated steps under lobra-plus's dispatcher, every plan tried."""
    sample, own = _simulated_steps(workload, cost, steps, seed)
    plan, _ = exhaustive_optimum(sample, own, num_gpus, plus.dispatcher, plus.dispatcher_config)
    return Policy("optimum", plus.dispatcher, plus.dispatcher_config, plan=plan)


def reductions(rows: list[CompareRow]) -> list[dict]:
    """Each row with its GPU-seconds reduction against both baselines and its gap to the lower bound (in %), all
    at equal work (equal_work_gpu_seconds: a row that cuts tokens pays for them)."""
    by = {r.policy: r.equal_work_gpu_seconds for r in rows}
    out = []
    for r in rows:
        d = r.to_dict()
        for base in ("task-sequential", "task-fused"):
            d[f"vs_{base}_pct"] = 100 * (1 - r.equal_work_gpu_seconds / by[base])
        d["above_lower_bound_pct"] = 100 * (r.equal_work_gpu_seconds / by["lower-bound"] - 1)
        # the fluid bound lies below the integer one by construction; its "gap" would read as a run below a bound
        above = 100 * (r.equal_work_gpu_seconds / by["integer-bound"] - 1)
        d["above_integer_bound_pct"] = None if r.policy == "lower-bound" else above
        out.append(d)
    return out
