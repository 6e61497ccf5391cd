import json

import pandas as pd
import pytest
from lobra.calibration.layer import CalibrationGrid, LayerBench, calibrate
from lobra.costmodel import CostModel, load_gpu_spec
from lobra.costmodel.errors import CostModelError
from lobra.costmodel.specs import load_model_spec


def test_calibration_writes_profile_fit_and_spec(tmp_path):
    grid = CalibrationGrid(seq_lens=(32, 64, 128), mbs=(1, 2, 4), repeats=1)
    result = calibrate("tiny", "cpu", grid, tmp_path, progress=False)
    profile = pd.read_csv(result.profile_path)
    assert list(profile.columns) == ["tp", "seq_len", "mbs", "time", "pre_post_time"]
    assert (profile["pre_post_time"] > 0).all()
    assert len(profile) == 9 and (profile["time"] > 0).all()
    assert json.loads(result.fit_path.read_text())["coeffs"].keys() == {"1"}
    spec = load_gpu_spec(str(result.spec_path))
    assert spec.name == "cpu" and spec.peak_tflops > 0
    # The written profile drives a cost model for tiny on the measured spec.
    cm = CostModel.build("tiny", spec, profile=result.profile_path)
    assert cm.fit is not None and cm.fit.tps == [1]


def test_layer_bench_runs_lora_backward():
    bench = LayerBench(load_model_spec("tiny"), "cpu")
    lora = [n for n, p in bench.layer.named_parameters() if p.requires_grad]
    assert lora and all("lora_" in n for n in lora)
    assert bench.time_ms(2, 16, repeats=1) > 0
    assert all(p.grad is not None for p in bench.layer.parameters() if p.requires_grad)


def test_bad_grid_and_missing_cuda():
    with pytest.raises(CostModelError, match="comma-separated integers"):
        CalibrationGrid.for_device("cpu", seq_lens="64,abc")
    with pytest.raises(CostModelError):
        CalibrationGrid(seq_lens=(0,), mbs=(1,))
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(CostModelError, match="no CUDA device"):
            LayerBench(load_model_spec("tiny"), "cuda")
