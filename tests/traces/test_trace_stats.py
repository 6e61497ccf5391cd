"""Shipped traces: copies of the shared data, and statistics that match SOURCES.md's table."""

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from lobra.traces import Trace, TraceError, load_trace, shipped_traces
from lobra.traces.trace import DATA_DIR

SHARED = Path(__file__).resolve().parents[3] / "shared" / "traces"


def _sources_table() -> dict[str, dict[str, float]]:
    """The summary table at the top of SOURCES.md: file -> n, min, p50, p90, p99, max, mean, std, skew."""
    rows = {}
    for line in (DATA_DIR / "SOURCES.md").read_text().splitlines():
        m = re.match(r"^\| (\w+)\.csv \|(.*)\|$", line)
        if m:
            values = [float(v.strip().replace(",", "")) for v in m.group(2).split("|")]
            rows[m.group(1)] = dict(
                zip(["n", "min", "p50", "p90", "p99", "max", "mean", "std", "skew"], values, strict=True)
            )
    return rows


TABLE = _sources_table()


def test_every_shipped_trace_is_in_sources_table():
    assert len(TABLE) == 9
    assert sorted(TABLE) == shipped_traces()


@pytest.mark.parametrize("name", sorted(TABLE))
def test_statistics_match_sources_md(name):
    want, got = TABLE[name], load_trace(name).stats
    assert got.count == want["n"]
    assert got.min == want["min"] and got.max == want["max"]
    # SOURCES.md prints percentiles to 0.1 (linear interpolation), mean/std to 0.1 and skew to 0.01.
    for key in ("p50", "p90", "p99", "mean", "std"):
        assert getattr(got, key) == pytest.approx(want[key], abs=0.051), key
    assert got.skewness == pytest.approx(want["skew"], abs=0.0051)


def test_kurtosis_and_prompt_means_of_codealpaca():
    s = load_trace("codealpaca_2k").stats
    # SOURCES.md: mean prompt 70.2, mean response 68.2; kurtosis is Fisher excess (a normal has 0).
    assert s.mean_prompt == pytest.approx(70.2, abs=0.051)
    assert s.mean_response == pytest.approx(68.2, abs=0.051)
    x = load_trace("codealpaca_2k").total.astype(float)
    z = (x - x.mean()) / x.std()
    assert s.kurtosis == pytest.approx((z**4).mean() - 3, rel=1e-12)
    assert s.skewness == pytest.approx((z**3).mean(), rel=1e-12)


def test_shipped_files_are_unchanged_copies():
    listed = dict(re.findall(r"^\s+([0-9a-f]{64})  (\S+)$", (DATA_DIR / "README.md").read_text(), re.M))
    hashes = {name: digest for digest, name in listed.items()}
    assert len(hashes) == 10
    for name, digest in hashes.items():
        data = (DATA_DIR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name
        if SHARED.is_dir():
            assert data == (SHARED / name).read_bytes(), name


def test_trace_arrays_are_read_only_and_cached():
    a, b = load_trace("gsm8k_train"), load_trace("gsm8k_train")
    assert a is b
    with pytest.raises(ValueError):
        a.total[0] = 5
    assert a.prompt is not None and np.array_equal(a.prompt + a.response, a.total)


def test_trace_validation():
    with pytest.raises(TraceError, match="no samples"):
        Trace("t", [])
    with pytest.raises(TraceError, match=">= 1"):
        Trace("t", [3, 0])
    with pytest.raises(TraceError, match="integers"):
        Trace("t", [1.5, 2])
    with pytest.raises(TraceError, match="both prompt and response"):
        Trace("t", [3], prompt=[1])
    with pytest.raises(TraceError, match="!= total"):
        Trace("t", [3, 4], prompt=[1, 1], response=[2, 2])
    t = Trace("t", [5, 5, 5])
    assert t.stats.skewness == 0.0 and t.stats.kurtosis == 0.0 and t.stats.std == 0.0


def test_relative_csv_path_and_prompt_free_csv(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "t.csv").write_text("total_tokens\n10\n20\n30\n")
    t = load_trace("sub/t.csv", base_dir=tmp_path)
    assert t.name == "t" and t.prompt is None and t.stats.mean == 20
