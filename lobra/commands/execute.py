"""`lobra execute`: run a deployment plan for real (torch.distributed), driven by the simulator's dispatcher.

Checks everything it can before launching (tasks, model, plan against the model and --nproc, checkpoints), so bad
input fails with one line and writes nothing; then starts torchrun with --nproc local ranks (lobra.executor.launch).
"""

from __future__ import annotations

import argparse
import signal
import sys

from lobra.executor.config import ExecutorConfig, add_arguments
from lobra.executor.errors import ExecutorError
from lobra.io import OutputLock


def register(p: argparse.ArgumentParser) -> None:
    add_arguments(p)
    p.add_argument(
        "--nproc", type=int, help="ranks to start here (default and only value today: the plan's GPU count)"
    )
    p.set_defaults(func=cmd_execute)


def cmd_execute(args) -> int:
    from lobra.executor.launch import launch
    from lobra.executor.resolve import resolve

    cfg = ExecutorConfig.from_args(args)
    if args.nproc is None:
        from lobra.costmodel import parse_plan

        args.nproc = parse_plan(cfg.plan).num_gpus
    if args.nproc < 1:
        raise ExecutorError(f"--nproc must be a positive integer, got {args.nproc}")
    run = resolve(cfg, args.nproc)
    if run.device == "cuda":
        import torch

        if args.nproc > torch.cuda.device_count():
            raise ExecutorError(
                f"--nproc {args.nproc} exceeds the {torch.cuda.device_count()} CUDA devices here"
            )
    with OutputLock(cfg.out_dir, "execute") as lock:
        if lock.stale:
            sys.stderr.write(
                f"lobra: execute: {cfg.out_dir}: the last run there ({lock.stale}) did not end cleanly\n"
            )
        rc = launch(cfg, args.nproc)
    if rc:
        sys.stderr.write(f"lobra: execute: {_stopped(rc)}; {_resume_hint(cfg)}\n")
    return rc


def _stopped(rc: int) -> str:
    if rc > 128 and rc - 128 in (signal.SIGINT, signal.SIGTERM):
        return f"stopped by {signal.Signals(rc - 128).name} (the ranks were stopped too)"
    return f"a rank failed (exit status {rc})"


def _resume_hint(cfg: ExecutorConfig) -> str:
    """What is true of --resume now: where it would continue, or why it cannot."""
    from lobra.executor.checkpoint import intact_checkpoint

    path, _ = intact_checkpoint(cfg.checkpoint_dir)
    if path is None:
        return (
            f"no checkpoint was written yet (one comes every {cfg.checkpoint_every} steps: --checkpoint-every);"
            " run again without --resume"
        )
    step = path.name.removeprefix("step_")
    return f"`--resume` continues after step {step} ({path})"
