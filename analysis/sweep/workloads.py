"""The workloads and cost models of a sweep's runs, built once per process and cached: a scenario or a tasks file,
cut to or grown to K tasks."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from lobra.costmodel import CostModel
from lobra.traces import Task, Workload, load_scenario, load_workload

# A scenario whose task list is a prefix of a larger one: --vary num-tasks grows it from there (the paper's 8, 12
# and 16-task points add more of its 12 datasets to the 4 of the scalability study).
TASK_POOLS = {"paper-70b-4task": "paper-70b"}


def select_tasks(workload: Workload, k: int, pool: Workload | None = None) -> Workload:
    """The first k tasks; past the workload's own, the pool's other tasks in order; past those, the same tasks
    again under new names (`dolly-2`, ...: the sampler draws a fresh order for each name)."""
    if k <= len(workload):
        return Workload(workload.tasks[:k], workload.source, workload.description)
    distinct = list(workload.tasks)
    have = set(workload.names)
    distinct += [t for t in (pool or workload) if t.name not in have]
    tasks = distinct[:k]
    for i in range(len(distinct), k):
        src = distinct[i % len(distinct)]
        tasks.append(Task(replace(src.spec, name=f"{src.name}-{i // len(distinct) + 1}"), src.trace))
    return Workload(tuple(tasks), workload.source, f"{workload.description} ({k} tasks)")


@lru_cache(maxsize=32)
def workload_of(scenario: str | None, tasks: str | None, num_tasks: int | None) -> Workload:
    if scenario is not None:
        workload = load_scenario(scenario).workload
        pool = load_scenario(TASK_POOLS[scenario]).workload if scenario in TASK_POOLS else None
    else:
        workload, pool = load_workload(tasks), None
    return workload if num_tasks is None else select_tasks(workload, num_tasks, pool)


@lru_cache(maxsize=8)
def cost_of(model: str, gpu: str) -> CostModel:
    return CostModel.build(model, gpu)


__all__ = ["TASK_POOLS", "cost_of", "select_tasks", "workload_of"]
