"""The CUDA path: nccl, bf16 base, fp32 adapters. Skipped without CUDA."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from lobra.executor.peft_io import load_adapter_tensors

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_cuda_run_trains_in_bf16_with_fp32_adapters(tmp_path, ex):
    out = tmp_path / "cuda"
    nproc = min(2, torch.cuda.device_count())
    plan = "<1,1>x2" if nproc == 2 else "<1,1>x1"
    ex.run_job(out, plan, nproc, 3, device="cuda", dtype="bfloat16", gpu="h100-80gb")
    losses = pd.read_csv(out / "losses.csv")
    assert losses["loss"].notna().all() and losses["loss"].between(3.0, 8.0).all()
    tensors = load_adapter_tensors(out / "adapters" / ex.names[0])
    assert all(t.dtype == torch.float32 for t in tensors.values())
    assert max(t.abs().max().item() for k, t in tensors.items() if "lora_B" in k) > 0


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA devices")
def test_cuda_tp2_matches_tp1_in_float32(tmp_path, ex):
    ref, tp2 = tmp_path / "tp1", tmp_path / "tp2"
    ex.run_job(ref, "<1,1>x1", 1, 2, device="cuda", dtype="float32", gpu="h100-80gb")
    ex.run_job(tp2, "<2,1>x1", 2, 2, device="cuda", dtype="float32", gpu="h100-80gb")
    for task in ex.names:
        a, b = load_adapter_tensors(ref / "adapters" / task), load_adapter_tensors(tp2 / "adapters" / task)
        assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-4
