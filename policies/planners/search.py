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

from lobra.costmodel import DeploymentPlan, ParallelConfig
from lobra.policies.costs import CostTable


def propose_configs(
    configs: list[ParallelConfig], lengths: list[int], table: CostTable
) -> list[ParallelConfig]:
    kept = set()
    for gpus in sorted({c.num_gpus for c in configs}):
        same = [c for c in configs if c.num_gpus == gpus]
        for s in lengths:
            holding = [c for c in same if table.length_cost(c, s) is not None]
            if holding:
                kept.add(min(holding, key=lambda c: (table.gpu_seconds_per_seq(c, s), c)))
    return sorted(kept)


def fluid_counts(
    counts: dict[int, float], configs: list[ParallelConfig], table: CostTable, num_gpus: int
) -> dict[ParallelConfig, float]:
    """Fractional replica counts of the fluid optimum (see the module docstring)."""
    work = dict.fromkeys(configs, 0.0)  # seconds on one replica of the config
    for s, n in counts.items():
        holding = [c for c in configs if table.length_cost(c, s) is not None]
        best = min(holding, key=lambda c: (table.gpu_seconds_per_seq(c, s), c))
        work[best] += n * table.gpu_seconds_per_seq(best, s) / best.num_gpus
    makespan = sum(w * c.num_gpus for c, w in work.items()) / num_gpus
    return {c: (w / makespan if makespan else 0.0) for c, w in work.items()}


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
