"""Every run of a sweep in one pool of processes: plans first (one per planning problem), then the simulations,
each as soon as its plan is there; the rows come back in the order of the specs whatever the number of workers."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait

import pandas as pd
from lobra.analysis.sweep.simulate import display_name, plan_run, simulate_run
from lobra.analysis.sweep.spec import RunSpec, SweepError
from lobra.analysis.sweep.workloads import cost_of, workload_of
from lobra.policies.pool import worker_pool


def _label(s: RunSpec) -> str:
    return f"{s.scenario or s.tasks} on {s.num_gpus} GPUs, {s.policy or s.planner}"


def _checked(fn, s: RunSpec, *args):
    """fn(s, *args), its error prefixed with the run it belongs to (module level: it runs in the workers)."""
    try:
        return fn(s, *args)
    except ValueError as err:
        raise SweepError(f"run {_label(s)}: {str(err).splitlines()[0]}") from None


# Columns that measure this machine's wall clock, not the simulated cluster: they differ between identical runs.
WALL_CLOCK_COLUMNS = ("planning_time_s", "sim_wall_s")


def progress_total(specs: list[RunSpec]) -> int:
    """How many times run_sweep calls progress: once per distinct plan and once per distinct run."""
    unique = {s.resolved() for s in specs}
    return len(unique) + len({s.plan_key for s in unique})


def run_sweep(
    specs: list[RunSpec],
    workers: int = 1,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Every run, one row each, in the order of `specs`. Plans first (one per plan key), then simulations, all in
    one pool of `workers` processes; progress(label) after each plan and each simulation."""
    if not specs:
        raise SweepError("a sweep needs at least one run")
    if not isinstance(workers, int) or workers < 1:
        raise SweepError(f"--workers must be a positive integer, got {workers!r}")
    specs = [s.resolved() for s in specs]
    unique = list(dict.fromkeys(specs))  # equal runs (whatever their display names) are simulated once
    note = progress or (lambda _label: None)
    # Load every workload and fit every cost model here, once: a bad tasks file fails before any work, and
    # forked workers inherit the caches instead of each rebuilding them.
    for s in specs:
        workload_of(s.scenario, s.tasks, s.num_tasks)
        cost_of(s.model, s.gpu)
    results = _run_here(unique, note) if workers == 1 else _run_in_pool(unique, note, workers)
    index = {s: i for i, s in enumerate(unique)}
    df = pd.DataFrame([results[index[s]] | {"policy": display_name(s)} for s in specs])
    df.insert(0, "run", range(len(df)))
    return df


def _plan_leaders(unique: list[RunSpec]) -> dict[tuple, RunSpec]:
    """The first run of each plan key, in order: the one whose plan all the others of that key share."""
    first: dict[tuple, RunSpec] = {}
    for s in unique:
        first.setdefault(s.plan_key, s)
    return first


def _run_here(unique: list[RunSpec], note: Callable[[str], None]) -> list[dict]:
    plans = {}
    for key, leader in _plan_leaders(unique).items():
        plans[key] = _checked(plan_run, leader)
        note(f"plan {_label(leader)}")
    results = []
    for s in unique:
        results.append(_checked(simulate_run, s, plans[s.plan_key]))
        note(f"sim {_label(s)}")
    return results


def _run_in_pool(unique: list[RunSpec], note: Callable[[str], None], workers: int) -> list[dict]:
    first = _plan_leaders(unique)
    results: list[dict | None] = [None] * len(unique)
    with worker_pool(workers) as pool:
        pending: dict[Future, tuple[str, object]] = {
            pool.submit(_checked, plan_run, leader): ("plan", key) for key, leader in first.items()
        }
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                kind, what = pending.pop(fut)
                result = fut.result()  # a failed run fails the sweep with its own one-line error
                if kind == "plan":
                    note(f"plan {_label(first[what])}")
                    for i, s in enumerate(unique):
                        if s.plan_key == what:
                            pending[pool.submit(_checked, simulate_run, s, result)] = ("sim", i)
                else:
                    results[what] = result
                    note(f"sim {_label(unique[what])}")
    return results


__all__ = ["WALL_CLOCK_COLUMNS", "progress_total", "run_sweep"]
