"""The paper's baselines: Task-Fused (homogeneous replicas sized for the longest sequence) and Task-Sequential (each
task alone on its own best homogeneous plan, one after another)."""

from __future__ import annotations

from lobra.costmodel import CostModel, DeploymentPlan, MemoryOptions
from lobra.policies.dispatchers import DispatcherConfig
from lobra.policies.planners.base import PLANNERS, Planner, SearchResult, WorkloadSample, evaluate_plan
from lobra.policies.registry import PolicyError
from lobra.traces import Workload

POW2_UNIFORM = DispatcherConfig(bucketing="pow2")


def homogeneous_plans(configs, num_gpus: int) -> list[DeploymentPlan]:
    """Copies of one config filling the cluster, for each config."""
    return [DeploymentPlan.of({c: num_gpus // c.num_gpus}) for c in configs]


def best_homogeneous(
    sample: WorkloadSample,
    longest: int,
    cost: CostModel,
    num_gpus: int,
    dispatcher: str = "uniform",
    config: DispatcherConfig = POW2_UNIFORM,
) -> tuple[DeploymentPlan, float, int]:
    """The homogeneous plan (copies of one config filling the cluster) with the shortest mean step, among configs
    sized for the longest sequence (or the largest that fits, when none holds it)."""
    holds = {c: n for c, n in cost.feasible_configs(num_gpus).items() if n}  # config -> max_tokens
    if not holds:
        raise PolicyError(f"no parallel config of {cost.model.name} fits {num_gpus} x {cost.gpu.name}")
    need = min(longest, max(holds.values()))
    plans = homogeneous_plans([c for c, n in holds.items() if n >= need], num_gpus)
    times = {p: evaluate_plan(p, sample, cost, dispatcher, config) for p in plans}
    best = min(plans, key=lambda p: (times[p], str(p)))
    return best, times[best], len(plans)


@PLANNERS.register("task-fused")
class TaskFusedPlanner(Planner):
    """All tasks jointly on identical replicas sized for the longest sequence; fixed power-of-two buckets, uniform
    dispatch."""

    dispatcher = "uniform"
    dispatcher_config = POW2_UNIFORM

    def search(
        self, workload: Workload, sample: WorkloadSample, cost: CostModel, num_gpus: int
    ) -> SearchResult:
        plan, step_s, considered = best_homogeneous(
            sample, max(workload.longest.values()), cost, num_gpus, self.dispatcher, self.dispatcher_config
        )
        return SearchResult(plan, step_s, considered)


@PLANNERS.register("task-sequential")
class TaskSequentialPlanner(Planner):
    """Each task alone on the whole cluster with its own best homogeneous plan, the tasks one after another: one
    'step' is one step of every task, so its time is the sum of the tasks' step times."""

    dispatcher = "uniform"
    dispatcher_config = POW2_UNIFORM

    def search(
        self, workload: Workload, sample: WorkloadSample, cost: CostModel, num_gpus: int
    ) -> SearchResult:
        task_plans, total, considered = {}, 0.0, 0
        for task in workload:
            alone = WorkloadSample(
                tuple(tuple(it for it in step if it.task == task.name) for step in sample.steps)
            )
            memory = MemoryOptions(
                **{
                    **cost.memory.__dict__,
                    "num_tasks": 1,
                    "lora_rank": task.spec.rank,
                    "lora_targets": task.spec.targets,
                }
            )
            plan, step_s, n = best_homogeneous(
                alone,
                workload.longest[task.name],
                cost.with_memory(memory),
                num_gpus,
                self.dispatcher,
                self.dispatcher_config,
            )
            task_plans[task.name] = plan
            total += step_s
            considered += n
        return SearchResult(None, total, considered, task_plans)
