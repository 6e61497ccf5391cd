"""Adapters in peft's format: one folder per task with adapter_config.json (written by peft's own LoraConfig) and
adapter_model.safetensors with peft's key names, so that PeftModel.from_pretrained(base, folder) loads them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from lobra.executor.model import AdapterSpec

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"


def save_adapter(
    folder: str | Path, adapter: AdapterSpec, tensors: dict[str, torch.Tensor], base_model: str
) -> Path:
    """Write atomically: a temporary folder beside the target, renamed into place."""
    from peft import LoraConfig
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".tmp-{folder.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    config = LoraConfig(
        r=adapter.rank,
        lora_alpha=adapter.alpha,
        target_modules=sorted(adapter.targets),
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
        base_model_name_or_path=base_model,
    )
    config.save_pretrained(str(tmp))
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    save_file(state, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return folder


def load_adapter_tensors(folder: str | Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / WEIGHTS_NAME))


def set_adapter(model: torch.nn.Module, task: str, tensors: dict[str, torch.Tensor]) -> None:
    """Load a task's peft-format tensors into an unsharded multi-LoRA model (e.g. to evaluate saved adapters)."""
    from lobra.executor.model import lora_modules, peft_key

    for layer, module, wrapped in lora_modules(model):
        pair = wrapped.adapter(task)
        if pair is None:
            continue
        if wrapped.shard is not None:
            raise ValueError("set_adapter needs an unsharded model (no TP applied)")
        with torch.no_grad():
            for kind, param in zip("AB", pair, strict=True):
                param.copy_(tensors[peft_key(layer, module, kind)].to(param))
