"""Launching: `launch` starts torchrun on this machine; `main` is what each rank runs.

`lobra execute ... --nproc N` resolves the config (failing early on bad input), then runs
`python -m torch.distributed.run --nproc-per-node N -m lobra.executor.launch <flags>` on a free loopback port. On many
nodes, start `torchrun --nnodes ... -m lobra.executor.launch <flags>` yourself on each node: ranks read the standard
environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT); --out must then be on a filesystem every
node sees (rank 0 writes checkpoints, every rank reads them on --resume). `python -m lobra.executor.launch` without
torchrun runs one rank (a plan of one GPU). Backend: nccl with CUDA, gloo on CPUs.

The launcher holds the output folder's lock (lobra.io.OutputLock) for the job's life and passes SIGINT and SIGTERM
on to torchrun, which stops the ranks: a scheduler stops a job by signalling the launcher. Ranks started without
the launcher take the lock on rank 0. A collective that waits past --collective-timeout ends the rank with a line
saying so instead of hanging on a stopped rank.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
from datetime import timedelta

from lobra.executor.config import ExecutorConfig, add_arguments

from lobra.io import OutputLock

LOCK_HELD = "LOBRA_OUTPUT_LOCKED"  # set for the ranks of a launcher that holds the lock
FORWARDED = (signal.SIGINT, signal.SIGTERM)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_command(cfg: ExecutorConfig, nproc: int, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc-per-node",
        str(nproc),
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(port),
        "-m",
        "lobra.executor.launch",
        *cfg.to_argv(),
    ]


def launch(cfg: ExecutorConfig, nproc: int, *, log: str | os.PathLike | None = None) -> int:
    """Run the job on nproc local ranks; returns torchrun's exit status. log: a file for all ranks' output
    (default: this process's stdout and stderr)."""
    env = dict(os.environ)
    # Up to a few ranks share a few cores: one intra-op thread each, or they fight over the cores.
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("TRANSFORMERS_VERBOSITY", "error")
    env[LOCK_HELD] = "1"
    command = torchrun_command(cfg, nproc, free_port())
    sink = open(log, "w") if log is not None else None  # noqa: SIM115 (closed below, after the job)
    try:
        output = {} if sink is None else {"stdout": sink, "stderr": subprocess.STDOUT}
        return wait_forwarding(subprocess.Popen(command, env=env, **output))
    finally:
        if sink is not None:
            sink.close()


def wait_forwarding(proc: subprocess.Popen) -> int:
    """Wait for the job, passing SIGINT and SIGTERM on to it; its exit status, or 128 + the first signal."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        return proc.wait()
    received: list[int] = []

    def forward(signum, _frame) -> None:
        received.append(signum)
        proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in FORWARDED}
    try:
        rc = proc.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 128 + received[0] if received else rc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lobra.executor.launch", description="one executor rank")
    add_arguments(parser)
    cfg = ExecutorConfig.from_args(parser.parse_args(argv))
    if "RANK" not in os.environ:  # a single process without torchrun
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(free_port()))
    return run_rank(cfg)


def run_rank(cfg: ExecutorConfig) -> int:
    import torch
    import torch.distributed as dist
    from lobra.executor.job import build_runtime, train
    from lobra.executor.resolve import resolve

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    # Every rank checks the inputs before the rendezvous; only the outputs check is rank 0's (before anything
    # is written, since no rank writes before init_process_group has gathered them all).
    run = resolve(cfg, world, check_outputs=rank == 0)
    if rank == 0 and not os.environ.get(LOCK_HELD):
        OutputLock(cfg.out_dir, "execute").acquire()  # held until this process ends
    if run.device == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        backend = "gloo"
    timeout = run.collective_timeout_s
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout))
    try:
        train(build_runtime(run, rank, device))
        dist.barrier()  # every rank is done before any leaves
    except BaseException as err:
        if "Timed out" not in str(err):  # gloo's and nccl's words for a collective past its timeout
            dist.destroy_process_group()
            raise
        sys.stderr.write(
            f"lobra: execute: rank {rank}: a collective waited more than {timeout:g} s (a rank stopped, hung or"
            " is far slower); --collective-timeout sets the limit\n"
        )
        return 1  # no teardown: it would wait on the same missing rank
    return 0  # the process groups go with the process (exit_now)


def exit_now(code: int) -> None:
    """End a finished rank without C++ teardown. Twice on 2026-11-29 (in about 100 runs, both times a rank of
    <1,1>x1 <2,1>x1) a rank aborted at exit with "terminate called without an active exception" (SIGABRT: a
    joinable thread destroyed) after every step, record and adapter was written, failing the run; a barrier before
    destroy_process_group did not prevent it. Everything the rank writes is closed by then, so skip the
    destructors."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
