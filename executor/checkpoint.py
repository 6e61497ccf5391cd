"""Checkpoints: full (unsharded) adapters and AdamW state, the sampler's position and the records so far.

checkpoints/step_<n>/ holds the state after n completed steps: lora_state.safetensors (flat buffers "params",
"exp_avg", "exp_avg_sq" in the FlatLayout of executor.sync), state.json (step, sampler state, each task's optimizer
step count, a fingerprint of tasks and model), the records tables, and adapters/<task>/ in peft's format. Being
unsharded it restores onto any plan. Rank 0 writes it into a temporary folder and renames it into place, so a
folder named step_<n> is always complete; a crash leaves at most a stray .tmp-* folder, which is ignored. state.json
holds the SHA-256 of the tensors file: a checkpoint damaged later (a truncated copy, a bad disk) is found before
launch, and --resume falls back to the newest intact one (`intact_checkpoint`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import torch
from lobra.executor.errors import ExecutorError
from lobra.executor.records import Records
from lobra.executor.sync import LoraState

STATE_NAME = "state.json"
TENSORS_NAME = "lora_state.safetensors"
_STEP_DIR = re.compile(r"^step_(\d+)$")
BUFFERS = ("params", "exp_avg", "exp_avg_sq")


def checkpoint_dirs(root: str | Path) -> list[tuple[int, Path]]:
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _STEP_DIR.match(path.name)
        if match and (path / STATE_NAME).is_file() and (path / TENSORS_NAME).is_file():
            found.append((int(match[1]), path))
    return sorted(found)


def latest_checkpoint(root: str | Path) -> Path | None:
    found = checkpoint_dirs(root)
    return found[-1][1] if found else None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def damage(path: Path) -> str | None:
    """Why the checkpoint cannot be resumed from, or None when it is intact."""
    try:
        state = json.loads((path / STATE_NAME).read_text())
    except (OSError, ValueError) as err:
        return f"{STATE_NAME} is unreadable ({err})"
    expected = state.get("sha256", {}).get(TENSORS_NAME) if isinstance(state, dict) else None
    if expected is None:
        return f"{STATE_NAME} has no checksum of {TENSORS_NAME}"
    try:
        if sha256(path / TENSORS_NAME) != expected:
            return f"{TENSORS_NAME} does not match its checksum (truncated or changed since it was written)"
    except OSError as err:
        return f"{TENSORS_NAME} is unreadable ({err.strerror or err})"
    return None


def intact_checkpoint(root: str | Path) -> tuple[Path | None, list[str]]:
    """The newest checkpoint that is intact, and a line on each newer one passed over as damaged."""
    passed = []
    for _, path in reversed(checkpoint_dirs(root)):
        problem = damage(path)
        if problem is None:
            return path, passed
        passed.append(f"{path.name}: {problem}")
    return None, passed


def gather_state(lora: LoraState, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, torch.Tensor]:
    """Collective: full parameters and Adam moments, from replica 0 (all replicas hold the same)."""

    def moment(name):
        def get(b):
            state = optimizers[b.slot.task].state.get(b.param)
            return None if not state else state[name]

        return get

    bufs = lora.gather([lambda b: b.param.detach(), moment("exp_avg"), moment("exp_avg_sq")])
    return dict(zip(BUFFERS, bufs, strict=True))


def restore_state(
    lora: LoraState,
    optimizers: dict[str, torch.optim.Optimizer],
    tensors: dict[str, torch.Tensor],
    optimizer_steps: dict[str, int],
) -> None:
    """Every rank takes its own slices of the full tensors."""
    if tensors["params"].numel() != lora.layout.size:
        raise ExecutorError("checkpoint does not match this run's adapters (different tasks, ranks or model)")
    for b in lora.bindings:
        like = b.param
        with torch.no_grad():
            b.param.copy_(lora.local_slice(tensors["params"].to(like), b))
        steps = optimizer_steps.get(b.slot.task, 0)
        if steps:
            optimizers[b.slot.task].state[b.param] = {
                # AdamW keeps its step count as a float32 CPU tensor (unless capturable/fused).
                "step": torch.tensor(float(steps), dtype=torch.float32),
                "exp_avg": lora.local_slice(tensors["exp_avg"].to(like), b).clone(),
                "exp_avg_sq": lora.local_slice(tensors["exp_avg_sq"].to(like), b).clone(),
            }


def save_checkpoint(
    root: str | Path,
    step: int,
    tensors: dict[str, torch.Tensor],
    state: dict,
    records: Records,
    write_adapters,
    keep: int,
) -> Path:
    """Rank 0 only. write_adapters(folder) writes the peft-format adapters under folder."""
    from safetensors.torch import save_file

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step}"
    tmp = root / f".tmp-step_{step}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / TENSORS_NAME))
    records.write(tmp, parquet=False)
    write_adapters(tmp / "adapters")
    checksum = {TENSORS_NAME: sha256(tmp / TENSORS_NAME)}
    (tmp / STATE_NAME).write_text(json.dumps({**state, "step": step, "sha256": checksum}, indent=1))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for _, old in checkpoint_dirs(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def read_state(path: str | Path) -> dict:
    try:
        return json.loads((Path(path) / STATE_NAME).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ExecutorError(f"checkpoint {path} is unreadable: {err}") from None


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict, Records]:
    from safetensors.torch import load_file

    path = Path(path)
    state = read_state(path)
    try:
        tensors = load_file(str(path / TENSORS_NAME))
    except (OSError, ValueError) as err:
        raise ExecutorError(f"checkpoint {path} is unreadable: {err}") from None
    return tensors, state, Records.read(path)


def check_fingerprint(saved: dict, current: dict, path: Path) -> None:
    for key, value in current.items():
        if saved.get(key) != value:
            raise ExecutorError(
                f"checkpoint {path} was written with another {key} ({saved.get(key)!r}, now {value!r})"
            )
