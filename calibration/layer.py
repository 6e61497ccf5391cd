"""Calibration on the machine at hand: time one decoder layer's forward+backward with LoRA over a (seq_len, mbs)
grid and write a profile CSV in the shipped schema (tp,seq_len,mbs,time), its fit, and a measured device spec.

Needs torch and transformers (imported lazily, so that importing the calibration layer stays light). The layer
is the model's own
HF decoder layer built from its config with random weights, LoRA (rank 16 on q,k,v,o,up,down, via peft) injected,
base weights frozen — what the executor trains. tp=1: one process, no communication.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from lobra.costmodel.errors import CostModelError
from lobra.costmodel.layer_time import LayerTimeFit, fit_profile
from lobra.costmodel.memory import DEFAULT_LORA_RANK, DEFAULT_LORA_TARGETS
from lobra.costmodel.specs import GPUS, GPUSpec, ModelSpec, load_model_spec

from lobra.io import atomic_write, write_json

DEFAULT_GRIDS = {
    "cpu": ((64, 128, 256, 384, 512, 768, 1024, 1536, 2048), (1, 2, 4, 8)),
    "cuda": ((128, 256, 512, 1024, 2048, 4096, 8192, 16384), (1, 2, 4, 8, 16)),
}


@dataclass(frozen=True)
class CalibrationGrid:
    seq_lens: tuple[int, ...]
    mbs: tuple[int, ...]
    repeats: int = 5
    # The executor runs several CPU ranks on few cores, one thread each: time the layer the same way.
    cpu_threads: int = 1

    def __post_init__(self) -> None:
        if not self.seq_lens or not self.mbs or any(v < 1 for v in self.seq_lens + self.mbs):
            raise CostModelError("calibration grid needs positive sequence lengths and micro-batch sizes")
        if self.repeats < 1:
            raise CostModelError(f"--repeats must be at least 1, got {self.repeats}")

    @classmethod
    def for_device(cls, device: str, seq_lens: str | None = None, mbs: str | None = None, repeats: int = 5):
        default_lens, default_mbs = DEFAULT_GRIDS[device]
        return cls(_ints(seq_lens, "--seq-lens") or default_lens, _ints(mbs, "--mbs") or default_mbs, repeats)


def _ints(text: str | None, flag: str) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise CostModelError(f"{flag} must be comma-separated integers, got {text!r}") from None


@dataclass
class CalibrationResult:
    profile: pd.DataFrame
    fit: LayerTimeFit
    spec: GPUSpec
    elapsed_s: float
    profile_path: Path
    fit_path: Path
    spec_path: Path


class LayerBench:
    """One HF decoder layer with LoRA on a device; times forward+backward of (mbs, seq_len) inputs."""

    def __init__(self, model: ModelSpec, device: str, threads: int = 1) -> None:
        import torch
        from peft import LoraConfig, inject_adapter_in_model

        if device == "cuda" and not torch.cuda.is_available():
            raise CostModelError("--device cuda: no CUDA device is available here")
        if device == "cpu":
            torch.set_num_threads(threads)
        self.torch, self.device = torch, torch.device(device)
        self.dtype = torch.bfloat16 if device == "cuda" else torch.float32
        config = model.to_hf_config()
        config._attn_implementation = "sdpa"
        layer_cls, rope_cls = _layer_classes(model.arch)
        torch.manual_seed(0)
        layer = layer_cls(config, layer_idx=0)
        for p in layer.parameters():
            p.requires_grad_(False)
        lora = LoraConfig(
            r=DEFAULT_LORA_RANK,
            lora_alpha=2 * DEFAULT_LORA_RANK,
            target_modules=list(DEFAULT_LORA_TARGETS),
            lora_dropout=0.0,
        )
        self.layer = inject_adapter_in_model(lora, layer).to(self.device, self.dtype)
        self.rope = rope_cls(config=config).to(self.device)
        self.hidden = model.hidden_size

    def time_ms(self, mbs: int, seq_len: int, repeats: int) -> float:
        torch = self.torch
        x = torch.randn(mbs, seq_len, self.hidden, device=self.device, dtype=self.dtype, requires_grad=True)
        pos = torch.arange(seq_len, device=self.device).unsqueeze(0)
        cos_sin = self.rope(x, pos)
        grad = torch.ones_like(x)
        samples = []
        for i in range(repeats + 1):  # the first run warms up allocators and kernels
            self._sync()
            start = time.perf_counter()
            out = self.layer(x, position_ids=pos, position_embeddings=cos_sin)
            out = out[0] if isinstance(out, tuple) else out
            out.backward(grad)
            self._sync()
            if i:
                samples.append((time.perf_counter() - start) * 1e3)
            x.grad = None
        # Background load only ever adds time: the fastest run is the best estimate of the layer's own cost.
        return min(samples)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()


def _layer_classes(arch: str):
    if arch == "qwen2":
        from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer, Qwen2RotaryEmbedding

        return Qwen2DecoderLayer, Qwen2RotaryEmbedding
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding

    return LlamaDecoderLayer, LlamaRotaryEmbedding


def measure_device_spec(device: str, threads: int = 1) -> GPUSpec:
    """Peak matmul throughput and memory bandwidth measured here; the rest from the nominal spec."""
    import torch

    dev = torch.device(device)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    n = 4096 if device == "cuda" else 512
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    big = torch.empty(32 * 2**20 // 4 * (8 if device == "cuda" else 1), device=dev)

    def best_s(fn, reps=5):
        times = []
        for _ in range(reps + 1):
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        return min(times[1:])

    tflops = 2 * n**3 / best_s(lambda: a @ b) / 1e12
    gbps = 2 * big.numel() * 4 / best_s(lambda: big.clone()) / 1e9
    base = GPUS["cpu"] if device == "cpu" else GPUS["h200-141gb"]
    name = "cpu" if device == "cpu" else torch.cuda.get_device_name().lower().replace(" ", "-")
    return GPUSpec(
        name,
        round(tflops, 4),
        base.memory_gib,
        round(gbps, 1),
        base.nvlink_gbps,
        base.network_gbps,
        base.gpus_per_node,
    )


def profile_stem(model: str, device: str) -> str:
    """The file-name stem of a model's profile on a device: tiny on cpu -> tiny_cpu."""
    return f"{model}_{device}".replace(".", "_").replace("-", "_")


