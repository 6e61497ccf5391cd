"""scipy's `milp` with HiGHS's stray console output kept off stdout.

Some HiGHS builds print solver diagnostics (e.g. "HighsMipSolverData::transformNewIntegerFeasibleSolution
tmpSolver.run();") with C printf even with disp=False. It lands on file descriptor 1, ahead of what `lobra ... --json`
prints there, and breaks every consumer of that JSON. Sending fd 1 to /dev/null for the duration of the solve keeps
stdout ours; Python writes nothing to stdout meanwhile (it is flushed first).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

from scipy.optimize import milp as _milp


@contextmanager
def _stdout_to_devnull():
    try:
        fd = sys.__stdout__.fileno() if sys.__stdout__ is not None else 1
    except (AttributeError, OSError, ValueError):  # no real stdout (embedded interpreters): nothing to guard
        yield
        return
    for stream in (sys.stdout, sys.__stdout__):
        if stream is not None:
            stream.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def milp(*args, **kwargs):
    with _stdout_to_devnull():
        return _milp(*args, **kwargs)
