"""Calibration on the machine at hand: time one decoder layer's forward+backward with LoRA over a (seq_len, mbs)
grid and write a profile CSV in the shipped schema (tp,seq_len,mbs,time,pre_post_time), its fit, and a measured
device spec. pre_post_time is what runs outside the decoder layers for the same micro-batch (embedding, final norm,
LM head, loss), timed the same way; optionally, packed rows (several sequences in one row under the executor's
block-diagonal mask) go to a second CSV.

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
from lobra.costmodel.profile import PRE_POST_COLUMN
from lobra.costmodel.specs import GPUS, GPUSpec, ModelSpec, load_model_spec

from lobra.io import atomic_write, write_json

DEFAULT_GRIDS = {
    "cpu": ((64, 128, 256, 384, 512, 768, 1024, 1536, 2048), (1, 2, 4, 8)),
    "cuda": ((128, 256, 512, 1024, 2048, 4096, 8192, 16384), (1, 2, 4, 8, 16)),
}
# Micro-batches above this many tokens are left out of a default grid: the planners never dispatch larger ones
# to one GPU, and their activations would not fit an 8B layer's neighbours in memory.
DEFAULT_MAX_TOKENS = {"cpu": None, "cuda": 32768}
# Packed rows (tokens in the row, sequences sharing it) timed with --packed.
PACKED_POINTS = {
    "cpu": ((256, 2), (256, 4), (1024, 2), (1024, 4), (1024, 8)),
    "cuda": ((2048, 2), (2048, 8), (8192, 2), (8192, 8), (16384, 4), (16384, 16), (32768, 8), (32768, 32)),
}


@dataclass(frozen=True)
class CalibrationGrid:
    seq_lens: tuple[int, ...]
    mbs: tuple[int, ...]
    repeats: int = 5
    # The executor runs several CPU ranks on few cores, one thread each: time the layer the same way.
    cpu_threads: int = 1
    max_tokens: int | None = None  # points with mbs x seq_len above it are skipped
    packed: tuple[tuple[int, int], ...] = ()  # (row tokens, sequences in it) to time packed

    def __post_init__(self) -> None:
        if not self.seq_lens or not self.mbs or any(v < 1 for v in self.seq_lens + self.mbs):
            raise CostModelError("calibration grid needs positive sequence lengths and micro-batch sizes")
        if self.repeats < 1:
            raise CostModelError(f"--repeats must be at least 1, got {self.repeats}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise CostModelError(f"--max-tokens must be at least 1, got {self.max_tokens}")
        if not self.points:
            raise CostModelError(
                f"no (seq_len, mbs) point of the grid is within --max-tokens {self.max_tokens}"
            )
        for tokens, seqs in self.packed:
            if seqs < 1 or tokens < seqs:
                raise CostModelError(f"a packed row of {tokens} tokens cannot hold {seqs} sequences")

    @property
    def points(self) -> list[tuple[int, int]]:
        """(seq_len, mbs) pairs to time, within max_tokens."""
        cap = self.max_tokens
        return [(s, b) for s in self.seq_lens for b in self.mbs if cap is None or s * b <= cap]

    @classmethod
    def for_device(
        cls,
        device: str,
        seq_lens: str | None = None,
        mbs: str | None = None,
        repeats: int = 5,
        max_tokens: int | None = None,
        packed: bool = False,
    ):
        default_lens, default_mbs = DEFAULT_GRIDS[device]
        return cls(
            _ints(seq_lens, "--seq-lens") or default_lens,
            _ints(mbs, "--mbs") or default_mbs,
            repeats,
            max_tokens=max_tokens if max_tokens is not None else DEFAULT_MAX_TOKENS[device],
            packed=PACKED_POINTS[device] if packed else (),
        )


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
    packed_path: Path | None = None


class LayerBench:
    """One HF decoder layer with LoRA on a device; times forward+backward of (mbs, seq_len) inputs, and of what
    runs outside the layers (embedding, final norm, LM head, loss) for the same micro-batch."""

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
        self.vocab = model.vocab_size
        # Outside the layers, as the executor's stage runs them: frozen embedding, final norm and LM head.
        nn = torch.nn
        self.embed = nn.Embedding(model.vocab_size, model.hidden_size).to(self.device, self.dtype)
        self.norm = nn.RMSNorm(model.hidden_size, eps=config.rms_norm_eps).to(self.device, self.dtype)
        self.head = nn.Linear(model.hidden_size, model.vocab_size, bias=False).to(self.device, self.dtype)
        for p in [*self.embed.parameters(), *self.norm.parameters(), *self.head.parameters()]:
            p.requires_grad_(False)

    def time_ms(self, mbs: int, seq_len: int, repeats: int, pieces: int = 1) -> float:
        """Fastest of `repeats` forward+backward passes of the layer over mbs rows of seq_len tokens; with
        pieces > 1, each row packs that many equal sequences under a block-diagonal causal mask."""
        torch = self.torch
        x = torch.randn(mbs, seq_len, self.hidden, device=self.device, dtype=self.dtype, requires_grad=True)
        if pieces > 1:
            from lobra.executor.data import block_causal_mask

            lengths = [seq_len // pieces] * (pieces - 1) + [seq_len - (pieces - 1) * (seq_len // pieces)]
            mask = torch.from_numpy(block_causal_mask(lengths))[None, None].to(self.device)
            pos = torch.cat([torch.arange(n) for n in lengths]).to(self.device).unsqueeze(0)
        else:
            mask, pos = None, torch.arange(seq_len, device=self.device).unsqueeze(0)
        cos_sin = self.rope(x, pos)
        grad = torch.ones_like(x)

        def run():
            out = self.layer(x, attention_mask=mask, position_ids=pos, position_embeddings=cos_sin)
            out = out[0] if isinstance(out, tuple) else out
            out.backward(grad)
            x.grad = None

        return self._fastest_ms(run, repeats)

    def pre_post_ms(self, mbs: int, seq_len: int, repeats: int) -> float:
        """Forward+backward outside the layers: the embedding lookup, then (from the last layer's output) the final
        norm, the LM head and the token loss in fp32, back to the layers' output."""
        torch = self.torch
        ids = torch.randint(0, self.vocab, (mbs, seq_len), device=self.device)
        h = torch.randn(mbs, seq_len, self.hidden, device=self.device, dtype=self.dtype, requires_grad=True)

        def run():
            self.embed(ids)
            logits = self.head(self.norm(h))
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), ids.flatten())
            loss.backward()
            h.grad = None

        return self._fastest_ms(run, repeats)

    def _fastest_ms(self, run, repeats: int) -> float:
        torch = self.torch
        cuda = self.device.type == "cuda"
        samples = []
        for i in range(repeats + 1):  # the first run warms up allocators and kernels
            if cuda:
                begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                torch.cuda.synchronize()
                begin.record()
                run()
                end.record()
                torch.cuda.synchronize()
                ms = begin.elapsed_time(end)
            else:
                start = time.perf_counter()
                run()
                ms = (time.perf_counter() - start) * 1e3
            if i:
                samples.append(ms)
        # Background load only ever adds time: the fastest run is the best estimate of the layer's own cost.
        return min(samples)


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


