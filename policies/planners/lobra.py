"""The LobRA planner (`lobra`), ours (`lobra-plus`) and `exhaustive` (small clusters, to test optimality).

lobra: proposal -> enumeration -> lower-bound filter -> one integer programme per surviving plan (in parallel) ->
the plan with the smallest makespan. Our filter bound is the plan's linear relaxation (policies/lp.py), which is a
true lower bound of its programme; the paper's length-based bound ignores replica counts.
lobra-plus: the same search, but every surviving plan is scored by dispatching the sampled steps with the dispatch
that will really run (the fast `balanced` heuristic, with packing), so the plan is chosen for that dispatch.
"""

from __future__ import annotations

from typing import NamedTuple

from lobra.costmodel import CostModel, DeploymentPlan
from lobra.policies.costs import CostTable, min_bubble_s
from lobra.policies.dispatchers import Dispatcher, DispatcherConfig, get_dispatcher
from lobra.policies.lp import split_lp
from lobra.policies.planners.base import (
    PLANNERS,
    SAMPLED_DISPATCH,
    Planner,
    SearchResult,
    WorkloadSample,
    evaluate_plan,
)
from lobra.policies.planners.baselines import homogeneous_plans
from lobra.policies.planners.ilp import plan_makespan_ilp
from lobra.policies.planners.search import enumerate_plans, fluid_counts, propose_configs, window_bounds
from lobra.policies.pool import run_jobs
from lobra.policies.registry import PolicyError
from lobra.traces import Workload

EXHAUSTIVE_MAX_GPUS = 16
MAX_WIDENINGS = 2  # the window around the fluid optimum doubles at most this often


def step_overhead_s(plan: DeploymentPlan, cost: CostModel) -> float:
    """LoRA-gradient sync and optimizer: the part of a step that follows the micro-batches."""
    spans = plan.num_gpus > cost.gpu.gpus_per_node
    return max(cost.dp_sync_s(c, plan.num_replicas, spans) + cost.optimizer_s(c) for c, _ in plan.entries)


class Score(NamedTuple):
    """A plan's estimated step time, whether its programme proved it, and whether the wall-clock safety net
    rather than the node limit stopped that programme (the score then depends on the machine's load)."""

    step_time_s: float
    proven: bool = True
    clock_stopped: bool = False


def _ilp_step_time(counts, table: CostTable, limits, sample, dispatcher: Dispatcher, plan) -> Score:
    """A plan's score by its programme; unproven (a limit stopped it), the plan is scored by a feasible dispatch
    of the sampled steps instead of the programme's incumbent."""
    score = plan_makespan_ilp(plan, counts, table, *limits)
    if score.proven:
        return Score(score.makespan_s + step_overhead_s(plan, table.cost))
    dispatched = evaluate_plan(plan, sample, table.cost, dispatcher)
    return Score(dispatched, False, score.clock_stopped)


def _dispatch_step_time(sample, cost: CostModel, dispatcher: Dispatcher, plan) -> Score:
    return Score(evaluate_plan(plan, sample, cost, dispatcher))


class _Chooser:
    """The filter and the scoring of a set of plans, remembering every score across calls (a widened window
    scores only its new plans)."""

    def __init__(
        self, planner, counts, sample, table: CostTable, bubbles, homogeneous, num_gpus: int
    ) -> None:
        self.planner, self.counts, self.sample, self.table = planner, counts, sample, table
        self.num_gpus = num_gpus
        self.bubbles, self.homogeneous = bubbles, homogeneous
        self.scores: dict[DeploymentPlan, Score] = {}

    def __call__(self, plans: list[DeploymentPlan]) -> SearchResult:
        if not plans:
            cost = self.table.cost
            raise PolicyError(
                f"no deployment plan of {cost.model.name} fits {self.num_gpus} x {cost.gpu.name}"
            )
        cfg = self.planner.config
        survivors = plans
        if self.planner.use_filter:
            bound = {p: split_lp(self.counts, dict(p.entries), self.table, self.bubbles)[0] for p in plans}
            ranked = sorted(plans, key=lambda p: (bound[p], str(p)))
            kept = [p for p in ranked if bound[p] <= cfg.filter_ratio * bound[ranked[0]]]
            survivors = ranked[: max(len(kept), cfg.keep_at_least)]
        wanted = list(dict.fromkeys(survivors + self.homogeneous))
        missing = [p for p in wanted if p not in self.scores]
        if missing:
            self.scores |= self.planner.score(missing, self.counts, self.sample, self.table)
        # every plan scored so far: widening never loses
        times = {p: s.step_time_s for p, s in self.scores.items()}
        best = min(times, key=lambda p: (times[p], str(p)))
        unproven = sum(not s.proven for s in self.scores.values())
        clock = sum(s.clock_stopped for s in self.scores.values())
        considered = len(set(plans) | set(self.homogeneous))
        return SearchResult(best, times[best], considered, unproven=unproven, clock_stopped=clock)


