import numpy as np
import pytest
from lobra.costmodel import load_gpu_spec, load_model_spec
from lobra.costmodel.analytical import (
    AnalyticalLayerTime,
    Efficiency,
    calibrate_efficiency,
    reference_efficiency,
)

LLAMA7B = load_model_spec("llama2-7b")


def test_reference_efficiency_is_physical():
    eff = reference_efficiency()
    assert 0 < eff.eta_max <= 1 and 0 < eff.eta_attn <= 1 and 0 < eff.eta_comm <= 1


def test_in_sample_error_on_the_a100_profile(a100_profile):
    lt = AnalyticalLayerTime(LLAMA7B, load_gpu_spec("a100-40gb"), reference_efficiency())
    pred = np.concatenate([lt.predict_ms(tp, r["mbs"], r["seq_len"]) for tp, r in a100_profile.groupby("tp")])
    meas = np.concatenate([r["time"] for _, r in a100_profile.groupby("tp")])
    assert np.mean(np.abs(pred - meas) / meas) < 0.08


def test_leave_one_tp_out_error_is_bounded(a100_profile):
    """Calibrated without tp=4, predicts tp=4 (measured ~5% when written; 15% guards regressions)."""
    gpu = load_gpu_spec("a100-40gb")
    eff = calibrate_efficiency(LLAMA7B, gpu, a100_profile[a100_profile["tp"] != 4])
    rows = a100_profile[a100_profile["tp"] == 4]
    pred = AnalyticalLayerTime(LLAMA7B, gpu, eff).predict_ms(4, rows["mbs"], rows["seq_len"])
    assert np.mean(np.abs(pred - rows["time"]) / rows["time"]) < 0.15


def test_small_micro_batches_run_below_peak():
    lt = AnalyticalLayerTime(LLAMA7B, load_gpu_spec("h100-80gb"), reference_efficiency())
    ms_per_token = [lt.predict_ms(1, 1, s) / s for s in (64, 256, 1024)]
    assert ms_per_token[0] > ms_per_token[1] > ms_per_token[2]
    # achieved GEMM FLOP/s at 64 tokens is far below that at 4096 (well under a third)
    gemm = 4 * sum(i * o for i, o in LLAMA7B.linear_shapes.values())
    small = gemm * 64 / (lt.predict_ms(1, 1, 64) / 1e3)
    large = gemm * 4096 / (lt.predict_ms(1, 4, 1024) / 1e3)
    assert small < large / 3


def test_faster_gpu_is_faster_and_tp_splits_work():
    eff = reference_efficiency()
    a100 = AnalyticalLayerTime(LLAMA7B, load_gpu_spec("a100-40gb"), eff)
    h100 = AnalyticalLayerTime(LLAMA7B, load_gpu_spec("h100-80gb"), eff)
    assert h100.predict_ms(1, 4, 2048) < a100.predict_ms(1, 4, 2048) / 2
    assert a100.predict_ms(2, 4, 4096) < a100.predict_ms(1, 4, 4096)
    # attention is quadratic: net of the fixed per-layer overhead, doubling a long length costs more than double
    t0 = eff.t0_ms
    assert a100.predict_ms(8, 1, 16384) - t0 > 2 * (a100.predict_ms(8, 1, 8192) - t0) * 1.01


def test_packed_equal_lengths_match_padded():
    lt = AnalyticalLayerTime(LLAMA7B, load_gpu_spec("a100-40gb"), Efficiency())
    assert lt.predict_packed_ms(2, [1000] * 3) == pytest.approx(lt.predict_ms(2, 3, 1000))


def test_bad_efficiency():
    with pytest.raises(ValueError, match="eta_max"):
        Efficiency(eta_max=0)
