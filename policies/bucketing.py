"""Bucketing: the padded length of every sequence of a step.

`dp_buckets` is the optimal dynamic programme of the LobRA paper: with lengths rounded up to a multiple of 16, choose
at most B bucket boundaries (each a rounded length that occurs) minimising the padded tokens, every sequence padded
to the smallest boundary that holds it. `pow2_buckets` is the baselines' fixed power-of-two ladder (256..16K).
"""

from __future__ import annotations

import numpy as np
from lobra.policies.registry import PolicyError

ROUND_TO = 16
DEFAULT_NUM_BUCKETS = 16
POW2_MIN = 256


def round_up(lengths, multiple: int = ROUND_TO) -> np.ndarray:
    lengths = np.asarray(lengths, dtype=np.int64)
    return -(-lengths // multiple) * multiple


def dp_buckets(lengths, max_buckets: int = DEFAULT_NUM_BUCKETS, round_to: int = ROUND_TO) -> np.ndarray:
    """Optimal boundaries (sorted) for these lengths; at most `max_buckets` of them."""
    if max_buckets < 1:
        raise PolicyError(f"the number of buckets must be at least 1, got {max_buckets}")
    values, counts = np.unique(round_up(lengths, round_to), return_counts=True)
    m = len(values)
    if m <= max_buckets:
        return values
    prefix = np.concatenate([[0], np.cumsum(counts)])  # prefix[j] = sequences with value index < j
    v = values.astype(float)
    # cost[k][j]: least padded tokens covering values[:j+1] with k+1 buckets, the last boundary at values[j].
    cost = v * prefix[1:]
    choice = np.zeros((max_buckets, m), dtype=np.int64)
    # previous last boundary at i < j: cost[i] + v[j] * (prefix[j+1] - prefix[i+1]); the part without cost[i] is
    # the same for every k (all integers in float64, so the sum is exact in any order), +inf where i >= j
    step = (v * prefix[1:])[:, None] - v[:, None] * prefix[None, 1:]
    step[np.triu_indices(m)] = np.inf
    for k in range(1, max_buckets):
        cand = cost[None, :] + step
        best = cand.argmin(axis=1)
        new = cand[np.arange(m), best]
        new[0] = cost[0]
        choice[k] = best
        improve = new < cost
        choice[k][~improve] = -1  # keep the k-bucket solution (fewer buckets)
        cost = np.minimum(cost, new)
    # Walk back from the last value.
    bounds, j, k = [], m - 1, max_buckets - 1
    while j >= 0:
        bounds.append(values[j])
        while k > 0 and choice[k][j] == -1:
            k -= 1
        if k == 0:
            break
        j, k = choice[k][j], k - 1
    return np.array(sorted(bounds), dtype=np.int64)


def pow2_buckets(max_len: int, min_len: int = POW2_MIN) -> np.ndarray:
    """256, 512, ... up to the first power of two that holds max_len."""
    out, b = [], min_len
    while True:
        out.append(b)
        if b >= max_len:
            return np.array(out, dtype=np.int64)
        b *= 2


def assign_buckets(lengths, boundaries) -> np.ndarray:
    """The padded length of each sequence: the smallest boundary that holds it."""
    lengths = np.asarray(lengths)
    idx = np.searchsorted(boundaries, lengths, side="left")
    if (idx >= len(boundaries)).any():
        raise PolicyError(
            f"a sequence of {int(lengths.max())} tokens exceeds the largest bucket {boundaries[-1]}"
        )
    return np.asarray(boundaries)[idx]


def padded_tokens(lengths, boundaries) -> int:
    return int(assign_buckets(lengths, boundaries).sum())
