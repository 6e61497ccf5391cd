"""Shared runs of the executor tests: each distributed job runs once per session and several tests read it.

Jobs run on CPU with gloo, through the same launcher `lobra execute` uses (torchrun on a free loopback port), in
float64 so that equivalences are checked far below their 1e-5 / 1e-6 tolerances.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from lobra.executor.config import ExecutorConfig
from lobra.executor.launch import launch

HERE = Path(__file__).resolve().parent
TASKS = HERE / "data" / "tasks3.yaml"
TASK_NAMES = ["alpha", "beta.v2", "gamma"]
JOINT_PLAN = "<2,1>x1 <1,1>x2"
STEPS = 3
LR = 1e-2
# The dispatcher's profile is pinned: with the shipped tiny/cpu profile (measured here, TP over gloo ~10x slower per
# token) the balanced dispatcher would leave the joint plan's <2,1> replica idle, and the joint tests would not run it.
PROFILE = HERE / "data" / "ideal_tp_layer_time.csv"
COMMON = {"tasks": str(TASKS), "dtype": "float64", "lr": LR, "seed": 0, "profile": str(PROFILE)}


def run_job(out: Path, plan: str, nproc: int, steps: int, expect_ok: bool = True, **options) -> int:
    cfg = ExecutorConfig(plan=plan, steps=steps, out=str(out), **{**COMMON, **options})
    log = out.parent / f"{out.name}.log"
    out.parent.mkdir(parents=True, exist_ok=True)
    if nproc == 1 and not options.get("fail_at_step"):
        # One rank needs no torchrun: the per-rank entry point runs on its own.
        cmd = [sys.executable, "-m", "lobra.executor.launch", *cfg.to_argv()]
        with open(log, "w") as sink:
            rc = subprocess.run(cmd, stdout=sink, stderr=subprocess.STDOUT, cwd=HERE.parents[1]).returncode
    else:
        rc = launch(cfg, nproc, log=log)
    if expect_ok and rc != 0:
        pytest.fail(f"executor job {plan} failed (rc {rc}):\n{log.read_text()[-4000:]}")
    return rc


@pytest.fixture(scope="session")
def ex():
    """Constants and the job runner, for test modules (conftest is not importable under importlib mode)."""
    return SimpleNamespace(
        tasks=TASKS, names=TASK_NAMES, plan=JOINT_PLAN, steps=STEPS, lr=LR, run_job=run_job, common=COMMON
    )


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("executor_runs")


@pytest.fixture(scope="session")
def joint_run(runs_dir) -> Path:
    """3 tasks, 3 steps, heterogeneous plan on 4 ranks, a checkpoint after every step, through `lobra execute`."""
    from lobra.cli import main

    out = runs_dir / "joint"
    argv = ["execute", "--tasks", str(TASKS), "--plan", JOINT_PLAN, "--steps", str(STEPS), "--nproc", "4"]
    argv += [
        "--out",
        str(out),
        "--dtype",
        "float64",
        "--lr",
        str(LR),
        "--checkpoint-every",
        "1",
        "--dump-grads",
    ]
    argv += ["--keep-checkpoints", "5", "--profile", str(PROFILE)]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="session")
def single_run(runs_dir) -> Path:
    """The reference replica for the TP and PP checks: <1,1>, one rank, 2 steps, gradients dumped."""
    out = runs_dir / "tp1pp1"
    run_job(out, "<1,1>x1", 1, 2, dump_grads=True)
    return out