@PLANNERS.register("lobra")
class LobraPlanner(Planner):
    dispatcher = "balanced-ilp"
    # cheaper than dispatching every sampled step with balanced-ilp (seconds per step): simulate for that
    estimate = (
        "its integer programme on the expected bucket counts (a surrogate of the balanced-ilp dispatch)"
    )
    enumerate_all = False
    use_filter = True

    def search(
        self, workload: Workload, sample: WorkloadSample, cost: CostModel, num_gpus: int
    ) -> SearchResult:
        cfg = self.config
        table = CostTable(cost)
        feasible = [c for c, n in cost.feasible_configs(num_gpus).items() if n]
        if not feasible:
            raise PolicyError(f"no parallel config of {cost.model.name} fits {num_gpus} x {cost.gpu.name}")
        largest = max(table.max_tokens(c) for c in feasible)
        counts = sample.expected_counts(largest, cfg.num_buckets)
        lengths = sorted(counts)
        candidates = feasible if self.enumerate_all else propose_configs(feasible, lengths, table)
        # Every plan holds the workload's longest sequence (not just the sample's), or the largest that fits.
        need = min(max(workload.longest.values()), largest)
        holders = [c for c in feasible if table.max_tokens(c) >= need]
        if not any(table.max_tokens(c) >= need for c in candidates):
            candidates = [*candidates, min(holders, key=lambda c: (table.gpu_seconds_per_seq(c, need), c))]
        must_hold = [c for c in candidates if table.max_tokens(c) >= need]
        # Deep pipelines pay (pp - 1) micro-batches of fill and drain every step, which per-sequence costs omit.
        bubbles = {c: min_bubble_s(c, lengths, table) for c in candidates}
        # Task-Fused's candidates are always scored: the planner never prefers a plan it rates below theirs.
        homogeneous = homogeneous_plans(holders, num_gpus)
        choose = _Chooser(self, counts, sample, table, bubbles, homogeneous, num_gpus)
        if self.enumerate_all or num_gpus <= cfg.full_enumeration_gpus:
            return choose(list(enumerate_plans(candidates, num_gpus, None, must_hold)))
        # Beyond full enumeration: widen the window around the fluid optimum until the chosen plan stays.
        seen: set[DeploymentPlan] = set()
        window, chosen = cfg.window, None
        for _ in range(MAX_WIDENINGS + 1):
            seen |= set(self.windowed_plans(counts, candidates, must_hold, table, num_gpus, bubbles, window))
            result = choose(sorted(seen, key=str))
            if (chosen is not None and result.plan == chosen.plan) or window > num_gpus:
                break
            chosen, window = result, 2 * window
        return result

    def windowed_plans(
        self, counts, candidates, must_hold, table: CostTable, num_gpus: int, bubbles, window: int
    ):
        """Plans of the fluid optimum's configs (plus the cheapest holder of the longest length), replica counts
        within `window` of the fluid counts; the window doubles until some plan fills the cluster."""
        fluid = fluid_counts(counts, candidates, table, num_gpus, bubbles)
        support = [c for c in candidates if fluid[c] > 0]
        if not any(c in must_hold for c in support):
            longest = max(counts)
            support.append(min(must_hold, key=lambda c: (table.gpu_seconds_per_seq(c, longest), c)))
        while True:
            bounds = window_bounds({c: fluid[c] for c in support}, window)
            plans = list(enumerate_plans(support, num_gpus, bounds, must_hold))
            if plans or window > num_gpus:
                return plans
            window *= 2

    def score(self, plans, counts, sample, table: CostTable) -> dict[DeploymentPlan, Score]:
        """Each plan's estimated step time, and how its programme ended."""
        d = self.dispatcher_config
        limits = (self.config.time_limit_s or d.time_limit_s, self.config.node_limit or d.node_limit)
        shared = (counts, table, limits, sample, get_dispatcher("balanced", d))
        return dict(zip(plans, self._map(_ilp_step_time, plans, shared), strict=True))

    def _map(self, fn, plans, shared) -> list[Score]:
        """fn(*shared, plan) for each plan, in order, in worker processes where configured (each gets `shared`
        once); each result counted for progress."""
        self._to_score += len(plans)
        return [self._scored(r) for r in run_jobs(fn, plans, shared, self.config.workers)]

    def _scored(self, result):
        self._done += 1
        if self.progress is not None:
            self.progress(self._done, self._to_score)
        return result


@PLANNERS.register("lobra-plus")
class LobraPlusPlanner(LobraPlanner):
    dispatcher = "balanced"
    estimate = SAMPLED_DISPATCH
    dispatcher_config = DispatcherConfig(packing=True)

    def score(self, plans, counts, sample, table: CostTable) -> dict[DeploymentPlan, Score]:
        # Dispatching every sample step on every survivor is the expensive part: keep the best bounds only (and
        # the homogeneous plans, which come last).
        homogeneous = [p for p in plans if len(p.entries) == 1]
        plans = list(dict.fromkeys(plans[: self.config.max_scored] + homogeneous))
        shared = (sample, table.cost, get_dispatcher(self.dispatcher, self.dispatcher_config))
        return dict(zip(plans, self._map(_dispatch_step_time, plans, shared), strict=True))


@PLANNERS.register("exhaustive")
class ExhaustivePlanner(LobraPlanner):
    """Every plan of every feasible config, no proposal, no filter: the reference for small clusters."""

    enumerate_all = True
    use_filter = False

    def search(
        self, workload: Workload, sample: WorkloadSample, cost: CostModel, num_gpus: int
    ) -> SearchResult:
        if num_gpus > EXHAUSTIVE_MAX_GPUS:
            raise PolicyError(f"the exhaustive planner is for clusters of at most {EXHAUSTIVE_MAX_GPUS} GPUs")
        return super().search(workload, sample, cost, num_gpus)
