"""Synthetic traces of the paper's 12 datasets: target vs achieved mean, skewness and kurtosis.

Fits every dataset afresh (no cache), generates its trace (16K cap, 100k samples by default), prints the
table, writes it to bench/results/synthetic_traces.csv and, with the default cap and sample count, rewrites
the shipped fit cache traces/data/synthetic_fits.json that scenario loading uses. Exit status 1 if a
dataset misses the done-when bar: mean within 2%, skewness within 10%.

    .venv/bin/python bench/synthetic_traces.py [--samples N] [--cap L]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
from lobra.traces.synthetic import (
    DEFAULT_CAP,
    DEFAULT_SAMPLES,
    FITS_PATH,
    PAPER_DATASETS,
    SyntheticSpec,
    _fit_uncached,
    synthetic_lengths,
    write_fits,
)
from lobra.traces.trace import length_stats

from lobra.io import atomic_write

RESULTS = Path(__file__).resolve().parent / "results" / "synthetic_traces.csv"
MEAN_TOL, SKEW_TOL = 0.02, 0.10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES)
    parser.add_argument("--cap", type=int, default=DEFAULT_CAP)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)

    rows, specs = [], []
    for seed, (name, d) in enumerate(PAPER_DATASETS.items(), start=1):
        spec = SyntheticSpec(d.mean, d.skewness, d.kurtosis, cap=args.cap, samples=args.samples, seed=seed)
        start = time.perf_counter()
        fit = _fit_uncached(replace(spec, seed=0))
        fit_s = time.perf_counter() - start
        got = length_stats(synthetic_lengths(spec, fit))
        specs.append(spec)
        rows.append(
            {
                "dataset": name,
                "family": fit.family,
                "mean_target": d.mean,
                "mean": got.mean,
                "mean_err_pct": 100 * (got.mean / d.mean - 1),
                "skew_target": d.skewness,
                "skew": got.skewness,
                "skew_err_pct": 100 * (got.skewness / d.skewness - 1),
                "kurt_target": d.kurtosis,
                "kurt": got.kurtosis,
                "kurt_err_pct": 100 * (got.kurtosis / d.kurtosis - 1),
                "p50": got.p50,
                "p99": got.p99,
                "max": got.max,
                "fit_s": fit_s,
            }
        )
    df = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(f"synthetic traces: cap {args.cap}, {args.samples} samples each")
        # Enough digits that achieved values are not rounded onto their targets.
        fmt = {c: "{:.3f}".format for c in ("mean", "skew", "kurt")}
        fmt |= {c: "{:+.4f}".format for c in ("mean_err_pct", "skew_err_pct", "kurt_err_pct")}
        fmt |= {"p50": "{:.0f}".format, "p99": "{:.0f}".format, "fit_s": "{:.2f}".format}
        print(df.to_string(index=False, formatters=fmt))
    atomic_write(args.out, lambda tmp: df.to_csv(tmp, index=False, float_format="%.6g"))
    print(f"wrote {args.out}")
    if args.cap == DEFAULT_CAP and args.samples == DEFAULT_SAMPLES:
        write_fits(specs)
        print(f"wrote {FITS_PATH}")

    bad = df[(df.mean_err_pct.abs() > 100 * MEAN_TOL) | (df.skew_err_pct.abs() > 100 * SKEW_TOL)]
    if len(bad):
        print(
            f"MISSED (mean within {MEAN_TOL:.0%}, skewness within {SKEW_TOL:.0%}): {', '.join(bad.dataset)}"
        )
        return 1
    print(
        f"all {len(df)} datasets: mean within {MEAN_TOL:.0%} and skewness within {SKEW_TOL:.0%} of the target"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
