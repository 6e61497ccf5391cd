"""Micro-batches of one replica's share of a step.

Padded (the paper): sequences grouped by padded length; per length, full micro-batches of floor(max_tokens / s)
sequences, the remainder one smaller micro-batch. Grouping by length alone merges remainders of the same length
across tasks. Longest micro-batches first. Packed (ours): best-fit decreasing of the real lengths into micro-batches
of at most max_tokens tokens, no padding.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence

from lobra.policies.registry import PolicyError
from lobra.policies.types import MicroBatchPlan


def padded_micro_batches(
    items: Sequence[int], lengths: Sequence[int], padded: Sequence[int], max_tokens: int
) -> list[MicroBatchPlan]:
    """items[k] runs with length lengths[k], padded to padded[k]."""
    by_len: dict[int, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for item, n, s in zip(items, lengths, padded, strict=True):
        ids, run = by_len[s]
        ids.append(item)
        run.append(int(n))
    out = []
    for s in sorted(by_len, reverse=True):
        per_mb = max_tokens // s
        if per_mb < 1:
            raise PolicyError(
                f"a sequence padded to {s} tokens does not fit a micro-batch of {max_tokens} tokens"
            )
        ids, run = by_len[s]
        for start in range(0, len(ids), per_mb):
            end = start + per_mb
            out.append(MicroBatchPlan(tuple(ids[start:end]), tuple(run[start:end]), int(s)))
    return out


def packed_micro_batches(
    items: Sequence[int], lengths: Sequence[int], max_tokens: int
) -> list[MicroBatchPlan]:
    """Best-fit decreasing into bins of max_tokens tokens: each sequence, longest first, goes to the fullest
    micro-batch that still has room for it (a sorted list of free space, so O(log bins) per sequence)."""
    order = sorted(range(len(items)), key=lengths.__getitem__, reverse=True)  # stable: ties keep their order
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room, bin), sorted
    for k in order:
        n = int(lengths[k])
        if n > max_tokens:
            raise PolicyError(f"a sequence of {n} tokens does not fit a micro-batch of {max_tokens} tokens")
        i = bisect.bisect_left(free, (n, -1))
        if i < len(free):
            room, b = free.pop(i)
        else:
            room, b = max_tokens, len(bins)
            bins.append([])
        bins[b].append(k)
        bisect.insort(free, (room - n, b))
    out = []
    for b in bins:
        run = tuple([int(lengths[k]) for k in b])
        # a bin's first sequence is its longest: they arrive longest first
        out.append(MicroBatchPlan(tuple([items[k] for k in b]), run, run[0], packed=True))
    return out
