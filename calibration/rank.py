"""One rank of a calibration job: `python -m lobra.calibration.rank` under torchrun (calibration/jobs.py starts it).

Every rank builds the executor's own replica (executor.job.build_runtime) for the job's plan and runs whole
micro-batches through executor.pipeline.train_replica: the grid of profile shapes, then the host measurements
(calibration/host.py). Rank 0 writes what the job measured (calibration/measurements.py).

Repeats are rounds over the whole grid, not back-to-back runs of one point: a VM's speed drifts in phases of a few
seconds, so back-to-back repeats all land in one phase and points measured seconds apart disagree; a round per
repeat spreads each point's samples over the whole job. A shape's first run in the process is measured apart,
with its second straight after it, before the rounds: their difference is the first-run cost of that tp degree.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

from lobra.calibration import derive
from lobra.calibration.measurements import GridPoint, HostMeasurement, RankResult
from lobra.executor.launch import exit_now

# A step-like mix of micro-batches (seq_len, mbs), timed as one block alone and with every rank at once.
REFERENCE_BLOCK = ((1024, 1), (512, 2), (256, 4), (128, 4), (64, 2))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lobra.calibration.rank", description="one calibration rank"
    )
    parser.add_argument("--plan", required=True)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--points", default="[]", help="JSON list of [seq_len, mbs]")
    parser.add_argument(
        "--host",
        action="store_true",
        help="also measure each config's contention in this plan, sync and optimizer",
    )
    parser.add_argument(
        "--host-repeats", type=int, help="samples of the host measurements (default --repeats)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch
    import torch.distributed as dist
    from lobra.executor.config import ExecutorConfig
    from lobra.executor.job import build_runtime
    from lobra.executor.resolve import resolve

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ExecutorConfig(
            plan=args.plan, steps=1, scenario=args.scenario, model=args.model, out=tmp, device="cpu"
        )
        run = resolve(cfg, world, check_outputs=False)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    dist.init_process_group("gloo")
    try:
        rt = build_runtime(run, rank, torch.device("cpu"))
        load = os.getloadavg()[0]
        grid = time_grid(rt, [tuple(p) for p in json.loads(args.points)], args.repeats)
        host = time_host(rt, args.host_repeats or args.repeats, world) if args.host else None
        if rank == 0:
            RankResult(tuple(grid), host, round(load, 2)).write(args.result)
        dist.barrier()
    except BaseException:
        dist.destroy_process_group()
        raise
    return 0  # the process groups go with the process (executor.launch.exit_now)


def _micro_batch(rt, seq_len: int, mbs: int):
    """A micro-batch of mbs full-length sequences, tasks dealt round-robin (real micro-batches mix tasks)."""
    from lobra.executor.data import build_micro_batch
    from lobra.policies.types import MicroBatchPlan, StepItem

    items = [StepItem(rt.tasks[k % len(rt.tasks)], seq_len) for k in range(mbs)]
    keys = [(it.task, 0, k) for k, it in enumerate(items)]
    targets: dict[str, int] = {}
    for it in items:
        targets[it.task] = targets.get(it.task, 0) + seq_len - 1
    plan = MicroBatchPlan(tuple(range(mbs)), (seq_len,) * mbs, seq_len)
    dtype = rt.lora.bindings[0].param.dtype
    return build_micro_batch(plan, items, keys, rt.source, rt.tasks, targets, rt.device, dtype)


def _replica(rt, micro_batches: list):
    """Forward+backward of these micro-batches on this rank's replica, by the executor's own loop."""
    from lobra.executor.pipeline import train_replica

    return train_replica(rt.stage, rt.batch, micro_batches, rt.place, len(rt.tasks), rt.device)


def _run(rt, micro_batches: list) -> float:
    """Busy seconds of _replica."""
    return _replica(rt, micro_batches).busy_s


def time_grid(rt, points: list[tuple[int, int]], repeats: int) -> list[GridPoint]:
    """Each point's `repeats` samples (ms), in rounds over the whole grid, and from a pass before them its first
    run in this process and the run straight after it (same phase of the machine)."""
    import torch.distributed as dist

    batches = [_micro_batch(rt, s, b) for s, b in points]
    samples: list[list[float]] = [[] for _ in points]
    first: list[tuple[float, float]] = []
    for i in range(repeats + 1):
        for mb, times in zip(batches, samples, strict=True):
            dist.barrier()  # TP ranks start together, as in a step
            if i:
                times.append(_run(rt, [mb]) * 1e3)
            else:
                first.append((_run(rt, [mb]) * 1e3, _run(rt, [mb]) * 1e3))
    tp = rt.place.config.tp
    return [
        GridPoint(tp, s, b, tuple(t), f, g) for (s, b), t, (f, g) in zip(points, samples, first, strict=True)
    ]


class _PlanLayout:
    """Which rank speaks for which config of the job's plan: each config's first replica, its leader (first rank)
    and its stages' TP rank 0."""

    def __init__(self, plan) -> None:
        from lobra.executor.groups import placements

        firsts: dict[str, int] = {}  # config -> its first replica
        for r, c in enumerate(plan.replicas):
            firsts.setdefault(str(c), r)
        self.firsts, self.configs = firsts, sorted(firsts)
        places = placements(plan)  # rank -> placement; a replica's leader is its first rank
        self.leaders = {
            c: next(p for p, place in enumerate(places) if place.replica == firsts[c]) for c in self.configs
        }
        self.stage_ranks = {
            c: [places[self.leaders[c]].stage_rank(k) for k in range(plan.replicas[firsts[c]].pp)]
            for c in self.configs
        }


