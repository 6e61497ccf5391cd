"""Synthetic traces: capped integer lengths hit the paper's moments; seeds; the shipped fit cache."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lobra.traces import PAPER_DATASETS, SyntheticSpec, TraceError, fit_synthetic, synthetic_trace
from lobra.traces.synthetic import cached_fits, synthetic_lengths
from lobra.traces.trace import length_stats

BENCH_CSV = Path(__file__).resolve().parents[2] / "bench" / "results" / "synthetic_traces.csv"


def _spec(name: str, **kw) -> SyntheticSpec:
    d = PAPER_DATASETS[name]
    return SyntheticSpec(d.mean, d.skewness, d.kurtosis, **kw)


# A fresh fit (no cache) at fewer samples than the shipped one: light, heavy, bounded and extreme shapes.
@pytest.mark.parametrize("name", ["CommitPackFT", "dolly", "BillSum", "XSum"])
def test_fresh_fit_hits_targets(name):
    spec = _spec(name, samples=20_000, seed=3)
    assert spec.key not in cached_fits()
    fit = fit_synthetic(spec, use_cache=False)
    x = synthetic_lengths(spec, fit)
    s = length_stats(x)
    d = PAPER_DATASETS[name]
    assert s.mean == pytest.approx(d.mean, rel=0.02)
    assert s.skewness == pytest.approx(d.skewness, rel=0.10)
    assert s.kurtosis == pytest.approx(d.kurtosis, rel=0.15)
    assert x.dtype == np.int64 and x.min() >= 1 and x.max() <= 16384 and len(x) == 20_000


def test_all_twelve_shipped_fits_hit_targets_at_100k():
    for name, d in PAPER_DATASETS.items():
        spec = _spec(name)
        assert spec.key in cached_fits(), name
        s = synthetic_trace(spec, name=name).stats
        assert s.mean == pytest.approx(d.mean, rel=0.02), name
        assert s.skewness == pytest.approx(d.skewness, rel=0.10), name
        assert s.count == 100_000 and s.max <= 16384


def test_shipped_fit_equals_a_fresh_fit():
    spec = _spec("MeetingBank")
    cached, fresh = fit_synthetic(spec), fit_synthetic(spec, use_cache=False)
    assert cached.family == fresh.family
    assert np.array_equal(synthetic_lengths(spec, cached), synthetic_lengths(spec, fresh))


def test_bench_results_table_meets_done_when():
    df = pd.read_csv(BENCH_CSV)
    assert sorted(df["dataset"]) == sorted(PAPER_DATASETS)
    assert (df["mean_err_pct"].abs() <= 2).all()
    assert (df["skew_err_pct"].abs() <= 10).all()


def test_seed_orders_samples_deterministically():
    spec = _spec("MathInstruct", samples=5000, seed=1)
    a, b = synthetic_lengths(spec), synthetic_lengths(spec)
    c = synthetic_lengths(replace(spec, seed=2))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # The seed only orders: the values are the fitted distribution's quantile midpoints.
    assert np.array_equal(np.sort(a), np.sort(c))


def test_smaller_cap_is_respected_and_accounted_for():
    spec = SyntheticSpec(700, 3.0, 15.0, cap=4096, samples=20_000)
    s = synthetic_trace(spec).stats
    assert s.max <= 4096
    assert s.mean == pytest.approx(700, rel=0.01) and s.skewness == pytest.approx(3.0, rel=0.05)


def test_unreachable_targets_are_refused():
    # No sample of n values has a skewness above (n - 2) / sqrt(n - 1), 9.85 for n = 100.
    with pytest.raises(TraceError, match="cannot reach mean 300, skewness 12"):
        synthetic_trace(SyntheticSpec(300, 12.0, 200.0, samples=100))


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"kurtosis": 0.0, "skewness": 2.0}, "impossible"),
        ({"mean": 20000}, "between 1 and the cap"),
        ({"mean": float("nan")}, "finite number"),
        ({"samples": 5}, "samples must be an integer >= 10"),
        ({"cap": 100.5}, "cap must be an integer"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"skewness": True}, "finite number"),
    ],
)
def test_spec_validation(kw, match):
    base = {"mean": 300.0, "skewness": 2.0, "kurtosis": 10.0}
    with pytest.raises(TraceError, match=match):
        SyntheticSpec(**{**base, **kw})
