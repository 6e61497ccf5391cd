"""A rank dies mid-run; --resume continues from the last checkpoint to the same adapters as an uninterrupted run,
with no step lost or repeated."""

from __future__ import annotations

import pandas as pd
import pytest
from lobra.executor.checkpoint import checkpoint_dirs
from lobra.executor.peft_io import load_adapter_tensors


@pytest.mark.slow
def test_kill_a_rank_then_resume_equals_uninterrupted(joint_run, runs_dir, ex):
    out = runs_dir / "killed"
    # Rank 3 (replica 2) dies in step 1, after its first micro-batch's forward: the checkpoint of step 0 is the last.
    rc = ex.run_job(
        out, ex.plan, 4, ex.steps, expect_ok=False, checkpoint_every=1, fail_at_step=1, fail_rank=3
    )
    assert rc != 0
    assert [n for n, _ in checkpoint_dirs(out / "checkpoints")] == [1]
    assert not (out / "adapters").exists()

    ex.run_job(out, ex.plan, 4, ex.steps, checkpoint_every=1, resume=True)
    log = (runs_dir / "killed.log").read_text()
    assert "resumed from" in log and "after step 1" in log

    diff = 0.0
    for task in ex.names:
        a = load_adapter_tensors(joint_run / "adapters" / task)
        b = load_adapter_tensors(out / "adapters" / task)
        diff = max(diff, max((a[k] - b[k]).abs().max().item() for k in a))
    print(f"resumed vs uninterrupted: max abs diff {diff:.3g}")
    assert diff <= 1e-6

    steps = pd.read_csv(out / "steps.csv")
    assert steps["step"].tolist() == list(range(ex.steps))  # none lost, none repeated
    ref = pd.read_csv(joint_run / "losses.csv")
    got = pd.read_csv(out / "losses.csv")
    assert got[["step", "task", "targets"]].equals(ref[["step", "task", "targets"]])
    assert (got["loss"] - ref["loss"]).abs().max() <= 1e-9  # the same data at every step


def test_resume_refuses_a_checkpoint_of_other_tasks(joint_run, tmp_path, ex, capsys):
    import shutil

    from lobra.cli import main

    out = tmp_path / "other"
    shutil.copytree(joint_run / "checkpoints", out / "checkpoints")
    other_tasks = tmp_path / "tasks.yaml"
    other_tasks.write_text(ex.tasks.read_text().replace("rank: 4", "rank: 5"))
    for name in ("short_a.csv", "short_b.csv"):
        shutil.copy(ex.tasks.parent / name, tmp_path / name)
    argv = ["execute", "--tasks", str(other_tasks), "--plan", "<1,1>x1", "--steps", "4", "--nproc", "1"]
    argv += ["--out", str(out)]  # the checkpoint's tasks had rank 4 where this file says 5
    assert main(argv + ["--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "was written with another tasks" in err
    assert main(argv) == 2  # without --resume: refuses to overwrite the checkpoints
    assert "pass --resume" in capsys.readouterr().err
