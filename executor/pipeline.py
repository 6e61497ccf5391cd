"""One replica's share of a step: forward and backward of each of its micro-batches, through its pipeline stages.

pp = 1: the micro-batches run one after another. pp > 1: hand-made stages with a 1F1B schedule (warm-up forwards,
then one forward and one backward alternately, then the remaining backwards), because torch.distributed.pipelining
splits one batch into equal micro-batches of one shape, and a dispatched replica's micro-batches differ in both
sequence count and padded length. Every rank knows every micro-batch's shape from the dispatch plan, so only the
hidden states travel forward and their gradients backward (between the ranks with the same TP index on adjacent
stages). Sends are non-blocking and receives blocking: 1F1B's dependencies are acyclic, so this cannot deadlock.

Timing (on each rank, reported by the replica leader = stage 0, TP rank 0): busy_s from the first forward to the
last backward (with pp > 1 that includes the pipeline's fill and drain); per micro-batch, the leader's forward plus
backward compute (with pp > 1, not the waits for gradients from later stages).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from lobra.executor.data import IGNORE_INDEX, MicroBatchData
from lobra.executor.groups import Placement
from lobra.executor.model import Stage
from lobra.executor.multilora import LoraBatch
from torch.nn import functional as F


@dataclass
class ReplicaResult:
    busy_s: float
    micro_batch_s: list[float]
    task_loss: torch.Tensor  # [num_tasks]: this rank's summed weighted losses (non-zero on last stages only)


def micro_batch_loss(logits: torch.Tensor, mb: MicroBatchData, num_tasks: int):
    """The micro-batch's share of the step objective (sum over tasks of their normalised losses), and that share
    per task (detached)."""
    dtype = torch.promote_types(logits.dtype, torch.float32)
    ce = F.cross_entropy(
        logits.flatten(0, 1).to(dtype), mb.labels.flatten(), reduction="none", ignore_index=IGNORE_INDEX
    )
    weighted = ce.view_as(mb.weights) * mb.weights.to(dtype)
    per_task = torch.zeros(num_tasks, dtype=dtype, device=logits.device)
    per_task.index_add_(0, mb.task_index.flatten(), weighted.detach().flatten())
    return weighted.sum(), per_task


class _Clock:
    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()


def train_replica(
    stage: Stage,
    batch: LoraBatch,
    micro_batches: list[MicroBatchData],
    place: Placement,
    num_tasks: int,
    device: torch.device,
    on_forward: Callable[[int], None] | None = None,
) -> ReplicaResult:
    clock = _Clock(device)
    task_loss = torch.zeros(num_tasks, dtype=torch.float64, device=device)
    mb_s = [0.0] * len(micro_batches)
    start = clock.now()
    if place.config.pp == 1:
        for i, mb in enumerate(micro_batches):
            t0 = clock.now()
            batch.set(mb.segments, int(mb.packed))
            loss, per_task = micro_batch_loss(stage(mb.ids, mb.positions, mb.mask), mb, num_tasks)
            if on_forward is not None:
                on_forward(i)
            loss.backward()
            task_loss += per_task.to(task_loss.dtype)
            mb_s[i] = clock.now() - t0
    else:
        _one_f_one_b(stage, batch, micro_batches, place, num_tasks, clock, task_loss, mb_s, on_forward)
    return ReplicaResult(clock.now() - start, mb_s, task_loss)


def _one_f_one_b(stage, batch, micro_batches, place, num_tasks, clock, task_loss, mb_s, on_forward) -> None:
    pp, s = place.config.pp, place.stage
    prev_rank = place.stage_rank(s - 1) if s > 0 else None
    next_rank = place.stage_rank(s + 1) if s < pp - 1 else None
    hidden = stage.model.config.hidden_size
    dtype = next(p.dtype for p in stage.model.parameters() if not p.requires_grad)
    device = micro_batches[0].ids.device if micro_batches else None
    pending: list = []  # (work, tensor): a sent buffer must live until its send completes
    inflight: dict[int, tuple[torch.Tensor | None, torch.Tensor]] = {}

    def forward(i: int) -> None:
        mb = micro_batches[i]
        if prev_rank is None:
            inp, x = None, mb.ids
        else:
            inp = torch.empty(*mb.ids.shape, hidden, dtype=dtype, device=device)
            dist.recv(inp, src=prev_rank)
            inp.requires_grad_(True)
            x = inp
        t0 = clock.now()
        batch.set(mb.segments, int(mb.packed))
        out = stage(x, mb.positions, mb.mask)
        if next_rank is None:
            out, per_task = micro_batch_loss(out, mb, num_tasks)
            task_loss.add_(per_task.to(task_loss.dtype))
        else:
            send = out.detach()
            pending.append((dist.isend(send, dst=next_rank), send))
        mb_s[i] += clock.now() - t0
        inflight[i] = (inp, out)
        if on_forward is not None:
            on_forward(i)

    def backward(i: int) -> None:
        inp, out = inflight.pop(i)
        mb = micro_batches[i]
        batch.set(mb.segments, int(mb.packed))  # a checkpointing stage reruns its forwards now
        if next_rank is None:
            t0 = clock.now()
            out.backward()
        else:
            grad = torch.empty_like(out)
            dist.recv(grad, src=next_rank)
            t0 = clock.now()
            out.backward(grad)
        if inp is not None:
            pending.append((dist.isend(inp.grad, dst=prev_rank), inp.grad))
        mb_s[i] += clock.now() - t0

    m = len(micro_batches)
    warmup = min(pp - s - 1, m)
    for i in range(warmup):
        forward(i)
    for i in range(warmup, m):
        forward(i)
        backward(i - warmup)
    for i in range(m - warmup, m):
        backward(i)
    for work, _ in pending:
        work.wait()
