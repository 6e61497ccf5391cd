"""Micro-batches of one replica's share of a step.

Padded (the paper): sequences grouped by padded length; per length, full micro-batches of floor(max_tokens / s)
sequences, the remainder one smaller micro-batch. Grouping by length alone merges remainders of the same length
across tasks. Longest micro-batches first. Packed (ours): first-fit decreasing of the real lengths into micro-batches
of at most max_tokens tokens, no padding.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from policies.registry import PolicyError
from policies.types import MicroBatchPlan


def padded_micro_batches(
    items: Sequence[int], lengths: Sequence[int], padded: Sequence[int], max_tokens: int
) -> list[MicroBatchPlan]:
    """items[k] runs with length lengths[k], padded to padded[k]."""
    by_len: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for item, n, s in zip(items, lengths, padded, strict=True):
        by_len[int(s)].append((item, int(n)))
    out = []
    for s in sorted(by_len, reverse=True):
        per_mb = max_tokens // s
        if per_mb < 1:
            raise PolicyError(
                f"a sequence padded to {s} tokens does not fit a micro-batch of {max_tokens} tokens"
            )
        group = by_len[s]
        for start in range(0, len(group), per_mb):
            chunk = group[start : start + per_mb]
            out.append(MicroBatchPlan(tuple(i for i, _ in chunk), tuple(n for _, n in chunk), s))
    return out


def packed_micro_batches(
    items: Sequence[int], lengths: Sequence[int], max_tokens: int
) -> list[MicroBatchPlan]:
    """First-fit decreasing into bins of max_tokens tokens."""
    order = sorted(range(len(items)), key=lambda k: -lengths[k])
    bins: list[list[int]] = []
    room: list[int] = []
    for k in order:
        n = int(lengths[k])
        if n > max_tokens:
            raise PolicyError(f"a sequence of {n} tokens does not fit a micro-batch of {max_tokens} tokens")
        for b, free in enumerate(room):
            if n <= free:
                bins[b].append(k)
                room[b] -= n
                break
        else:
            bins.append([k])
            room.append(max_tokens - n)
    return [
        MicroBatchPlan(
            tuple(items[k] for k in b),
            tuple(int(lengths[k]) for k in b),
            max(int(lengths[k]) for k in b),
            packed=True,
        )
        for b in bins
    ]


def chunk_costs(per_seq_s: float, per_mb_s: float, count: int, per_mb: int) -> float:
    """Time of `count` sequences of one padded length on one replica: full micro-batches plus the remainder."""
    full, rest = divmod(count, per_mb)
    return count * per_seq_s + (full + (1 if rest else 0)) * per_mb_s
