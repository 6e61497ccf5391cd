"""The planner interface: (workload, cost model, GPU count) -> a deployment plan and its expected step time.

Planners plan on a sample of the workload: K steps drawn with the paper's stratified sampler. The same sample gives
each plan's expected per-step bucket counts and the workload's lower bound.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from lobra.costmodel import CostModel, DeploymentPlan, MemoryOptions
from lobra.policies.bucketing import DEFAULT_NUM_BUCKETS, assign_buckets, dp_buckets
from lobra.policies.costs import CostTable
from lobra.policies.dispatchers import DispatcherConfig, get_dispatcher
from lobra.policies.dispatchers.base import Dispatcher, beyond_capacity_error, check_capacity
from lobra.policies.evaluate import estimate_step
from lobra.policies.registry import PolicyError, Registry
from lobra.policies.types import StepItem
from lobra.traces import StepSampler, Workload


@dataclass(frozen=True)
class PlannerConfig:
    sample_steps: int = 8  # steps drawn to estimate the per-step length distribution
    seed: int = 0
    num_buckets: int = DEFAULT_NUM_BUCKETS
    filter_ratio: float = 1.15  # keep plans whose bound is within this factor of the best bound
    keep_at_least: int = 4
    max_scored: int = (
        12  # lobra-plus scores at most this many plans (best bounds first) by dispatching samples
    )
    window: int = 2  # replica counts explored around the fluid optimum (large clusters)
    full_enumeration_gpus: int = 16  # up to this many GPUs, enumerate every plan of the proposed configs
    # per integer programme; None: the limits of the dispatch settings planned for (policies/solver.py)
    time_limit_s: float | None = None
    node_limit: int | None = None
    workers: int = min(4, os.cpu_count() or 1)  # processes scoring the surviving plans

    def __post_init__(self) -> None:
        for key in ("sample_steps", "num_buckets", "keep_at_least", "max_scored", "workers"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise PolicyError(f"planner {key} must be a positive integer, got {value!r}")
        if self.filter_ratio < 1:
            raise PolicyError(f"planner filter_ratio must be >= 1, got {self.filter_ratio!r}")
        if self.window < 0 or (self.time_limit_s is not None and self.time_limit_s <= 0):
            raise PolicyError("planner window must be >= 0 and time_limit_s positive")
        if self.node_limit is not None and (not isinstance(self.node_limit, int) or self.node_limit < 1):
            raise PolicyError(f"planner node_limit must be a positive integer, got {self.node_limit!r}")


@dataclass(frozen=True)
class WorkloadSample:
    """K sampled steps of a workload, as the dispatchers see them."""

    steps: tuple[tuple[StepItem, ...], ...]

    @classmethod
    def draw(cls, workload: Workload, num_steps: int, seed: int = 0) -> WorkloadSample:
        sampler = StepSampler(workload, seed=seed, mode="stratified")
        steps = []
        for _ in range(num_steps):
            # Planning looks at the steady state with every task active, whatever their lengths in steps.
            items = sampler.next_step(active=workload.names)
            steps.append(tuple(StepItem(t, int(n)) for t, n in items))
        return cls(tuple(steps))

    def lengths(self) -> np.ndarray:
        return np.array([it.length for step in self.steps for it in step])

    def expected_counts(self, largest: int, num_buckets: int) -> dict[int, float]:
        """Mean sequences per step in each optimal bucket of the pooled lengths (capped at `largest`)."""
        lengths = np.minimum(self.lengths(), largest)
        bounds = dp_buckets(lengths, num_buckets)
        padded, counts = np.unique(assign_buckets(lengths, bounds), return_counts=True)
        return {int(s): c / len(self.steps) for s, c in zip(padded, counts, strict=True)}


SAMPLED_DISPATCH = "the sampled steps dispatched as they will run"


@dataclass(frozen=True)
class PlanResult:
    planner: str
    plan: DeploymentPlan | None  # None for task-sequential, whose tasks each get their own plan
    step_time_s: float
    num_gpus: int
    planning_time_s: float
    lower_bound_gpu_seconds: float
    dispatcher: str
    dispatcher_config: DispatcherConfig = field(default_factory=DispatcherConfig)
    task_plans: dict[str, DeploymentPlan] = field(default_factory=dict)
    plans_considered: int = 0
    unproven: int = 0  # plan programmes a limit stopped: scored by a feasible dispatch instead
    # of those, stopped by the wall-clock safety net: this plan may differ under another load
    clock_stopped: int = 0
    estimate: str = SAMPLED_DISPATCH  # what step_time_s is: the dispatch it plans for, or a surrogate of it
    lower_bound_cut_pct: float = 0.0  # sampled tokens beyond every config of the cluster, not in the bound
    # sampled tokens beyond the plan's largest replica: truncated or dropped, as configured
    cut_pct: float = 0.0

    @property
    def gpu_seconds_per_step(self) -> float:
        return self.step_time_s * self.num_gpus

    @property
    def plan_str(self) -> str:
        if self.plan is not None:
            return str(self.plan)
        return "; ".join(f"{task}: {plan}" for task, plan in self.task_plans.items())

    @property
    def gap_to_lower_bound(self) -> float:
        return self.gpu_seconds_per_step / self.lower_bound_gpu_seconds - 1

    def to_dict(self) -> dict:
        return {
            "planner": self.planner,
            "plan": self.plan_str,
            "step_time_s": self.step_time_s,
            "gpu_seconds_per_step": self.gpu_seconds_per_step,
            "planning_time_s": self.planning_time_s,
            "lower_bound_gpu_seconds": self.lower_bound_gpu_seconds,
            "gap_to_lower_bound_pct": 100 * self.gap_to_lower_bound,
            "num_gpus": self.num_gpus,
            "dispatcher": self.dispatcher,
            "plans_considered": self.plans_considered,
            "unproven_programmes": self.unproven,
            "clock_stopped_programmes": self.clock_stopped,
            "estimate": self.estimate,
            "beyond_capacity": self.dispatcher_config.beyond_capacity,
            "cut_pct": self.cut_pct,
        }


class Planner:
    name = "base"
    dispatcher = "balanced"
    dispatcher_config = DispatcherConfig()
    estimate = SAMPLED_DISPATCH  # what step_time_s of its PlanResult is

    def __init__(
        self,
        config: PlannerConfig | None = None,
        dispatcher_config: DispatcherConfig | None = None,
        **overrides,
    ) -> None:
        self.config = PlannerConfig(**{**(config.__dict__ if config else {}), **overrides})
        # progress(scored, to_score), called as plans are scored (the CLI's progress bar); to_score grows as the
        # search widens.
        self.progress: Callable[[int, int], None] | None = None
        self._done = self._to_score = 0
        # The dispatch settings planned for: the class's own unless the caller's dispatch runs with others.
        self.dispatcher_config = dispatcher_config or type(self).dispatcher_config

    def plan(self, workload: Workload, cost: CostModel, num_gpus: int) -> PlanResult:
        if not isinstance(num_gpus, int) or num_gpus < 1:
            raise PolicyError(f"the number of GPUs must be a positive integer, got {num_gpus!r}")
        start = time.perf_counter()
        cost = cost.with_memory(workload_memory(workload, cost.memory))
        policy = self.dispatcher_config.beyond_capacity
        if policy == "error":
            largest = max(cost.max_tokens(c) for c in _feasible(cost, num_gpus))
            for task, n in workload.longest.items():
                if n > largest:
                    where = f"the largest config of {cost.model.name} that fits {num_gpus} x {cost.gpu.name}"
                    # the cost model knows micro-batches up to its cap (where the profiles stop): more GPUs
                    # help only below it
                    if largest < cost.cap:
                        raise beyond_capacity_error(task, n, where, largest, "give more GPUs, ")
                    raise beyond_capacity_error(task, n, where, largest, note=" (the cost model's limit)")
        sample = WorkloadSample.draw(workload, self.config.sample_steps, self.config.seed)
        self._done = self._to_score = 0
        result = self.search(workload, sample, cost, num_gpus)
        largest = {}  # what each task's plan holds, under that plan's memory (a task alone on its own plan)
        for task in workload:
            plan, own = result.plan, cost
            if result.plan is None:
                plan = result.task_plans[task.name]
                own = cost.with_memory(workload_memory(Workload((task,)), cost.memory))
            check_capacity({task.name: workload.longest[task.name]}, plan, own, policy)  # else a planner bug
            largest[task.name] = max(map(own.max_tokens, plan.replicas))
        return PlanResult(
            planner=self.name,
            plan=result.plan,
            step_time_s=result.step_time_s,
            num_gpus=num_gpus,
            planning_time_s=time.perf_counter() - start,
            lower_bound_gpu_seconds=lower_bound_gpu_seconds(sample, cost, num_gpus),
            lower_bound_cut_pct=lower_bound_cut_pct(sample, cost, num_gpus),
            dispatcher=self.dispatcher,
            dispatcher_config=self.dispatcher_config,
            task_plans=result.task_plans,
            plans_considered=result.plans_considered,
            unproven=result.unproven,
            clock_stopped=result.clock_stopped,
            estimate=self.estimate,
            cut_pct=_cut_pct(sample, largest, policy == "drop"),
        )

    def search(self, workload: Workload, sample: WorkloadSample, cost: CostModel, num_gpus: int):
        raise NotImplementedError

    def dispatched_step_time(self, result: PlanResult, workload: Workload, cost: CostModel) -> float:
        """The chosen plan's mean step time over the planner's sampled steps dispatched as they will run: the
        estimate a planner scored by a surrogate (its `estimate` says which) is checked against (seconds)."""
        if result.plan is None:
            return result.step_time_s  # task-sequential's estimate is already the sampled dispatch
        cost = cost.with_memory(workload_memory(workload, cost.memory))
        sample = WorkloadSample.draw(workload, self.config.sample_steps, self.config.seed)
        return evaluate_plan(result.plan, sample, cost, self.dispatcher, self.dispatcher_config)


@dataclass(frozen=True)
class SearchResult:
    plan: DeploymentPlan | None
    step_time_s: float
    plans_considered: int = 1
    task_plans: dict[str, DeploymentPlan] = field(default_factory=dict)
    unproven: int = 0
    clock_stopped: int = 0


def workload_memory(workload: Workload, base: MemoryOptions) -> MemoryOptions:
    """Memory options for training this workload's adapters together (the largest rank for all)."""
    rank = max(t.spec.rank for t in workload)
    targets = tuple(dict.fromkeys(m for t in workload for m in t.spec.targets))
    return MemoryOptions(
        **{**base.__dict__, "num_tasks": len(workload), "lora_rank": rank, "lora_targets": targets}
    )


