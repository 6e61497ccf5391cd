"""Sim-vs-real metrics of known step pairs: errors, ranking, the median over repeated runs, the same-data guard."""

import numpy as np
import pandas as pd
import pytest
from lobra.calibration.metrics import (
    dispatch_agreement,
    kendall_tau,
    noise_metrics,
    single_runs,
    step_metrics,
    step_pairs,
)
from lobra.calibration.validate_config import ValidationError
from lobra.costmodel import parse_plan


def test_step_metrics_of_known_pairs():
    pairs = pd.DataFrame({"real_step_s": [1.0, 2.0, 4.0, 0.5], "sim_step_s": [1.1, 1.8, 4.0, 0.6]})
    pairs["real_gpu_s"] = pairs["real_step_s"] * [1, 1, 2, 2]
    pairs["sim_gpu_s"] = pairs["sim_step_s"] * [1, 1, 2, 2]
    m = step_metrics(pairs)
    abs_pct = [10.0, 10.0, 0.0, 20.0]
    assert m["mape_pct"] == pytest.approx(10.0)
    assert m["p95_abs_pct_error"] == pytest.approx(np.percentile(abs_pct, 95)) == pytest.approx(18.5)
    # GPU-seconds: (1.1 + 1.8 + 8.0 + 1.2) / (1 + 2 + 8 + 1) - 1
    assert m["gpu_seconds_error_pct"] == pytest.approx((12.1 / 12.0 - 1) * 100)
    assert m["pairs"] == 4
    assert step_metrics(pairs.iloc[:0])["mape_pct"] is None


def test_kendall_tau_of_known_rankings():
    assert kendall_tau([1.0, 2.0, 3.0], [0.5, 2.5, 9.0]) == pytest.approx(1.0)
    assert kendall_tau([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == pytest.approx(-1.0)
    # one discordant pair of three: (2 - 1) / 3
    assert kendall_tau([1.0, 2.0, 3.0], [1.0, 3.0, 2.0]) == pytest.approx(1 / 3)
    assert kendall_tau([1.0], [2.0]) is None


def _steps(tokens, times):
    return pd.DataFrame(
        {
            "step": range(len(tokens)),
            "num_sequences": 4,
            "tokens": tokens,
            "step_time_s": times,
            "status": "ok",
        }
    )


def test_step_pairs_flag_warmup_and_refuse_different_data():
    plan = parse_plan("<1,1>x2")
    sim = [_steps([10, 20, 30], [1.0, 1.1, 0.9])]
    pairs = step_pairs(plan, [_steps([10, 20, 30], [2.0, 1.0, 1.0])], sim, 1)
    assert list(pairs["warmup"]) == [True, False, False]
    assert list(pairs["error_pct"].round(6)) == [-50.0, 10.0, -10.0]
    assert list(pairs["sim_gpu_s"].round(6)) == [2.0, 2.2, 1.8]
    with pytest.raises(ValidationError, match="step 1: the simulator saw 4 sequences / 21 tokens"):
        step_pairs(plan, [_steps([10, 20, 30], [1.0] * 3)], [_steps([10, 21, 30], [1.0] * 3)], 1)
    with pytest.raises(ValidationError, match="ran steps"):
        step_pairs(plan, [_steps([10, 20], [1.0] * 2)], [_steps([10, 20, 30], [1.0] * 3)], 1)
    # every run is checked, not only the first
    with pytest.raises(ValidationError, match="step 2: the simulator saw 4 sequences / 30 tokens"):
        step_pairs(plan, [_steps([10, 20, 30], [1.0] * 3), _steps([10, 20, 31], [1.0] * 3)], sim, 1)


def test_step_pairs_take_the_median_of_repeated_runs_and_single_runs_keep_each():
    plan = parse_plan("<1,1>x1")
    same = _steps([10, 20], [1.0, 1.0])
    runs = [_steps([10, 20], [3.0, 1.0]), _steps([10, 20], [2.0, 1.25]), _steps([10, 20], [9.0, 0.8])]
    pairs = step_pairs(plan, runs, [same] * 3, 1)
    assert list(pairs["real_step_s"]) == [3.0, 1.0]
    assert list(pairs["real_min_s"]) == [2.0, 0.8] and list(pairs["real_max_s"]) == [9.0, 1.25]
    assert list(pairs["runs"]) == [3, 3] and list(pairs["error_pct"].round(6)) == [-66.666667, 0.0]
    single = single_runs(runs, [same] * 3, pairs)
    assert len(single) == 6 and list(single["run"]) == [0, 0, 1, 1, 2, 2]
    assert list(single["real_step_s"]) == [3.0, 1.0, 2.0, 1.25, 9.0, 0.8]
    assert list(single["median_step_s"]) == [3.0, 1.0] * 3
    noise = noise_metrics(single)
    # measured step 1 only: runs 1.0, 1.25, 0.8 against the median 1.0 and against the simulated 1.0
    assert noise["repeats"] == 3
    assert noise["single_run_vs_median_pct"] == pytest.approx((0 + 25 + 20) / 3)
    assert noise["single_run_mape_pct"] == pytest.approx((0 + 20 + 25) / 3)
    # each round's own simulation: the pair takes their median, a single run is compared with its own
    per_round = [_steps([10, 20], [1.0, 1.0]), _steps([10, 20], [1.0, 1.5]), _steps([10, 20], [1.0, 0.8])]
    pairs = step_pairs(plan, runs, per_round, 1)
    assert list(pairs["sim_step_s"]) == [1.0, 1.0]
    assert list(single_runs(runs, per_round, pairs)["sim_step_s"]) == [1.0, 1.0, 1.0, 1.5, 1.0, 0.8]
    with pytest.raises(ValidationError, match="step 1: the simulator saw 4 sequences / 20 tokens"):
        step_pairs(plan, runs, [same, _steps([10, 21], [1.0, 1.0])], 1)
    assert noise_metrics(single[single["run"] == 0])["single_run_vs_median_pct"] is None


def test_dispatch_agreement_counts_matching_replica_rows():
    real = pd.DataFrame(
        {"step": [0, 0, 1, 1], "replica": [0, 1, 0, 1], "tokens": [5, 6, 7, 8], "padded_tokens": [5, 6, 8, 8]}
    )
    real["micro_batches"] = 1
    sim = real.assign(attempt=0)
    sim.loc[3, "tokens"] = 9
    assert dispatch_agreement(real, sim) == 0.75
