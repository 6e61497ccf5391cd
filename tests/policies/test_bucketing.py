import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lobra.policies.bucketing import assign_buckets, dp_buckets, padded_tokens, pow2_buckets, round_up
from lobra.policies.registry import PolicyError


def brute_force(lengths, max_buckets):
    values = np.unique(round_up(lengths))
    best = None
    for k in range(1, min(max_buckets, len(values)) + 1):
        for inner in itertools.combinations(values[:-1], k - 1):
            cost = padded_tokens(lengths, np.array([*inner, values[-1]]))
            best = cost if best is None else min(best, cost)
    return best


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(1, 600), min_size=1, max_size=25), st.integers(1, 5))
def test_dp_is_optimal_against_brute_force(lengths, max_buckets):
    bounds = dp_buckets(lengths, max_buckets)
    assert len(bounds) <= max_buckets
    assert bounds[-1] >= max(lengths)
    assert all(b % 16 == 0 for b in bounds)
    assert padded_tokens(lengths, bounds) == brute_force(lengths, max_buckets)


def test_dp_hand_computed():
    # rounded: 16, 32, 32, 96; two buckets: {32, 96} pads to 32+32+32+96 = 192
    assert dp_buckets([10, 20, 30, 90], 2).tolist() == [32, 96]
    assert dp_buckets([10, 20, 30, 90], 1).tolist() == [96]
    assert dp_buckets([10, 20], 16).tolist() == [16, 32]


def test_pow2_ladder_and_assignment():
    assert pow2_buckets(3000).tolist() == [256, 512, 1024, 2048, 4096]
    assert pow2_buckets(100).tolist() == [256]
    assert assign_buckets([1, 256, 257, 3000], pow2_buckets(3000)).tolist() == [256, 256, 512, 4096]
    with pytest.raises(PolicyError, match="exceeds the largest bucket"):
        assign_buckets([5000], pow2_buckets(3000))
    with pytest.raises(PolicyError):
        dp_buckets([1, 2], 0)
