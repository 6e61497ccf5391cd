"""The executor never loses work: outputs checked before launch, damaged checkpoints passed over, one run per
folder, signals reach the ranks, a stopped rank ends the job with a message, and the resume hint tells the truth."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lobra.executor.checkpoint import TENSORS_NAME, checkpoint_dirs

from lobra.cli import main
from lobra.io import OutputLock


def execute(ex, out: Path, *flags: str) -> list[str]:
    return ["execute", "--tasks", str(ex.tasks), "--steps", "3", "--out", str(out), *flags]


def ranks_of(out: Path) -> list[int]:
    """pids of the executor ranks writing to `out` (their argv names it)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            b"lobra.executor.launch" in argv
            and str(out).encode() in argv
            and b"torch.distributed.run" not in argv
        ):
            pids.append(int(proc.name))
    return pids


def test_outputs_and_task_names_are_checked_before_launch(ex, tmp_path, capfd):
    """--out read-only, --out a file, a 251-character task name: found only at the first checkpoint, after
    training, with a traceback."""
    afile = tmp_path / "afile"
    afile.write_text("")
    long_tasks = tmp_path / "long.yaml"
    long_tasks.write_text(ex.tasks.read_text().replace("name: gamma", "name: " + "g" * 251))
    for name in ("short_a.csv", "short_b.csv"):
        shutil.copy(ex.tasks.parent / name, tmp_path / name)
    cases = [
        (["--out", "/proc/lobra-out"], "cannot write in output folder /proc/lobra-out"),
        (["--out", str(afile)], f"output folder {afile} exists and is not a folder"),
        (["--tasks", str(long_tasks)], "name must be 1-64 letters, digits"),
    ]
    for changes, message in cases:
        argv = execute(ex, tmp_path / "out", "--plan", "<1,1>x1", "--nproc", "1") + changes
        assert main(argv) == 2
        err = capfd.readouterr().err
        assert err.count("\n") == 1 and message in err, err
        assert not (tmp_path / "out").exists()


def test_a_damaged_checkpoint_is_passed_over_before_launch(joint_run, tmp_path, ex, capfd):
    """A truncated lora_state.safetensors failed --resume on every rank with a SafetensorError, after launch."""

    def damaged(name: str, steps) -> Path:
        out = tmp_path / name
        shutil.copytree(joint_run / "checkpoints", out / "checkpoints")
        assert [n for n, _ in checkpoint_dirs(out / "checkpoints")] == [1, 2, 3]
        for step in steps:
            tensors = out / "checkpoints" / f"step_{step}" / TENSORS_NAME
            tensors.write_bytes(tensors.read_bytes()[:-100])
        return out

    def argv(out: Path) -> list[str]:
        flags = ["--plan", "<1,1>x1", "--nproc", "1", "--resume", "--dtype", "float64", "--lr", str(ex.lr)]
        return execute(ex, out, *flags, "--profile", ex.common["profile"])

    # nothing intact: refused before launch, naming each one and why
    assert main(argv(damaged("all", (1, 2, 3)))) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "--resume: no intact checkpoint under" in err
    assert "step_3: lora_state.safetensors does not match its checksum" in err and "step_1: " in err
    # the newest two damaged: the run resumes from the one before, and says so
    assert main(argv(damaged("newest", (2, 3)))) == 0
    captured = capfd.readouterr()
    assert (
        "passing over damaged checkpoint step_3: lora_state.safetensors does not match its checksum"
        in captured.err
    )
    assert "resuming from step_1" in captured.err
    assert "resumed from" in captured.out and "after step 1" in captured.out


def test_a_crash_before_the_first_checkpoint_says_so(ex, tmp_path, capfd):
    """The hint used to say `--resume` continues; it then failed with "no complete checkpoint"."""
    out = tmp_path / "early"
    argv = execute(ex, out, "--plan", "<1,1>x1", "--nproc", "1", "--fail-at-step", "0")
    assert main(argv) != 0
    err = capfd.readouterr().err
    assert "a rank failed" in err and "no checkpoint was written yet" in err and "--checkpoint-every" in err
    assert "run again without --resume" in err


def test_sigterm_stops_the_ranks_and_a_second_run_is_refused(ex, tmp_path, capfd):
    """SIGTERM to `lobra execute` left torchrun and the ranks running; two runs on one --out both wrote there."""
    out = tmp_path / "job"
    argv = execute(ex, out, "--plan", "<1,1>x2", "--nproc", "2")
    argv += ["--fail-at-step", "1", "--fail-rank", "1", "--fail-mode", "stall"]  # the job then waits for ever
    job = subprocess.Popen([sys.executable, "-m", "lobra.cli", *argv], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(ranks_of(out)) < 2:
            assert time.monotonic() < deadline and job.poll() is None, "the ranks did not start"
            time.sleep(0.5)
        assert main(execute(ex, out, "--plan", "<1,1>x1", "--nproc", "1")) == 2
        err = capfd.readouterr().err
        assert err.count("\n") == 1 and f"{out} is in use by another lobra execute (pid {job.pid} on" in err
        job.send_signal(signal.SIGTERM)
        rc = job.wait(timeout=90)
    finally:
        if job.poll() is None:
            job.kill()
    assert rc == 128 + signal.SIGTERM
    assert "stopped by SIGTERM" in job.stderr.read()
    deadline = time.monotonic() + 30
    while ranks_of(out) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ranks_of(out) == []


def test_a_stalled_rank_ends_the_job_at_the_collective_timeout(ex, tmp_path):
    """A stopped rank hung the job for 10 minutes (the process-group timeout)."""
    out = tmp_path / "stalled"
    start = time.monotonic()
    rc = ex.run_job(
        out,
        "<1,1>x2",
        2,
        3,
        expect_ok=False,
        fail_at_step=1,
        fail_rank=1,
        fail_mode="stall",
        collective_timeout=5.0,
    )
    assert rc != 0 and time.monotonic() - start < 90
    log = (out.parent / f"{out.name}.log").read_text()
    assert "rank 0: a collective waited more than 5 s" in log and "--collective-timeout" in log


def test_the_output_lock_is_exclusive_and_tells_a_stale_one(tmp_path):
    with OutputLock(tmp_path, "execute") as lock:
        assert lock.stale is None
        with pytest.raises(ValueError, match=f"in use by another lobra execute \\(pid {os.getpid()} on"):
            OutputLock(tmp_path, "execute").acquire()
    assert (tmp_path / ".lobra.lock").read_text() == ""  # released cleanly: nothing stale
    (tmp_path / ".lobra.lock").write_text("pid 99999 on elsewhere")  # a run that died holding it
    with OutputLock(tmp_path) as lock:
        assert lock.stale == "pid 99999 on elsewhere"
