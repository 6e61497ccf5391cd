"""`lobra execute`: run a deployment plan for real (torch.distributed), driven by the simulator's dispatcher.

Checks everything it can before launching (tasks, model, plan against the model and --nproc, checkpoints), so bad
input fails with one line and writes nothing; then starts torchrun with --nproc local ranks (lobra.executor.launch).
"""

from __future__ import annotations

import argparse
import sys

from lobra.executor.config import ExecutorConfig, add_arguments
from lobra.executor.errors import ExecutorError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "execute", help="train every task's LoRA adapter on a deployment plan with torch.distributed"
    )
    add_arguments(p)
    p.add_argument("--nproc", type=int, required=True, help="ranks to start here (= the plan's GPU count)")
    p.set_defaults(func=cmd_execute)


def cmd_execute(args) -> int:
    from lobra.executor.launch import launch
    from lobra.executor.resolve import resolve

    if args.nproc < 1:
        raise ExecutorError(f"--nproc must be a positive integer, got {args.nproc}")
    cfg = ExecutorConfig.from_args(args)
    run = resolve(cfg, args.nproc)
    if run.device == "cuda":
        import torch

        if args.nproc > torch.cuda.device_count():
            raise ExecutorError(
                f"--nproc {args.nproc} exceeds the {torch.cuda.device_count()} CUDA devices here"
            )
    rc = launch(cfg, args.nproc)
    if rc:
        sys.stderr.write(
            f"lobra: execute: a rank failed (exit status {rc}); `--resume` continues from the last checkpoint\n"
        )
    return rc
