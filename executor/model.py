"""The shared frozen model with one LoRA adapter per task, and the forward pass of one pipeline stage.

The base is a transformers causal LM (Llama or Qwen2): built from the model spec's config with a seeded random init
(the same weights on every rank and in every run with the same seed), or loaded from a local directory. Every base
weight is frozen; each targeted linear becomes a MultiLoraLinear holding the adapters of the tasks that target it.

A task's initial A for (layer, module) is drawn from its own generator seeded by (seed, task, layer, module): the
same in a joint run, in a run of the task alone, and whatever the TP/PP layout (each rank draws the full A and keeps
its shard). peft's init: A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform with a=sqrt(5)), B = 0.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from lobra.costmodel import ModelSpec
from lobra.executor.multilora import LoraBatch, MultiLoraLinear
from lobra.traces import Task
from lobra.traces.tasks import LORA_TARGETS
from torch import nn
from torch.utils.checkpoint import checkpoint

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}
# Where each LoRA target sits inside a decoder layer (HF module names; peft keys use the same paths).
MODULE_PARENT = {
    "q_proj": "self_attn",
    "k_proj": "self_attn",
    "v_proj": "self_attn",
    "o_proj": "self_attn",
    "gate_proj": "mlp",
    "up_proj": "mlp",
    "down_proj": "mlp",
}


@dataclass(frozen=True)
class AdapterSpec:
    """One task's LoRA config (from its TaskSpec)."""

    name: str
    rank: int
    alpha: float
    targets: tuple[str, ...]

    @classmethod
    def of(cls, task: Task) -> AdapterSpec:
        spec = task.spec
        return cls(spec.name, spec.rank, float(spec.alpha), tuple(spec.targets))

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


def lora_dtype(dtype: torch.dtype) -> torch.dtype:
    """Adapters and their optimizer state stay in fp32 under a bf16 base (fp64 when the base is fp64)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def build_base_model(
    spec: ModelSpec, weights_dir: str | Path | None, seed: int, dtype: torch.dtype, device: torch.device
) -> nn.Module:
    from transformers import AutoModelForCausalLM

    if weights_dir is not None:
        model = AutoModelForCausalLM.from_pretrained(weights_dir, dtype=dtype, attn_implementation="sdpa")
        model.to(device)
    else:
        config = spec.to_hf_config()
        # Right-padded sequences under a causal mask never see their padding: no mask tensor is needed, and SDPA
        # with is_causal=True (its behaviour when the mask is None) is exactly that.
        config._attn_implementation = "sdpa"
        torch.manual_seed(seed)
        # Initialised in fp32 on the CPU whatever the run's dtype and device: the same weights everywhere.
        model = AutoModelForCausalLM.from_config(config)
        model.to(device=device, dtype=dtype)
    for p in model.parameters():
        p.requires_grad_(False)
    model.train()  # no dropout in these models; train mode only matters to their attention_dropout of 0
    return model


def lora_init(seed: int, task: str, layer: int, module: str, rank: int, in_features: int) -> torch.Tensor:
    state = np.random.SeedSequence([seed, zlib.crc32(task.encode()), layer, LORA_TARGETS.index(module)])
    gen = torch.Generator().manual_seed(int(state.generate_state(1, np.uint64)[0] >> 1))
    bound = 1.0 / in_features**0.5
    return (torch.rand(rank, in_features, generator=gen, dtype=torch.float32) * 2 - 1) * bound


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    return model.model.layers


def layer_index(layer: nn.Module) -> int:
    return layer.self_attn.layer_idx


def inject_lora(model: nn.Module, adapters: list[AdapterSpec], seed: int) -> LoraBatch:
    """Replace every targeted linear of every decoder layer by a MultiLoraLinear with its tasks' adapters."""
    batch = LoraBatch()
    dtype = lora_dtype(next(model.parameters()).dtype)
    for layer in decoder_layers(model):
        idx = layer_index(layer)
        for module in LORA_TARGETS:
            tasks = [a for a in adapters if module in a.targets]
            if not tasks:
                continue
            parent = getattr(layer, MODULE_PARENT[module])
            wrapped = MultiLoraLinear(getattr(parent, module), batch)
            for a in tasks:
                init = lora_init(seed, a.name, idx, module, a.rank, wrapped.in_features)
                wrapped.add_adapter(a.name, a.rank, a.alpha, init, dtype)
            setattr(parent, module, wrapped)
    return batch


def lora_modules(model: nn.Module) -> Iterator[tuple[int, str, MultiLoraLinear]]:
    """(layer index, module name, layer) of every multi-LoRA linear this rank holds, in a fixed order."""
    for layer in decoder_layers(model):
        for module in LORA_TARGETS:
            wrapped = getattr(getattr(layer, MODULE_PARENT[module]), module)
            if isinstance(wrapped, MultiLoraLinear):
                yield layer_index(layer), module, wrapped


def peft_key(layer: int, module: str, kind: str) -> str:
    """peft's name of an adapter weight in adapter_model.safetensors (PeftModelForCausalLM, default adapter)."""
    return f"base_model.model.model.layers.{layer}.{MODULE_PARENT[module]}.{module}.lora_{kind}.weight"


class Stage(nn.Module):
    """The layers one pipeline stage holds (all of them when pp = 1): ids -> hidden on the first stage,
    hidden -> logits on the last, hidden -> hidden in between. Parallelism is applied to the model beforehand
    (executor.parallel); this code is the same for every layout."""

    def __init__(self, model: nn.Module, checkpoint: bool = False) -> None:
        super().__init__()
        self.model = model
        # <tp,pp,ckpt>: keep each layer's input only, run its forward again in the backward
        self.checkpoint = checkpoint
        inner = model.model
        self.first = inner.embed_tokens is not None
        self.last = getattr(model, "lm_head", None) is not None
        self.layer_ids = [layer_index(layer) for layer in inner.layers]

    def forward(
        self, x: torch.Tensor, positions: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """positions: each token's position in its own sequence (default 0, 1, ... along each row); mask: which
        tokens each token may attend to (bool [1, 1, T, T]; packed sequences), None for plain causal attention.
        SDPA takes the mask as it is, on every device: it costs T x T bytes and computes the masked-out blocks,
        which a variable-length kernel (torch.nn.attention.varlen, CUDA only) would skip."""
        inner = self.model.model
        h = inner.embed_tokens(x) if self.first else x
        if positions is None:
            positions = torch.arange(h.shape[1], device=h.device).unsqueeze(0)
        rotary = inner.rotary_emb(h, positions)
        for layer in inner.layers:
            kwargs = {"attention_mask": mask, "position_ids": positions, "position_embeddings": rotary}
            if self.checkpoint and torch.is_grad_enabled():
                h = checkpoint(layer, h, use_reentrant=False, **kwargs)
            else:
                h = layer(h, **kwargs)
        if not self.last:
            return h
        return self.model.lm_head(inner.norm(h))