def _packed_times(bench: LayerBench, tokens: int, seqs: int, grid: CalibrationGrid) -> dict:
    """A packed row against the same sequences padded. A dense block mask costs memory a padded batch does not:
    a point the device cannot hold is recorded as such (empty times) rather than ending the calibration."""
    torch = bench.torch
    try:
        return {
            "time": bench.time_ms(1, tokens, grid.repeats, pieces=seqs),
            "padded_time": bench.time_ms(seqs, tokens // seqs, grid.repeats),
        }
    except torch.OutOfMemoryError:
        torch.cuda.empty_cache()
        return {"time": None, "padded_time": None}


def calibrate(
    model_name: str, device: str, grid: CalibrationGrid, out_dir: str | Path, progress: bool = True
) -> CalibrationResult:
    from tqdm import tqdm

    model = load_model_spec(model_name)
    start = time.perf_counter()
    bench = LayerBench(model, device, grid.cpu_threads)
    rows, packed = [], []
    desc = f"calibrate {model.name} on {device}"
    for seq_len, mbs in tqdm(grid.points, desc=desc, disable=not progress):
        rows.append(
            {
                "tp": 1,
                "seq_len": seq_len,
                "mbs": mbs,
                "time": bench.time_ms(mbs, seq_len, grid.repeats),
                PRE_POST_COLUMN: bench.pre_post_ms(mbs, seq_len, grid.repeats),
            }
        )
    profile = pd.DataFrame(rows)
    spec = measure_device_spec(device, grid.cpu_threads)
    stem = profile_stem(model.name, spec.name)
    profile_path, fit_path, fit = write_profile(out_dir, stem, profile)
    for tokens, seqs in tqdm(grid.packed, desc=f"{desc}, packed", disable=not progress or not grid.packed):
        packed.append(
            {"tp": 1, "tokens": tokens, "sequences": seqs, **_packed_times(bench, tokens, seqs, grid)}
        )
    elapsed = time.perf_counter() - start
    packed_path = None
    if packed:
        packed_path = Path(out_dir) / f"{stem}_packed.csv"
        atomic_write(packed_path, lambda p: pd.DataFrame(packed).round(6).to_csv(p, index=False))
    spec_path = Path(out_dir) / f"{spec.name}_spec.json"
    measured = {"device": device, "threads": grid.cpu_threads, "seconds": round(elapsed, 1)}
    write_json(spec_path, {**asdict(spec), "measured": measured})
    return CalibrationResult(profile, fit, spec, elapsed, profile_path, fit_path, spec_path, packed_path)