def write_profile(out_dir: str | Path, stem: str, profile: pd.DataFrame) -> tuple[Path, Path, LayerTimeFit]:
    """<stem>_layer_time.csv (the profile, in ms per layer) and <stem>_fit.json (its fit) under out_dir."""
    out = Path(out_dir)
    profile_path, fit_path = out / f"{stem}_layer_time.csv", out / f"{stem}_fit.json"
    fit = fit_profile(profile[["tp", "seq_len", "mbs", "time"]], source=profile_path.name)
    atomic_write(profile_path, lambda p: profile.round(6).to_csv(p, index=False))
    atomic_write(fit_path, fit.to_json)
    return profile_path, fit_path, fit


def calibrate(
    model_name: str, device: str, grid: CalibrationGrid, out_dir: str | Path, progress: bool = True
) -> CalibrationResult:
    from tqdm import tqdm

    model = load_model_spec(model_name)
    start = time.perf_counter()
    bench = LayerBench(model, device, grid.cpu_threads)
    points = [(s, b) for s in grid.seq_lens for b in grid.mbs]
    rows = []
    for seq_len, mbs in tqdm(points, desc=f"calibrate {model.name} on {device}", disable=not progress):
        rows.append(
            {"tp": 1, "seq_len": seq_len, "mbs": mbs, "time": bench.time_ms(mbs, seq_len, grid.repeats)}
        )
    profile = pd.DataFrame(rows)
    spec = measure_device_spec(device, grid.cpu_threads)
    elapsed = time.perf_counter() - start

    stem = profile_stem(model.name, spec.name)
    profile_path, fit_path, fit = write_profile(out_dir, stem, profile)
    spec_path = Path(out_dir) / f"{spec.name}_spec.json"
    measured = {"device": device, "threads": grid.cpu_threads, "seconds": round(elapsed, 1)}
    write_json(spec_path, {**asdict(spec), "measured": measured})
    return CalibrationResult(profile, fit, spec, elapsed, profile_path, fit_path, spec_path)
