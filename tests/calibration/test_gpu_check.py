"""The real-GPU check's CPU path (bench/gpu/run.sh ... cpu): the same script the GPU runs, on tiny shapes, so that
a typo cannot waste the GPU's minutes. The lobra namespace is laid out from links, as on the GPU machine."""

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_runs_every_step_on_the_cpu(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "LOBRA_SITE": str(tmp_path / "site")}
    proc = subprocess.run(
        ["bash", str(REPO / "bench" / "gpu" / "run.sh"), str(out), "cpu"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["log.txt", "results.tar.gz", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert {s: v["rc"] for s, v in summary["step_status"].items()} == dict.fromkeys(
        ["lobra", "calibrate", "heldout", "execute", "simulate", "multilora", "calibrate tiny"], 0
    )
    # lobra ran from the laid-out links, not from the installed package
    assert summary["environment"]["lobra_from"] == str(tmp_path / "site" / "lobra")
    # and so did every step's own process (the namespace's subpackages included, as on the GPU machine)
    assert summary["lobra_in_steps"] == str(tmp_path / "site" / "lobra" / "costmodel" / "__init__.py")
    assert summary["environment"]["matmul"]["tflops"] > 0

    # the executor and the simulator ran the same 10 sampled steps; 8 measured after 2 warm-up
    sim_vs_real = summary["sim_vs_real"]
    assert sim_vs_real["pairs"] == 8 and len(sim_vs_real["steps"]) == 10
    assert all(s["real_step_s"] > 0 and s["sim_step_s"] > 0 for s in sim_vs_real["steps"])
    assert summary["fit_check"]["heldout_rows"] > 0
    ratio = summary["multilora_vs_peft"]["ratio_best"]
    assert 0.2 < ratio < 5

    with tarfile.open(out / "results.tar.gz") as tar:
        names = tar.getnames()
        profile = pd.read_csv(io.BytesIO(tar.extractfile("profiles/tiny_cpu_layer_time.csv").read()))
        packed = pd.read_csv(io.BytesIO(tar.extractfile("profiles/tiny_cpu_packed.csv").read()))
    assert not any(n.endswith(".safetensors") for n in names)  # adapters stay behind: an 8B model's are ~1 GB
    assert {"sim_vs_real.csv", "execute/steps.csv", "simulate/steps.csv"} <= set(names)
    assert len(profile) == 9 and (profile["pre_post_time"] > 0).all()
    assert (packed["time"] > 0).all() and (packed["tokens"] >= packed["sequences"]).all()
