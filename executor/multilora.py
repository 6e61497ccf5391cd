"""MultiLoraLinear: one frozen linear, one LoRA adapter per task; each sequence of a batch uses its own task's.

A micro-batch mixes tasks. The step orders its sequences by task, so a task's tokens are one contiguous slice of
the batch (`LoraBatch.segments`): of its rows when sequences are padded, of the one row's tokens when they are
packed (`LoraBatch.dim`). The layer computes base(x) once for the whole batch, then for each segment
x[a:b] @ A_t^T @ B_t^T * alpha_t / r_t, and adds the concatenated deltas.

Adapters are separate parameters per task (A_t [r_t, in], B_t [out, r_t], peft's layout), not one stacked
[num_tasks, in, r_max] tensor: tasks have their own rank and their own target modules (a stacked tensor would pad
ranks with masked zeros and hold rows for tasks that do not target the module), each task keeps its own optimizer,
and saving in peft's format is a plain copy. Gathering a stacked tensor per sequence (bmm) would also copy an
A and a B per sequence; slicing contiguous segments copies nothing. A sequence's gradient reaches only its
own task's A_t and B_t, because only they enter its delta.

Under tensor parallelism (executor.parallel.apply_tp) the base linear is sharded by torch's ColwiseParallel or
RowwiseParallel and the adapters are sharded to match: colwise (q/k/v/gate/up) keeps A whole and B's output rows
local; rowwise (o/down) keeps A's input columns local and B whole. The low-rank activation h = x A^T [tokens, r] is
then the only thing that crosses ranks: its gradient is all-reduced (colwise), or h itself is (rowwise, a partial
sum). See executor.collectives.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from lobra.executor.collectives import tp_reduce_backward, tp_reduce_forward
from torch import nn
from torch.nn import functional as F

COLWISE, ROWWISE = "colwise", "rowwise"


@dataclass
class LoraBatch:
    """Which sequences of the current micro-batch belong to which task, shared by every MultiLoraLinear of a
    model: the step sets it before each forward pass (the backward pass does not read it)."""

    segments: list[tuple[str, int, int]] | None = None  # (task, start, stop) over dimension `dim` of x
    sizes: list[int] | None = None
    dim: int = 0  # 0: segments over rows (padded sequences); 1: over the tokens of packed rows

    def set(self, segments: list[tuple[str, int, int]], dim: int = 0) -> None:
        """segments must tile dimension `dim` in order: (task, 0, a), (task', a, b), ..."""
        position = 0
        for _, start, stop in segments:
            if start != position or stop <= start:
                raise ValueError(f"segments {segments} do not tile the batch in order")
            position = stop
        self.segments = list(segments)
        self.sizes = [stop - start for _, start, stop in segments]
        self.dim = dim


@dataclass(frozen=True)
class TpShard:
    """How this rank's adapters of one module relate to the full ones: mode, this rank's index, TP degree."""

    mode: str  # COLWISE or ROWWISE
    rank: int
    size: int
    group: object  # the TP process group (for the low-rank collectives)

    def dim(self, kind: str) -> int | None:
        """The sharded dim of lora_A ("A") or lora_B ("B"), or None when it is whole on every TP rank."""
        if self.mode == COLWISE:
            return 0 if kind == "B" else None
        return 1 if kind == "A" else None


class MultiLoraLinear(nn.Module):
    def __init__(self, base: nn.Linear, batch: LoraBatch) -> None:
        super().__init__()
        self.base = base
        self.batch = batch
        self.tasks: list[str] = []
        self.scales: list[float] = []
        self._index: dict[str, int] = {}
        # Indexed like self.tasks (task names may hold '.', which parameter names may not).
        self.lora_A = nn.ParameterList()
        self.lora_B = nn.ParameterList()
        self.shard: TpShard | None = None

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def add_adapter(
        self, task: str, rank: int, alpha: float, a_init: torch.Tensor, dtype: torch.dtype = torch.float32
    ) -> None:
        """A_t from a_init [rank, in_features], B_t zeros (peft's default init: the adapter starts as a no-op)."""
        if task in self._index:
            raise ValueError(f"task {task!r} already has an adapter on this module")
        if tuple(a_init.shape) != (rank, self.in_features):
            raise ValueError(f"a_init has shape {tuple(a_init.shape)}, expected {(rank, self.in_features)}")
        device = self.base.weight.device
        self._index[task] = len(self.tasks)
        self.tasks.append(task)
        self.scales.append(alpha / rank)
        self.lora_A.append(nn.Parameter(a_init.to(device=device, dtype=dtype).clone()))
        self.lora_B.append(nn.Parameter(torch.zeros(self.out_features, rank, device=device, dtype=dtype)))

    def adapter(self, task: str) -> tuple[nn.Parameter, nn.Parameter] | None:
        i = self._index.get(task)
        return None if i is None else (self.lora_A[i], self.lora_B[i])

    def shard_adapters(self, shard: TpShard) -> None:
        """Keep this TP rank's slice of every adapter (the full ones are identical on every rank)."""
        self.shard = shard
        for params, kind in ((self.lora_A, "A"), (self.lora_B, "B")):
            dim = shard.dim(kind)
            if dim is None:
                continue
            for i, p in enumerate(params):
                size = p.shape[dim] // shard.size
                local = p.detach().narrow(dim, shard.rank * size, size).clone()
                params[i] = nn.Parameter(local)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        segments, dim = self.batch.segments, self.batch.dim
        if segments is None:
            raise RuntimeError("MultiLoraLinear: LoraBatch.segments is not set for this micro-batch")
        if segments[-1][2] != x.shape[dim]:
            raise RuntimeError(
                f"LoraBatch.segments {segments} do not cover dim {dim} of a batch {tuple(x.shape)}"
            )
        # split, not one slice per segment: a slice's backward writes its gradient into a zero-filled tensor of
        # the whole batch, split's backward concatenates the pieces once.
        parts = x.split(self.batch.sizes, dim) if len(segments) > 1 else (x,)
        hs: list[torch.Tensor | None] = []
        for (task, _, _), part in zip(segments, parts, strict=True):
            i = self._index.get(task)
            hs.append(None if i is None else F.linear(part, self.lora_A[i].to(x.dtype)))
        if self.shard is not None and self.shard.size > 1:
            hs = self._tp_exchange(hs)
        deltas = []
        for (task, start, stop), h in zip(segments, hs, strict=True):
            if h is None:
                shape = list(y.shape)
                shape[dim] = stop - start
                deltas.append(y.new_zeros(shape))
            else:
                i = self._index[task]
                deltas.append(F.linear(h, self.lora_B[i].to(x.dtype)) * self.scales[i])
        return y + (deltas[0] if len(deltas) == 1 else torch.cat(deltas, dim=dim))

    def _tp_exchange(self, hs: list[torch.Tensor | None]) -> list[torch.Tensor | None]:
        """One collective for all segments' low-rank activations: flatten, reduce, split back."""
        present = [h for h in hs if h is not None]
        if not present:
            return hs
        flat = torch.cat([h.reshape(-1) for h in present])
        if self.shard.mode == COLWISE:
            flat = tp_reduce_backward(flat, self.shard.group)
        else:
            flat = tp_reduce_forward(flat, self.shard.group)
        out, offset = [], 0
        for h in hs:
            if h is None:
                out.append(None)
                continue
            out.append(flat[offset : offset + h.numel()].view_as(h))
            offset += h.numel()
        return out

    def extra_repr(self) -> str:
        ranks = [p.shape[0] for p in self.lora_A]
        return f"tasks={self.tasks}, ranks={ranks}, shard={None if self.shard is None else self.shard.mode}"
