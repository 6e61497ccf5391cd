"""Every task's LoRA tensors as one flat buffer of full (unsharded) tensors, the same layout on every rank; what
this rank holds is bound to its slice of it.

Gradient sync: replicas have different TP and PP degrees, so their shards do not line up and no per-shard group
exists across them. Each rank writes the gradient shards it owns into a zero-filled full-size buffer, one world
all-reduce (sum) adds them, and each rank reads back its own slices. "Owns" makes every element count once per
replica, not once per TP rank: a sharded tensor is written by every TP rank (disjoint slices), a tensor that is
whole on every TP rank (colwise A, rowwise B) by TP rank 0 only, and a layer only by the stage that holds it. One
collective per step, and it needs no gather inside a replica nor broadcast after it. The price is that every rank
moves the whole LoRA gradient once, tp*pp times what a perfectly sharded reduction would move: cheap for LoRA
(megabytes), not what to keep for large task counts on large replicas.

The same buffer, written by the ranks of replica 0 only, gathers full parameters and optimizer state for
checkpoints and saved adapters; reading slices back restores them on any plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from lobra.costmodel import ModelSpec
from lobra.executor.groups import Placement
from lobra.executor.model import AdapterSpec, lora_modules, peft_key
from lobra.traces.tasks import LORA_TARGETS


@dataclass(frozen=True)
class Slot:
    task: str
    layer: int
    module: str
    kind: str  # "A" [rank, in] or "B" [out, rank]
    shape: tuple[int, int]
    offset: int

    @property
    def numel(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def key(self) -> str:
        return peft_key(self.layer, self.module, self.kind)


class FlatLayout:
    """Slots of every (task, layer, module, A/B) in a fixed order: task, layer, module, A then B."""

    def __init__(self, adapters: list[AdapterSpec], model: ModelSpec) -> None:
        self.slots: list[Slot] = []
        offset = 0
        for a in adapters:
            for layer in range(model.num_layers):
                for module in LORA_TARGETS:
                    if module not in a.targets:
                        continue
                    fan_in, fan_out = model.linear_shapes[module]
                    for kind, shape in (("A", (a.rank, fan_in)), ("B", (fan_out, a.rank))):
                        self.slots.append(Slot(a.name, layer, module, kind, shape, offset))
                        offset += shape[0] * shape[1]
        self.size = offset
        self._index = {(s.task, s.layer, s.module, s.kind): s for s in self.slots}

    def slot(self, task: str, layer: int, module: str, kind: str) -> Slot:
        return self._index[(task, layer, module, kind)]

    def view(self, buf: torch.Tensor, slot: Slot) -> torch.Tensor:
        return buf[slot.offset : slot.offset + slot.numel].view(slot.shape)

    def task_tensors(self, buf: torch.Tensor, task: str) -> dict[str, torch.Tensor]:
        """A task's full tensors by peft key (views into buf)."""
        return {s.key: self.view(buf, s) for s in self.slots if s.task == task}


@dataclass
class Binding:
    """One local LoRA parameter and where it sits in its slot."""

    slot: Slot
    param: torch.nn.Parameter
    dim: int | None  # sharded dim, None when whole
    tp_rank: int
    tp_size: int

    def local(self, full: torch.Tensor) -> torch.Tensor:
        if self.dim is None:
            return full
        size = full.shape[self.dim] // self.tp_size
        return full.narrow(self.dim, self.tp_rank * size, size)

    @property
    def writes_sync(self) -> bool:
        """Whether this rank contributes this tensor's gradient for its replica."""
        return self.dim is not None or self.tp_rank == 0


class LoraState:
    """This rank's adapters, bound to the flat layout."""

    def __init__(self, layout: FlatLayout, model: torch.nn.Module, place: Placement) -> None:
        self.layout, self.place = layout, place
        self.bindings: list[Binding] = []
        for layer, module, wrapped in lora_modules(model):
            shard = wrapped.shard
            for task in wrapped.tasks:
                a, b = wrapped.adapter(task)
                for kind, param in (("A", a), ("B", b)):
                    dim = shard.dim(kind) if shard is not None else None
                    tp = (shard.rank, shard.size) if shard is not None else (0, 1)
                    slot = layout.slot(task, layer, module, kind)
                    self.bindings.append(Binding(slot, param, dim, *tp))

    def params(self, task: str) -> list[torch.nn.Parameter]:
        return [b.param for b in self.bindings if b.slot.task == task]

    def _buffer(self, extra: int, like: torch.Tensor) -> torch.Tensor:
        return torch.zeros(self.layout.size + extra, dtype=like.dtype, device=like.device)

    def _like(self) -> torch.Tensor:
        return self.bindings[0].param

    def reduce_grads(self, extras: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sum gradients over replicas (each counted once per replica) and `extras` over all ranks; set every
        local parameter's .grad to its slice of the sum. Returns (full summed gradients, summed extras)."""
        buf = self._buffer(extras.numel(), self._like())
        for b in self.bindings:
            if b.writes_sync and b.param.grad is not None:
                b.local(self.layout.view(buf, b.slot)).copy_(b.param.grad)
        buf[self.layout.size :] = extras.to(buf.dtype)
        dist.all_reduce(buf, op=dist.ReduceOp.SUM)
        for b in self.bindings:
            b.param.grad = b.local(self.layout.view(buf, b.slot)).clone()
        return buf[: self.layout.size], buf[self.layout.size :]

    def gather(self, getters: list[Callable[[Binding], torch.Tensor | None]]) -> list[torch.Tensor]:
        """Full tensors of every slot, one flat buffer per getter, written by replica 0's owners."""
        n = self.layout.size
        buf = self._buffer(n * (len(getters) - 1), self._like())
        if self.place.replica == 0:
            for b in self.bindings:
                if not b.writes_sync:
                    continue
                for k, get in enumerate(getters):
                    value = get(b)
                    if value is not None:
                        b.local(self.layout.view(buf[k * n : (k + 1) * n], b.slot)).copy_(value)
        dist.all_reduce(buf, op=dist.ReduceOp.SUM)
        return [buf[k * n : (k + 1) * n] for k in range(len(getters))]

    def local_slice(self, full: torch.Tensor, b: Binding) -> torch.Tensor:
        return b.local(self.layout.view(full, b.slot))
