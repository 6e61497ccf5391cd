"""Autograd-aware collectives inside a TP group, for the LoRA path of a tensor-parallel linear (Megatron's f/g).

The base linear's collectives come from torch's DTensor-based ColwiseParallel/RowwiseParallel; the adapters' low-rank
activations h = x A^T need their own, and they are tiny ([tokens, r]):

- colwise: x and A are whole on every rank, so h is the same everywhere; B holds this rank's output rows, so the
  gradient of h from this rank is partial. Forward identity, backward all-reduce (sum).
- rowwise: x and A hold this rank's input columns, so h is a partial sum. Forward all-reduce (sum); the gradient
  of the full h is the same on every rank, so backward is the identity.

torch.distributed.nn.functional.all_reduce is not used: its backward all-reduces the gradient again, which
over-counts by the TP degree when (as here) every rank computes the same downstream loss.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


class _ReduceForward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, group) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM, group=group)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None


class _ReduceBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, group) -> torch.Tensor:
        ctx.group = group
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad, None


def tp_reduce_forward(x: torch.Tensor, group) -> torch.Tensor:
    """Sum partial results over the TP group; gradient passes through unchanged."""
    return _ReduceForward.apply(x, group)


def tp_reduce_backward(x: torch.Tensor, group) -> torch.Tensor:
    """Identity forward; the gradient is summed over the TP group."""
    return _ReduceBackward.apply(x, group)
