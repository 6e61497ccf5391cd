"""The 1F1B pipeline schedule with variable-length micro-batches, computed exactly.

Stage k of p runs min(p - 1 - k, M) warm-up forwards, then alternates one forward and one backward, then drains its
backwards. F(k, m) waits for F(k-1, m) plus the activation transfer; B(k, m) for B(k+1, m) plus the gradient transfer
(the last stage's backward for its own forward). Every stage runs its ops in that order, one at a time.

The simulator's SimPy pipeline runs the same schedule event by event; this function is its closed-form twin, so the
cost model's replica arithmetic and the simulator agree exactly. With equal micro-batches and free transfers it gives
(M + p - 1) (f + b): the textbook bubble of (p - 1) micro-batches.
"""

from __future__ import annotations

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


def pipeline_makespan(stage_s: Sequence[float], p2p_s: Sequence[float], pp: int) -> float:
    """Finish time of the last op for micro-batches taking stage_s[m] per stage (forward+backward) and p2p_s[m] per
    boundary crossing, on pp stages."""
    num_mb = len(stage_s)
    if num_mb == 0:
        return 0.0
    if pp == 1:
        return float(sum(stage_s))
    fwd = [s * FORWARD_SHARE for s in stage_s]
    bwd = [s - f for s, f in zip(stage_s, fwd, strict=True)]
    ops = schedule(pp, num_mb)
    done: dict[tuple[str, int, int], float] = {}
    pos = [0] * pp
    clock = [0.0] * pp
    remaining = sum(len(o) for o in ops)
    while remaining:
        progressed = False
        for k in range(pp):
            while pos[k] < len(ops[k]):
                kind, m = ops[k][pos[k]]
                if kind == "F":
                    dep = 0.0 if k == 0 else done.get(("F", k - 1, m))
                    ready = None if dep is None else dep + (p2p_s[m] if k else 0.0)
                else:
                    dep = done.get(("F", k, m)) if k == pp - 1 else done.get(("B", k + 1, m))
                    ready = None if dep is None else dep + (p2p_s[m] if k < pp - 1 else 0.0)
                if ready is None:
                    break
                start = max(clock[k], ready)
                clock[k] = done[(kind, k, m)] = start + (fwd[m] if kind == "F" else bwd[m])
                pos[k] += 1
                remaining -= 1
                progressed = True
        if not progressed:  # pragma: no cover - the schedule is deadlock-free
            raise RuntimeError("1F1B schedule deadlocked")
    return max(clock)
