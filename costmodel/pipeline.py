"""The 1F1B pipeline schedule with variable-length micro-batches, computed exactly.

Stage k of p runs min(p - 1 - k, M) warm-up forwards, then alternates one forward and one backward, then drains its
backwards. F(k, m) waits for F(k-1, m) plus the activation transfer; B(k, m) for B(k+1, m) plus the gradient transfer
(the last stage's backward for its own forward). Every stage runs its ops in that order, one at a time.

The simulator's SimPy pipeline runs the same schedule event by event; this function is its closed-form twin, so the
cost model's replica arithmetic and the simulator agree exactly. With equal micro-batches and free transfers it gives
(M + p - 1) (f + b): the textbook bubble of (p - 1) micro-batches.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

# Backward of a layer with LoRA costs about twice its forward (input gradients through every GEMM, FlashAttention
# recomputing scores; no base weight gradients): the stage time splits 1 : 2.
FORWARD_SHARE = 1.0 / 3.0


def schedule(pp: int, num_mb: int) -> list[list[tuple[str, int]]]:
    """Per stage, its ops in order: ("F", m) or ("B", m)."""
    out = []
    for k in range(pp):
        warm = min(pp - 1 - k, num_mb)
        ops = [("F", m) for m in range(warm)]
        for i in range(num_mb - warm):
            ops += [("F", warm + i), ("B", i)]
        ops += [("B", m) for m in range(num_mb - warm, num_mb)]
        out.append(ops)
    return out


def pipeline_makespan(stage_times: Sequence[Sequence[float]], p2p_s: Sequence[float], pp: int) -> float:
    """Finish time of the last op for micro-batches taking stage_times[m][k] on stage k (forward+backward,
    CostModel.stage_times) and p2p_s[m] per boundary crossing, on pp stages."""
    return pipeline_makespans(stage_times, [p2p_s], pp)[0]


def pipeline_makespans(
    stage_times: Sequence[Sequence[float]], p2p_sets: Sequence[Sequence[float]], pp: int
) -> list[float]:
    """pipeline_makespan of the same micro-batches under each set of crossing times (the stage times split once)."""
    if not stage_times:
        return [0.0] * len(p2p_sets)
    if pp == 1:
        return [float(sum(t[0] for t in stage_times))] * len(p2p_sets)
    durations = op_durations(stage_times)
    return [pipeline_timeline(durations, [list(p2p)] * (pp - 1), pp, record=False) for p2p in p2p_sets]


def op_durations(stage_times: Sequence[Sequence[float]]) -> list[float]:
    """Every op's duration in pipeline_timeline's order, for micro-batches taking stage_times[m][k] on stage k: the
    forwards stage by stage (stage-major, then micro-batch), then the backwards. The head's time splits like a
    layer's, although its forward and backward are about equal: it is a fraction of one stage, and only that
    fraction's split moves the bubble."""
    pp = len(stage_times[0])
    backward_share = 1 - FORWARD_SHARE
    fwd = [t[k] * FORWARD_SHARE for k in range(pp) for t in stage_times]
    return fwd + [t[k] * backward_share for k in range(pp) for t in stage_times]


def _op_order(pp: int, num_mb: int) -> tuple[tuple[int, int, int], ...]:
    """A topological order of the schedule's ops: (is_backward, stage, micro-batch) sorted by start time with unit
    op times. Every dependency starts at least one unit earlier, so one pass in this order sees it finished."""
    ops = schedule(pp, num_mb)
    tick: dict[tuple[int, int, int], int] = {}
    pos, clock = [0] * pp, [0] * pp
    while any(pos[k] < len(ops[k]) for k in range(pp)):
        for k in range(pp):
            while pos[k] < len(ops[k]):
                kind, m = ops[k][pos[k]]
                b = kind == "B"
                if not b:
                    dep = -1 if k == 0 else tick.get((0, k - 1, m))
                else:
                    dep = tick.get((0, k, m)) if k == pp - 1 else tick.get((1, k + 1, m))
                if dep is None:
                    break
                tick[(b, k, m)] = clock[k] = max(clock[k], dep + 1)
                clock[k] += 1
                pos[k] += 1
    return tuple(sorted(tick, key=lambda op: (tick[op], op[1])))


@functools.lru_cache(maxsize=1024)  # (pp, micro-batches) pairs: a few hundred in a long simulation
def _flat_order(pp: int, num_mb: int) -> tuple[tuple[int, int, int, int], ...]:
    """_op_order as indices into flat lists: (stage, op, dependency, crossing). Ops are numbered forwards first
    (stage-major), then backwards; the dependency indexes the same numbering (a first-stage forward's, the extra
    entry at the end: a zero); the crossing indexes the flattened boundaries (none: the extra zero at the end)."""
    n = pp * num_mb
    out = []
    for b, k, m in _op_order(pp, num_mb):
        op = b * n + k * num_mb + m
        if not b:
            dep, cross = ((k - 1) * num_mb + m, (k - 1) * num_mb + m) if k else (2 * n, -1)
        elif k == pp - 1:
            dep, cross = k * num_mb + m, -1  # the last stage's backward follows its own forward
        else:
            dep, cross = n + (k + 1) * num_mb + m, k * num_mb + m
        out.append((k, op, dep, cross))
    return tuple(out)


def pipeline_timeline(
    durations: Sequence[float],
    crossing_s: Sequence[Sequence[float]],
    pp: int,
    record: bool = True,
) -> list[tuple[str, int, int, float, float]] | float:
    """(kind, stage, micro-batch, start, end) of every op, for op durations laid out as op_durations gives them
    and per-boundary transfer times crossing_s[k][m] (boundary k joins stages k and k+1); with record=False only
    the finish time of the last op (the simulator's hot path)."""
    num_mb = len(durations) // (2 * pp)
    crossing = [c for row in crossing_s for c in row] + [0.0]  # index -1: no transfer (adding 0.0 is exact)
    end = [0.0] * (2 * pp * num_mb + 1)  # index -1: a first-stage forward's dependency, ready at 0
    clock = [0.0] * pp
    out = []
    for k, op, dep, cross in _flat_order(pp, num_mb):
        ready = end[dep] + crossing[cross]
        start = clock[k] if clock[k] > ready else ready
        clock[k] = end[op] = start + durations[op]
        if record:
            out.append(("B" if op >= pp * num_mb else "F", k, op % num_mb, start, clock[k]))
    return out if record else max(clock)