def evaluate_plan(
    plan: DeploymentPlan,
    sample: WorkloadSample,
    cost: CostModel,
    dispatcher: str | Dispatcher,
    config: DispatcherConfig | None = None,
) -> float:
    """Mean estimated step time of the sampled steps dispatched on this plan (by a dispatcher named with its
    config, or one given: its cost tables stay warm across plans)."""
    d = dispatcher if isinstance(dispatcher, Dispatcher) else get_dispatcher(dispatcher, config)
    times = [estimate_step(d.dispatch(step, plan, cost), cost).step_time_s for step in sample.steps]
    return float(np.mean(times))


def lower_bound_gpu_seconds(sample: WorkloadSample, cost: CostModel, num_gpus: int) -> float:
    """Mean per step of: every sequence on the config that processes it with the fewest GPU-seconds (among those
    that fit the cluster and hold it), perfectly packed (its share of a full micro-batch's fixed cost), perfectly
    balanced, padded only to 16 tokens; no pipeline bubble, no gradient sync."""
    table = CostTable(cost, packing=True)
    configs = _feasible(cost, num_gpus)
    largest = max(table.max_tokens(c) for c in configs)
    values, counts = np.unique(-(-np.minimum(sample.lengths(), largest) // 16) * 16, return_counts=True)
    total = sum(
        n * min(table.gpu_seconds_per_seq(c, int(s)) for c in configs)
        for s, n in zip(values, counts, strict=True)
    )
    return total / len(sample.steps)


PLANNERS: Registry[Planner] = Registry("planner")


def _cut_pct(sample: WorkloadSample, largest: dict[str, int], drop: bool) -> float:
    """The share of the sampled tokens not trained: beyond what each task's plan holds (largest: per task), or
    whole sequences when they are dropped."""
    items = [it for step in sample.steps for it in step]
    total = sum(it.length for it in items)
    cut = sum(
        (it.length if drop else it.length - largest[it.task]) for it in items if it.length > largest[it.task]
    )
    return 100 * cut / total if total else 0.0


def lower_bound_cut_pct(sample: WorkloadSample, cost: CostModel, num_gpus: int) -> float:
    """The share of the sampled tokens the lower bound does not train: what no config of the cluster holds."""
    largest = max(cost.max_tokens(c) for c in _feasible(cost, num_gpus))
    lengths = sample.lengths()
    return float(100 * (1 - np.minimum(lengths, largest).sum() / lengths.sum())) if lengths.size else 0.0


def _feasible(cost: CostModel, num_gpus: int) -> list:
    configs = [c for c, n in cost.feasible_configs(num_gpus).items() if n]
    if not configs:
        raise PolicyError(f"no parallel config of {cost.model.name} fits {num_gpus} x {cost.gpu.name}")
    return configs
