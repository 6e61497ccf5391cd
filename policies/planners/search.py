"""Plan search space: config proposal, the fluid optimum, and enumeration of integer plans.

Proposal (the paper): for each GPU count and each bucket length keep only the config that processes that length
with the fewest GPU-seconds. Enumeration: multisets of the proposed configs whose GPUs fill the cluster (no replica
of the smallest config could be added). Up to `full_enumeration_gpus` every such plan is enumerated; beyond, replica
counts are limited to a window around the fluid optimum: with replica counts allowed to be fractional, the best plan
sends every length to its most GPU-efficient config and sizes each config to its work, so good integer plans lie near
it (ours; the paper enumerates everything and needs 64 threads and minutes at 256 GPUs).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from lobra.costmodel import DeploymentPlan, ParallelConfig
from lobra.policies.costs import CostTable
from lobra.policies.highs import solve_lp


def propose_configs(
    configs: list[ParallelConfig], lengths: list[int], table: CostTable
) -> list[ParallelConfig]:
    """For each GPU count and pipeline depth, the configs that process some length with the fewest GPU-seconds
    (the paper groups by GPU count only; a deeper pipeline's per-sequence cost omits its fill and drain, which the
    fluid optimum and the plan scores weigh, so depths are kept apart until then)."""
    kept = set()
    for gpus, pp in sorted({(c.num_gpus, c.pp) for c in configs}):
        same = [c for c in configs if c.num_gpus == gpus and c.pp == pp]
        for s in lengths:
            holding = [c for c in same if table.length_cost(c, s) is not None]
            if holding:
                kept.add(min(holding, key=lambda c: (table.gpu_seconds_per_seq(c, s), c)))
    return sorted(kept)


def fluid_counts(
    counts: dict[int, float],
    configs: list[ParallelConfig],
    table: CostTable,
    num_gpus: int,
    bubble_s: dict[ParallelConfig, float] | None = None,
) -> dict[ParallelConfig, float]:
    """Fractional replica counts of the fluid optimum (see the module docstring). Without pipeline bubbles every
    length goes to its most GPU-efficient config; with them (`bubble_s`, seconds per replica and step), a deep
    pipeline is worth its replicas only where its work outweighs its fill and drain, found by bisection on the
    makespan T of the linear programme: sum_s a_sc y_sc + B_c x_c <= T x_c, sum_c g_c x_c <= N."""
    work = dict.fromkeys(configs, 0.0)  # seconds on one replica of the config
    for s, n in counts.items():
        holding = [c for c in configs if table.length_cost(c, s) is not None]
        best = min(holding, key=lambda c: (table.gpu_seconds_per_seq(c, s), c))
        work[best] += n * table.gpu_seconds_per_seq(best, s) / best.num_gpus
    makespan = sum(w * c.num_gpus for c, w in work.items()) / num_gpus
    fluid = {c: (w / makespan if makespan else 0.0) for c, w in work.items()}
    if not bubble_s or not any(bubble_s.values()) or not makespan:
        return fluid
    lo, hi = makespan, makespan + max(bubble_s.values())
    while _fluid_lp(counts, configs, table, num_gpus, bubble_s, hi) is None:
        hi *= 2
    for _ in range(40):  # to ~1e-12 of the bracket: the counts only seed a window of integer plans
        mid = (lo + hi) / 2
        lo, hi = (
            (lo, mid) if _fluid_lp(counts, configs, table, num_gpus, bubble_s, mid) is not None else (mid, hi)
        )
    return _fluid_lp(counts, configs, table, num_gpus, bubble_s, hi)


def _fluid_lp(counts, configs, table: CostTable, num_gpus: int, bubble_s, makespan: float):
    """Replica counts x_c that finish every length within `makespan` on num_gpus GPUs, or None."""
    lengths = sorted(counts)
    pairs = [(g, j) for g, s in enumerate(lengths) for j, c in enumerate(configs) if table.length_cost(c, s)]
    n_y, n_x = len(pairs), len(configs)
    a_ub = np.zeros((n_x + 1, n_y + n_x))
    a_eq = np.zeros((len(lengths), n_y + n_x))
    for p, (g, j) in enumerate(pairs):
        lc = table.length_cost(configs[j], lengths[g])
        a_ub[j, p] = lc.alpha_s + lc.beta_s / lc.per_mb
        a_eq[g, p] = 1.0
    for j, c in enumerate(configs):
        a_ub[j, n_y + j] = bubble_s.get(c, 0.0) - makespan  # a replica's sequences and bubble within T
        a_ub[n_x, n_y + j] = c.num_gpus
    b_ub = np.zeros(n_x + 1)
    b_ub[n_x] = num_gpus
    x = solve_lp(np.zeros(n_y + n_x), a_ub, b_ub, a_eq, np.array([counts[s] for s in lengths], dtype=float))
    if x is None:
        return None
    return {c: float(x[n_y + j]) for j, c in enumerate(configs)}


def enumerate_plans(
    configs: list[ParallelConfig],
    num_gpus: int,
    bounds: dict[ParallelConfig, tuple[int, int]] | None = None,
    must_hold: list[ParallelConfig] | None = None,
) -> Iterator[DeploymentPlan]:
    """Every multiset of `configs` (counts within `bounds`) using at most num_gpus GPUs and leaving fewer GPUs free
    than the smallest config needs; at least one replica from `must_hold` when given."""
    order = sorted(configs, key=lambda c: -c.num_gpus)
    smallest = min(c.num_gpus for c in configs)
    must = set(must_hold or [])

    def rec(i: int, left: int, chosen: dict[ParallelConfig, int]) -> Iterator[DeploymentPlan]:
        if i == len(order):
            if left < smallest and chosen and (not must or any(c in must for c in chosen)):
                yield DeploymentPlan.of(chosen)
            return
        config = order[i]
        lo, hi = bounds.get(config, (0, num_gpus)) if bounds else (0, num_gpus)
        hi = min(hi, left // config.num_gpus)
        for n in range(hi, lo - 1, -1):
            if n:
                chosen[config] = n
            yield from rec(i + 1, left - n * config.num_gpus, chosen)
            chosen.pop(config, None)

    yield from rec(0, num_gpus, {})


def window_bounds(fluid: dict[ParallelConfig, float], window: int) -> dict[ParallelConfig, tuple[int, int]]:
    return {c: (max(0, math.floor(x) - window), math.ceil(x) + window) for c, x in fluid.items()}
