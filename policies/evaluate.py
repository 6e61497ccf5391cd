"""The cost model's estimate of one dispatched step: every replica's time and the step's makespan."""

from __future__ import annotations

from dataclasses import dataclass

from lobra.costmodel import CostModel, ReplicaTime
from lobra.policies.types import DispatchPlan


@dataclass(frozen=True)
class StepEstimate:
    replica_times: tuple[ReplicaTime, ...]
    num_gpus: int

    @property
    def step_time_s(self) -> float:
        """The gradient all-reduce starts when the slowest replica is done; the step ends after it and the
        optimizer (the simulator's timeline exactly)."""
        return self.makespan_s + max(t.dp_sync_s + t.optimizer_s for t in self.replica_times)

    @property
    def gpu_seconds(self) -> float:
        return self.step_time_s * self.num_gpus

    @property
    def makespan_s(self) -> float:
        """The slowest replica's busy time (micro-batches only): what dispatchers balance."""
        return max(t.busy_s for t in self.replica_times)


def estimate_step(dispatch: DispatchPlan, cost: CostModel) -> StepEstimate:
    plan = dispatch.plan
    spans_nodes = plan.num_gpus > cost.gpu.gpus_per_node
    times = tuple(
        cost.replica_time(
            config, [mb.to_costmodel() for mb in mbs], num_replicas=plan.num_replicas, spans_nodes=spans_nodes
        )
        for config, mbs in zip(plan.replicas, dispatch.micro_batches, strict=True)
    )
    return StepEstimate(times, plan.num_gpus)
