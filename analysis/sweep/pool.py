"""Every run of a sweep in one pool of workers: plans first (one per planning problem), then the simulations,
each as soon as its plan is there; the rows come back in the order of the specs whatever the number of workers.

The pool is local processes (`local`, the default) or Ray tasks (`ray`: a local Ray of `workers` CPUs started
for the sweep, or the running cluster at `address`); both run the same functions on the same specs, so their rows
are the same but for the wall-clock columns."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import contextmanager

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


BACKENDS = ("local", "ray")


def check_backend(backend: str, address: str | None) -> None:
    if backend not in BACKENDS:
        raise SweepError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if address is not None and backend != "ray":
        raise SweepError("--address names a Ray cluster: use it with --backend ray")


def run_sweep(
    specs: list[RunSpec],
    workers: int = 1,
    progress: Callable[[str], None] | None = None,
    backend: str = "local",
    address: str | None = None,
) -> pd.DataFrame:
    """Every run, one row each, in the order of `specs`. Plans first (one per plan key), then simulations, all in
    one pool of `workers` processes (or Ray tasks); progress(label) after each plan and each simulation."""
    if not specs:
        raise SweepError("a sweep needs at least one run")
    if not isinstance(workers, int) or workers < 1:
        raise SweepError(f"--workers must be a positive integer, got {workers!r}")
    check_backend(backend, address)
    specs = [s.resolved() for s in specs]
    unique = list(dict.fromkeys(specs))  # equal runs (whatever their display names) are simulated once
    note = progress or (lambda _label: None)
    # Load every workload and fit every cost model here, once: a bad tasks file fails before any work, and
    # forked workers inherit the caches instead of each rebuilding them.
    for s in specs:
        workload_of(s.scenario, s.tasks, s.num_tasks)
        cost_of(s.model, s.gpu)
    if backend == "ray":
        with ray_pool(workers, address) as pool:
            results = _run_in_pool(unique, note, pool)
    elif workers == 1:
        results = _run_here(unique, note)
    else:
        with worker_pool(workers) as pool:
            results = _run_in_pool(unique, note, pool)
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


def _run_in_pool(unique: list[RunSpec], note: Callable[[str], None], pool) -> list[dict]:
    """On any pool with submit(fn, *args) -> Future."""
    first = _plan_leaders(unique)
    results: list[dict | None] = [None] * len(unique)
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


class _RayPool:
    """submit(fn, *args) -> Future as a Ray task; a task's error comes back as the run's own error, not Ray's."""

    def __init__(self, ray) -> None:
        self.ray, self._remote = ray, {}

    def submit(self, fn, *args) -> Future:
        if fn not in self._remote:
            self._remote[fn] = self.ray.remote(fn)
        out: Future = Future()

        def done(ray_future: Future) -> None:
            try:
                out.set_result(ray_future.result())
            except self.ray.exceptions.RayTaskError as err:
                out.set_exception(err.cause if err.cause is not None else err)
            except BaseException as err:  # noqa: BLE001 - handed to the waiting sweep as it is
                out.set_exception(err)

        self._remote[fn].remote(*args).future().add_done_callback(done)
        return out


@contextmanager
def ray_pool(workers: int, address: str | None = None) -> Iterator[_RayPool]:
    """Ray tasks: on the cluster at `address`, else on a local Ray of `workers` CPUs started (and stopped) here.
    Ray is an optional extra: pip install 'lobra[ray]'."""
    try:
        import ray
    except ImportError:
        raise SweepError("--backend ray needs Ray: pip install 'lobra[ray]'") from None
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(
                address=address,
                num_cpus=None if address else workers,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        except ConnectionError as err:
            raise SweepError(f"no Ray cluster at {address}: {str(err).splitlines()[0]}") from None
    try:
        yield _RayPool(ray)
    finally:
        if started:
            ray.shutdown()


__all__ = ["BACKENDS", "WALL_CLOCK_COLUMNS", "check_backend", "progress_total", "ray_pool", "run_sweep"]