def _alone_pass(rt, layout: _PlanLayout, block: list) -> list[float]:
    """Each config's first replica runs the block while the others wait: its busy seconds on this rank, then its
    compute seconds (this rank's forwards and backwards, without the pipeline's waits), else 0s."""
    import torch.distributed as dist

    busy, compute = [], []
    for c in layout.configs:
        dist.barrier()
        result = _replica(rt, block) if rt.place.replica == layout.firsts[c] else None
        busy.append(result.busy_s if result else 0.0)
        compute.append(sum(result.micro_batch_s) if result else 0.0)
    return busy + compute


def time_host(rt, repeats: int, world: int) -> HostMeasurement:
    """Contention: the reference block on the first replica of each config of the plan, with every rank running
    at once (copies as calibration.derive.block_copies sets them), over that replica running it alone (same job,
    so the same background load; the configs take turns alone within every repeat). Then the executor's gradient
    sync and AdamW steps on rank 0, every rank starting together."""
    import torch.distributed as dist

    plan = rt.run.plan
    layout = _PlanLayout(plan)
    block = [_micro_batch(rt, s, b) for s, b in REFERENCE_BLOCK]
    _run(rt, block)  # warm-up (and gradients for every task's adapter)
    probe = _gather(_alone_pass(rt, layout, block), world)
    copies = derive.block_copies({c: probe[layout.leaders[c]][i] for i, c in enumerate(layout.configs)})
    mine = copies[str(plan.replicas[rt.place.replica])]
    alone, together = [], []
    for _ in range(repeats):
        alone.append(_alone_pass(rt, layout, block))
        dist.barrier()
        together.append(_run(rt, block * mine) / mine)
    # Every rank's means; each config's first replica's leader's are its measurement.
    means = _gather(
        [statistics.fmean(t) for t in zip(*alone, strict=True)] + [statistics.fmean(together)], world
    )
    blocks, contention = derive.block_times(plan, layout.configs, layout.leaders, means, copies)
    sync_s, optimizer_s = _time_sync_and_optimizer(rt, repeats, world)
    return HostMeasurement(
        num_ranks=world,
        contention=contention,
        sync_s=sync_s,
        optimizer_s=optimizer_s,
        block_s=blocks,
        stage_weights=derive.stage_weights(layout.configs, layout.leaders, layout.stage_ranks, means),
    )


def _time_sync_and_optimizer(rt, repeats: int, world: int) -> tuple[float, float]:
    """Mean seconds of the executor's LoRA-gradient sync and of its AdamW steps (the first, which creates the Adam
    state, left out), every rank starting together."""
    import torch
    import torch.distributed as dist

    sync, opt = [], []
    extras = torch.zeros(len(rt.tasks) + world + 16, dtype=torch.float64)
    for i in range(repeats + 1):
        dist.barrier()
        t0 = time.perf_counter()
        rt.lora.reduce_grads(extras)
        t1 = time.perf_counter()
        for optimizer in rt.optimizers.values():
            optimizer.step()
        t2 = time.perf_counter()
        if i:
            sync.append(t1 - t0)
            opt.append(t2 - t1)
    return statistics.fmean(sync), statistics.fmean(opt)


def _gather(values: list[float], world: int) -> list[list[float]]:
    """Every rank's list of floats, by rank (all ranks pass lists of one length)."""
    import torch
    import torch.distributed as dist

    mine = torch.tensor(values, dtype=torch.float64)
    gathered = [torch.zeros_like(mine) for _ in range(world)]
    dist.all_gather(gathered, mine)
    return [t.tolist() for t in gathered]


if __name__ == "__main__":
    exit_now(main())
