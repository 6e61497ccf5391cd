"""Distributed runs against references: joint training equals each task trained alone, a TP=2 or pp=2 replica
equals a TP=1/pp=1 one, and a packed pipeline equals the padded replica (losses and gradients)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from lobra.costmodel import load_model_spec
from lobra.executor.data import SyntheticTokens
from lobra.executor.model import build_base_model, lora_init
from lobra.executor.peft_io import load_adapter_tensors
from lobra.policies.dispatchers import DispatcherConfig
from lobra.traces import StepSampler, Workload, load_workload
from safetensors.torch import load_file

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
SPEC = load_model_spec("tiny")
LR = 1e-2  # as in conftest.COMMON


def train_alone_with_peft(task, steps: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """The reference: one task, one process, plain peft on HF's own forward, one sequence at a time (no padding,
    no micro-batches), the same data, init, loss normalisation and AdamW."""
    import re

    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict

    spec = task.spec
    base = build_base_model(SPEC, None, seed, torch.float64, torch.device("cpu"))
    config = LoraConfig(
        r=spec.rank, lora_alpha=spec.alpha, target_modules=list(spec.targets), lora_dropout=0.0
    )
    model = get_peft_model(base, config)
    params = []
    for name, param in model.named_parameters():
        if "lora_A" in name:
            layer, module = re.search(r"layers\.(\d+)\..*\.(\w+_proj)\.lora_A", name).groups()
            with torch.no_grad():
                param.copy_(lora_init(seed, spec.name, int(layer), module, spec.rank, param.shape[1]))
        if param.requires_grad:
            params.append(param)
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
    sampler = StepSampler(Workload((task,)), seed=seed)
    source = SyntheticTokens(SPEC.vocab_size, seed)
    for step in range(steps):
        lengths = [n for _, n in sampler.next_step()]
        targets = sum(n - 1 for n in lengths)
        opt.zero_grad()
        loss = 0.0
        for k, n in enumerate(lengths):
            x = torch.from_numpy(source.ids((spec.name, step, k), n))[None]
            logits = model(input_ids=x).logits[0, :-1]
            loss = loss + torch.nn.functional.cross_entropy(logits, x[0, 1:], reduction="sum") / targets
        loss.backward()
        opt.step()
    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_joint_training_equals_each_task_alone(joint_run, ex):
    assert ex.lr == LR
    workload = load_workload(ex.tasks)
    for task in workload:
        joint = load_adapter_tensors(joint_run / "adapters" / task.name)
        alone = train_alone_with_peft(task, ex.steps)
        diff = max_diff(joint, alone)
        moved = max(v.abs().max().item() for k, v in joint.items() if "lora_B" in k)
        print(f"joint vs alone, task {task.name}: max abs diff {diff:.3g} (largest |B| {moved:.3g})")
        assert moved > 1e-3  # training moved the adapters: the comparison is not between zeros
        assert diff <= 1e-5


def _grads(run, step):
    return load_file(str(run / "grads" / f"step_{step}.safetensors"))


def _compare_replicas(ref_dir, other_dir, label, names):
    for step in range(2):
        ref, other = _grads(ref_dir, step), _grads(other_dir, step)
        losses = {k for k in ref if k.endswith("/loss")}
        loss_diff = max((ref[k] - other[k]).abs().max().item() for k in losses)
        grad_diff = max_diff(
            {k: v for k, v in ref.items() if k not in losses},
            {k: v for k, v in other.items() if k not in losses},
        )
        a_grad = max(v.abs().max().item() for k, v in ref.items() if "lora_A" in k)
        print(
            f"{label} step {step}: loss diff {loss_diff:.3g}, grad diff {grad_diff:.3g} (max |dA| {a_grad:.3g})"
        )
        assert loss_diff <= 1e-5 and grad_diff <= 1e-5
        if step == 1:
            assert a_grad > 1e-6  # B is non-zero after one step, so A's gradients are real
    for task in names:
        a = load_adapter_tensors(ref_dir / "adapters" / task)
        b = load_adapter_tensors(other_dir / "adapters" / task)
        assert max_diff(a, b) <= 1e-5


def test_tp2_replica_matches_tp1(single_run, runs_dir, ex):
    out = runs_dir / "tp2"
    ex.run_job(out, "<2,1>x1", 2, 2, dump_grads=True)
    _compare_replicas(single_run, out, "tp=2 vs tp=1", ex.names)


def test_pp2_replica_matches_pp1(single_run, runs_dir, ex):
    out = runs_dir / "pp2"
    ex.run_job(out, "<1,2>x1", 2, 2, dump_grads=True)
    _compare_replicas(single_run, out, "pp=2 vs pp=1", ex.names)
    # each stage's own compute is recorded: two processes' clocks, so never the same floats
    mbs = pd.read_csv(out / "micro_batches.csv")
    assert len(mbs) > 0 and (mbs["last_stage_s"] > 0).all() and (mbs["time_s"] > 0).all()
    assert (mbs["last_stage_s"] != mbs["time_s"]).all()


def test_packed_pp2_replica_matches_padded_tp1(single_run, runs_dir, ex):
    out = runs_dir / "pp2_packed"
    ex.run_job(out, "<1,2>x1", 2, 2, dump_grads=True, dispatch=DispatcherConfig(packing=True))
    # The dispatch packed several sequences into a row, and the records say so: no padding was processed.
    mbs = pd.read_csv(out / "micro_batches.csv")
    assert (mbs["num_seqs"] > 1).any()
    replicas = pd.read_csv(out / "replicas.csv")
    assert (replicas["padded_tokens"] == replicas["tokens"]).all()
    _compare_replicas(single_run, out, "packed pp=2 vs padded pp=1", ex.names)


def test_checkpointing_pp2_replica_matches_tp1(single_run, runs_dir, ex):
    """<1,2,ckpt>: each layer's forward runs again in the backward, after later micro-batches' forwards (1F1B), with
    this micro-batch's task segments: the same losses and gradients."""
    out = runs_dir / "pp2_ckpt"
    ex.run_job(out, "<1,2,ckpt>x1", 2, 2, dump_grads=True)
    assert set(pd.read_csv(out / "replicas.csv")["config"]) == {"<1,2,ckpt>"}
    _compare_replicas(single_run, out, "ckpt pp=2 vs pp=1", ex.names)


@pytest.mark.slow
def test_tp2_pp2_replica_matches_tp1(single_run, runs_dir, ex):
    out = runs_dir / "tp2pp2"
    ex.run_job(out, "<2,2>x1", 4, 2, dump_grads=True)
    _compare_replicas(single_run, out, "tp=2 pp=2 vs tp=1 pp=1", ex.names)


def test_joint_gradients_count_each_replica_once(joint_run, single_run):
    """The <2,1> replica's shards are summed once, not once per TP rank: step 0's synced gradients of the
    heterogeneous run equal those of the one-rank run on the same data."""
    ref, joint = _grads(single_run, 0), _grads(joint_run, 0)
    assert max_diff(ref, joint) <= 1e-10
