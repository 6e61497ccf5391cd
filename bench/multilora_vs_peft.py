"""Benchmark: one training step (forward, loss, backward, AdamW) of a mixed-task micro-batch through the executor's
multi-LoRA layers, against single-adapter peft training on the same tokens. Writes
bench/results/multilora_vs_peft.json and prints the ratio (target: at most 1.15).

Both sides run the same model (a small Llama, random weights, fp32, one CPU thread) through the same stage forward
(executor.model.Stage); only the LoRA layers differ: the executor's MultiLoraLinear with NUM_TASKS adapters and the
micro-batch split evenly among them, or peft's LoRA layer with one adapter and every sequence on it. Runs are
interleaved and the fastest of REPEATS kept for each side (background load only ever adds time).

    .venv/bin/python bench/multilora_vs_peft.py
"""

from __future__ import annotations

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
NUM_TASKS, NUM_SEQS, SEQ_LEN = 4, 8, 256
REPEATS, WARMUP = 12, 2
CPU = torch.device("cpu")


def multilora_side(spec: ModelSpec):
    model = build_base_model(spec, None, 0, torch.float32, CPU)
    adapters = [AdapterSpec(f"task{i}", RANK, ALPHA, TARGETS) for i in range(NUM_TASKS)]
    batch = inject_lora(model, adapters, seed=0)
    per = NUM_SEQS // NUM_TASKS
    batch.set([(a.name, i * per, (i + 1) * per) for i, a in enumerate(adapters)])
    opts = []
    for a in adapters:
        params = [p for _, _, m in lora_modules(model) for p in m.adapter(a.name)]
        opts.append(torch.optim.AdamW(params, lr=1e-4))
    return Stage(model), opts


def peft_side(spec: ModelSpec):
    from peft import LoraConfig, get_peft_model

    model = build_base_model(spec, None, 0, torch.float32, CPU)
    config = LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=list(TARGETS), lora_dropout=0.0)
    peft_model = get_peft_model(model, config)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    return Stage(peft_model.base_model.model), [torch.optim.AdamW(params, lr=1e-4)]


def train_step_s(stage: Stage, opts, ids: torch.Tensor) -> float:
    start = time.perf_counter()
    logits = stage(ids)
    loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())
    loss.backward()
    for opt in opts:
        opt.step()
        opt.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main() -> None:
    torch.set_num_threads(1)
    spec = ModelSpec("bench-llama", CONFIG)
    sides = {"multilora": multilora_side(spec), "peft": peft_side(spec)}
    ids = torch.randint(
        0, CONFIG["vocab_size"], (NUM_SEQS, SEQ_LEN), generator=torch.Generator().manual_seed(0)
    )
    times: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(WARMUP + REPEATS):
        for name, (stage, opts) in sides.items():
            t = train_step_s(stage, opts, ids)
            if i >= WARMUP:
                times[name].append(t)
    best = {name: min(ts) for name, ts in times.items()}
    median = {name: statistics.median(ts) for name, ts in times.items()}
    report = {
        "model": CONFIG,
        "lora": {"rank": RANK, "alpha": ALPHA, "targets": list(TARGETS)},
        "micro_batch": {"num_seqs": NUM_SEQS, "seq_len": SEQ_LEN, "tasks_in_multilora_batch": NUM_TASKS},
        "threads": 1,
        "repeats": REPEATS,
        "multilora_step_s": round(best["multilora"], 4),
        "peft_single_adapter_step_s": round(best["peft"], 4),
        "ratio_best": round(best["multilora"] / best["peft"], 3),
        "ratio_median": round(median["multilora"] / median["peft"], 3),
    }
    out = Path(__file__).parent / "results" / "multilora_vs_peft.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(
        f"multi-LoRA ({NUM_TASKS} tasks mixed) / peft (1 adapter): {report['ratio_best']:.3f}x "
        f"(best of {REPEATS}), {report['ratio_median']:.3f}x (median)"
    )


if __name__ == "__main__":
    main()
