"""What-if mode: a given plan on fixed-length data, optionally with a fixed micro-batch size.

`lobra simulate --model M --gpu G --plan PLAN --workload fixed:LEN --global-batch B [--mbs K]` answers "how long is
a step of B sequences of LEN tokens on this plan?"; with --mbs (the fixed-mbs dispatcher,
policies/dispatchers/fixed_mbs.py) on a single replica it reproduces the cost model's replica arithmetic exactly,
which is how the simulator's timeline is checked against the cost model.
"""

from __future__ import annotations

import numpy as np
from lobra.sim.errors import SimError
from lobra.traces import Task, TaskSpec, Trace, Workload


def fixed_workload(spec: str, global_batch: int | None, steps: int) -> Workload:
    """One task whose every sequence has LEN tokens, from the string fixed:LEN."""
    if not spec.startswith("fixed:"):
        raise SimError(f"--workload must be fixed:LEN, got {spec!r}")
    try:
        length = int(spec.split(":", 1)[1])
    except ValueError:
        raise SimError(f"--workload fixed:LEN needs an integer length, got {spec!r}") from None
    if length < 1:
        raise SimError(f"--workload fixed:LEN needs a positive length, got {length}")
    if not global_batch or global_batch < 1:
        raise SimError("--workload fixed:LEN needs --global-batch B (a positive integer)")
    trace = Trace(f"fixed-{length}", np.full(global_batch, length))
    task = TaskSpec(
        name="fixed", trace=trace.name, global_batch_size=global_batch, max_len=length, steps=steps
    )
    return Workload((Task(task, trace),), source=spec)
