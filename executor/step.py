"""One training step on one rank: dispatch, this replica's micro-batches, the gradient sync, one optimizer step per
adapter.

Every rank runs the dispatcher on the same items with the same plan and cost model: dispatchers are deterministic,
so all ranks agree on the whole dispatch plan without communicating it, and each knows every micro-batch's shape
(pipeline buffers) and every task's target count N_t (loss normalisation). The step's objective is
sum_t (sum of task t's token losses) / N_t; adapters are disjoint, so adapter t's gradient is exactly task t's
normalised gradient and joint training equals training each task alone.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from lobra.executor.data import build_micro_batch, target_counts
from lobra.executor.errors import ExecutorError
from lobra.executor.groups import Placement
from lobra.executor.model import Stage
from lobra.executor.multilora import LoraBatch
from lobra.executor.pipeline import train_replica
from lobra.executor.resolve import ResolvedRun
from lobra.executor.sync import LoraState
from lobra.policies.types import DispatchPlan, StepItem


@dataclass
class Runtime:
    """What a rank built once and uses every step."""

    run: ResolvedRun
    place: Placement
    stage: Stage
    batch: LoraBatch
    lora: LoraState
    optimizers: dict[str, torch.optim.Optimizer]
    tasks: list[str]
    source: object  # SyntheticTokens or DatasetTokens
    device: torch.device
    dispatcher: object


class Slots:
    """Named slices of one flat buffer, laid out one after another in the order given."""

    def __init__(self, sizes: dict[str | tuple[str, int], int]) -> None:
        self._slices, start = {}, 0
        for name, size in sizes.items():
            self._slices[name] = slice(start, start + size)
            start += size
        self.size = start

    @classmethod
    def extras(cls, num_tasks: int, micro_batches: list[int]) -> Slots:
        """A step's extras: every task's loss, every replica's busy seconds, then every replica's first-stage
        micro-batch timings, then its last stage's."""
        replicas = range(len(micro_batches))
        return cls(
            {"loss": num_tasks}
            | {("busy", r): 1 for r in replicas}
            | {("first", r): micro_batches[r] for r in replicas}
            | {("last", r): micro_batches[r] for r in replicas}
        )

    def __getitem__(self, name: str | tuple[str, int]) -> slice:
        return self._slices[name]


@dataclass
class StepResult:
    dispatch: DispatchPlan
    targets: dict[str, int]
    replica_busy_s: list[float]
    micro_batch_s: list[list[float]]  # the replica leader's (first stage's) compute per micro-batch
    last_stage_s: list[list[float]]  # the last stage's (the first stage's when pp = 1)
    losses: dict[str, float]  # each task's normalised loss (mean per target over its global batch)
    step_time_s: float
    grads: torch.Tensor  # full summed LoRA gradients (FlatLayout)


def check_same_dispatch(dispatch: DispatchPlan, device: torch.device) -> None:
    """Collective: raise on every rank unless all ranks hold the same dispatch plan. A time-limited solver could
    decide differently on different ranks; running on would deadlock (pipeline shapes) or train on garbage."""
    layout = (dispatch.micro_batches, dispatch.dropped, sorted(dispatch.truncated.items()))
    digest = float(zlib.crc32(repr(layout).encode()))
    both = torch.tensor([digest, -digest], dtype=torch.float64, device=device)
    dist.all_reduce(both, op=dist.ReduceOp.MAX)
    if both[0].item() != -both[1].item():
        raise ExecutorError(
            "ranks disagree on the step's dispatch plan: the dispatcher is not deterministic here"
        )


def train_step(
    rt: Runtime, items: list[StepItem], keys: list, on_forward: Callable[[int], None] | None = None
) -> StepResult:
    run, place = rt.run, rt.place
    dispatch = rt.dispatcher.dispatch(items, run.plan, run.cost)
    targets = target_counts(items, dispatch)
    weight_dtype = rt.lora.bindings[0].param.dtype
    micro_batches = [
        build_micro_batch(mb, items, keys, rt.source, rt.tasks, targets, rt.device, weight_dtype)
        for mb in dispatch.micro_batches[place.replica]
    ]
    for opt in rt.optimizers.values():
        opt.zero_grad(set_to_none=True)
    if rt.device.type == "cuda":
        torch.cuda.synchronize()
    # Replicas start the step together, as the simulator assumes (a rank still writing the last step's records
    # would start late otherwise), and this sync also proves that every rank computed the same dispatch plan.
    check_same_dispatch(dispatch, rt.device)
    start = time.perf_counter()
    result = train_replica(rt.stage, rt.batch, micro_batches, place, len(rt.tasks), rt.device, on_forward)

    # Extras ride on the gradient all-reduce: task losses and the last stage's timings from last stages (TP rank 0),
    # busy and first-stage timings from replica leaders; every other rank adds zeros.
    slots = Slots.extras(len(rt.tasks), [len(m) for m in dispatch.micro_batches])
    extras = torch.zeros(slots.size, dtype=torch.float64)
    mine = torch.tensor(result.micro_batch_s, dtype=torch.float64)
    if place.last_stage and place.tp_rank == 0:
        extras[slots["loss"]] = result.task_loss.cpu()
        extras[slots["last", place.replica]] = mine
    if place.is_leader:
        extras[slots["busy", place.replica]] = result.busy_s
        extras[slots["first", place.replica]] = mine
    grads, summed = rt.lora.reduce_grads(extras.to(rt.device))
    summed = summed.double().cpu()
    for task, opt in rt.optimizers.items():
        if targets.get(task, 0) > 0:  # a task with nothing in this step keeps its adapter and Adam state
            opt.step()
    if rt.device.type == "cuda":
        torch.cuda.synchronize()
    step_time_s = time.perf_counter() - start
    replicas = range(len(dispatch.micro_batches))
    return StepResult(
        dispatch=dispatch,
        targets=targets,
        replica_busy_s=[summed[slots["busy", r]].item() for r in replicas],
        micro_batch_s=[summed[slots["first", r]].tolist() for r in replicas],
        last_stage_s=[summed[slots["last", r]].tolist() for r in replicas],
        losses={
            t: float(loss)
            for t, loss in zip(rt.tasks, summed[slots["loss"]], strict=True)
            if targets.get(t, 0) > 0
        },
        step_time_s=step_time_s,
        grads=grads,
    )
