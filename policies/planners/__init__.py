"""Planners, registered by name: task-sequential, task-fused, lobra, lobra-plus, exhaustive."""

from lobra.policies.planners import baselines, lobra  # noqa: F401  (registration)
from lobra.policies.planners.base import (
    PLANNERS,
    PlannerConfig,
    PlanResult,
    WorkloadSample,
    lower_bound_cut_pct,
    lower_bound_gpu_seconds,
)

__all__ = [
    "PLANNERS",
    "PlanResult",
    "PlannerConfig",
    "WorkloadSample",
    "get_planner",
    "lower_bound_cut_pct",
    "lower_bound_gpu_seconds",
]


def get_planner(name: str, **config):
    return PLANNERS.create(name, **config)
