"""Benchmark: one training step (forward, loss, backward, AdamW) of a mixed-task micro-batch through the executor's
multi-LoRA layers, against single-adapter peft training on the same tokens. Writes
bench/results/multilora_vs_peft.json (or --out) and prints the ratio (target: at most 1.15 on the CPU, 1.05 on a GPU).

Both sides run the same model (random weights) through the same stage forward (executor.model.Stage); only the LoRA
layers differ: the executor's MultiLoraLinear with NUM_TASKS adapters and the micro-batch split evenly among them,
or peft's LoRA layer with one adapter and every sequence on it. Runs are interleaved and the fastest of REPEATS
kept for each side (background load only ever adds time). On the CPU: a small Llama, fp32, one thread; with
--device cuda: two Llama-3.1-8B-shaped layers (its full vocabulary) in bf16, 8 sequences of 1,024 tokens.

    .venv/bin/python bench/multilora_vs_peft.py [--device cuda] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from lobra.costmodel import ModelSpec
from lobra.executor.model import AdapterSpec, Stage, build_base_model, inject_lora, lora_modules
from torch.nn import functional as F

CONFIG = {
    "model_type": "llama",
    "vocab_size": 8192,
    "hidden_size": 512,
    "intermediate_size": 1408,
    "num_hidden_layers": 4,
    "num_attention_heads": 8,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-5,
    "max_position_embeddings": 4096,
}
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj")
RANK, ALPHA = 16, 32.0
# Llama-3.1-8B's layer shape and vocabulary, two layers: the LoRA share of a step is the same as the whole model's
CUDA_CONFIG = {
    "model_type": "llama",
    "vocab_size": 128256,
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 2,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0,
    "max_position_embeddings": 8192,
}
NUM_TASKS = 4
TINY_CONFIG = {
    **CONFIG,
    "hidden_size": 128,
    "intermediate_size": 352,
    "num_hidden_layers": 2,
    "vocab_size": 512,
}
SHAPES = {  # (model, sequences, their length, dtype); tiny: the path alone, in seconds (bench/gpu/check.py's test)
    "cpu": (CONFIG, 8, 256, torch.float32),
    "cuda": (CUDA_CONFIG, 8, 1024, torch.bfloat16),
    "tiny": (TINY_CONFIG, 8, 64, torch.float32),
}
REPEATS, WARMUP = 12, 2


def multilora_side(spec: ModelSpec, device: torch.device, dtype: torch.dtype, num_seqs: int):
    model = build_base_model(spec, None, 0, dtype, device)
    adapters = [AdapterSpec(f"task{i}", RANK, ALPHA, TARGETS) for i in range(NUM_TASKS)]
    batch = inject_lora(model, adapters, seed=0)
    per = num_seqs // NUM_TASKS
    batch.set([(a.name, i * per, (i + 1) * per) for i, a in enumerate(adapters)])
    opts = []
    for a in adapters:
        params = [p for _, _, m in lora_modules(model) for p in m.adapter(a.name)]
        opts.append(torch.optim.AdamW(params, lr=1e-4))
    return Stage(model), opts


def peft_side(spec: ModelSpec, device: torch.device, dtype: torch.dtype):
    from peft import LoraConfig, get_peft_model

    model = build_base_model(spec, None, 0, dtype, device)
    config = LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=list(TARGETS), lora_dropout=0.0)
    peft_model = get_peft_model(model, config)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    return Stage(peft_model.base_model.model), [torch.optim.AdamW(params, lr=1e-4)]


def train_step_s(stage: Stage, opts, ids: torch.Tensor) -> float:
    cuda = ids.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    logits = stage(ids)
    loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten())
    loss.backward()
    for opt in opts:
        opt.step()
        opt.zero_grad(set_to_none=True)
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to run (default cpu)")
    parser.add_argument(
        "--shape", choices=sorted(SHAPES), help="model and micro-batch (default: the device's)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).parent / "results" / "multilora_vs_peft.json",
        help="result JSON (default bench/results/multilora_vs_peft.json)",
    )
    parser.add_argument(
        "--repeats", type=int, default=REPEATS, help=f"timed steps of each side (default {REPEATS})"
    )
    args = parser.parse_args()
    config, num_seqs, seq_len, dtype = SHAPES[args.shape or args.device]
    device = torch.device(args.device)
    if args.device == "cpu":
        torch.set_num_threads(1)
    spec = ModelSpec("bench-llama", config)
    sides = {
        "multilora": multilora_side(spec, device, dtype, num_seqs),
        "peft": peft_side(spec, device, dtype),
    }
    ids = torch.randint(
        0, config["vocab_size"], (num_seqs, seq_len), generator=torch.Generator().manual_seed(0)
    ).to(device)
    times: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(WARMUP + args.repeats):
        for name, (stage, opts) in sides.items():
            t = train_step_s(stage, opts, ids)
            if i >= WARMUP:
                times[name].append(t)
    best = {name: min(ts) for name, ts in times.items()}
    median = {name: statistics.median(ts) for name, ts in times.items()}
    report = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "dtype": str(dtype).removeprefix("torch."),
        "torch": torch.__version__,
        "model": config,
        "lora": {"rank": RANK, "alpha": ALPHA, "targets": list(TARGETS)},
        "micro_batch": {"num_seqs": num_seqs, "seq_len": seq_len, "tasks_in_multilora_batch": NUM_TASKS},
        "threads": torch.get_num_threads() if args.device == "cpu" else None,
        "repeats": args.repeats,
        "multilora_step_s": round(best["multilora"], 4),
        "peft_single_adapter_step_s": round(best["peft"], 4),
        "ratio_best": round(best["multilora"] / best["peft"], 3),
        "ratio_median": round(median["multilora"] / median["peft"], 3),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(
        f"multi-LoRA ({NUM_TASKS} tasks mixed) / peft (1 adapter): {report['ratio_best']:.3f}x "
        f"(best of {args.repeats}), {report['ratio_median']:.3f}x (median)"
    )


if __name__ == "__main__":
    main()
