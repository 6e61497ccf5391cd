"""A process pool whose workers leave Ctrl-C to the parent: one interrupt ends the command with one line, not a
traceback per worker, and the workers are stopped at once instead of finishing their jobs.

What every job of a map needs (a planner's sampled steps and cost model: megabytes) goes to each worker once, at its
start, instead of with every job: `run_jobs(fn, jobs, shared)` calls fn(*shared, job)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

_shared: tuple = ()  # in a worker: its pool's shared arguments


def _start_worker(shared: tuple) -> None:
    global _shared
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _shared = shared


def _call(fn: Callable, job):
    return fn(*_shared, job)


def run_jobs(fn: Callable, jobs: list, shared: tuple = (), workers: int = 1) -> Iterator:
    """fn(*shared, job) for each job, in order, each as it is ready; in worker processes when workers > 1."""
    if workers == 1 or len(jobs) <= 1:
        yield from (fn(*shared, job) for job in jobs)
        return
    with worker_pool(workers, shared) as pool:
        yield from pool.map(_call, [fn] * len(jobs), jobs)


@contextmanager
def worker_pool(workers: int, shared: tuple = ()) -> Iterator[ProcessPoolExecutor]:
    pool = ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(shared,))
    try:
        yield pool
    except BaseException:
        for process in list(getattr(pool, "_processes", {}).values()):  # no public way to stop running jobs
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
