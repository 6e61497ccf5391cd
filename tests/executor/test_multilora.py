"""The multi-LoRA layer against peft, per-sequence routing of adapters inside mixed-task micro-batches, and packed
micro-batches (several sequences in one row, each attending only to itself) against the same sequences run separately,
in float64: logits, the step objective and every adapter's gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lobra.costmodel import load_model_spec
from lobra.executor.data import SyntheticTokens, block_causal_mask, build_micro_batch
from lobra.executor.model import AdapterSpec, Stage, build_base_model, inject_lora, lora_modules, peft_key
from lobra.executor.multilora import LoraBatch, MultiLoraLinear
from lobra.executor.pipeline import micro_batch_loss
from lobra.policies.types import MicroBatchPlan, StepItem

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
SPEC = load_model_spec("tiny")
ADAPTERS = [
    AdapterSpec("a", 4, 8.0, ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")),
    AdapterSpec("b.2", 8, 16.0, ("q_proj", "v_proj", "up_proj", "down_proj")),
    AdapterSpec("c", 2, 1.0, ("o_proj", "down_proj")),
]


def multilora_model(seed: int = 0):
    model = build_base_model(SPEC, None, seed, torch.float64, torch.device("cpu"))
    batch = inject_lora(model, ADAPTERS, seed)
    # B starts at zero (a no-op adapter): give every B values so that the comparisons mean something.
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _, _, layer in lora_modules(model):
            for b in layer.lora_B:
                b.copy_(torch.randn(b.shape, generator=gen, dtype=torch.float64) * 0.05)
    return Stage(model), batch


def peft_model_for(stage: Stage, adapter: AdapterSpec, seed: int = 0):
    from peft import LoraConfig, get_peft_model

    base = build_base_model(SPEC, None, seed, torch.float64, torch.device("cpu"))
    config = LoraConfig(
        r=adapter.rank, lora_alpha=adapter.alpha, target_modules=list(adapter.targets), lora_dropout=0.0
    )
    model = get_peft_model(base, config)
    ours = {}
    for layer, module, wrapped in lora_modules(stage.model):
        pair = wrapped.adapter(adapter.name)
        if pair is not None:
            ours[peft_key(layer, module, "A")], ours[peft_key(layer, module, "B")] = pair
    theirs = {}
    for name, param in model.named_parameters():
        if "lora_" in name:
            key = name.replace(".default", "")
            with torch.no_grad():
                param.copy_(ours[key])
            theirs[key] = param
    assert theirs.keys() == ours.keys()
    return model, ours, theirs


def ids(batch: int, seq: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, SPEC.vocab_size, (batch, seq), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda a: a.name)
def test_single_task_batch_matches_peft_logits_and_gradients(adapter):
    stage, batch = multilora_model()
    peft_model, ours, theirs = peft_model_for(stage, adapter)
    x = ids(3, 17)
    batch.set([(adapter.name, 0, 3)])
    logits = stage(x)
    ref = peft_model(input_ids=x).logits
    assert (logits - ref).abs().max().item() < 1e-10
    weights = torch.randn(logits.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    (logits * weights).sum().backward()
    (ref * weights).sum().backward()
    for key in ours:
        diff = (ours[key].grad - theirs[key].grad).abs().max().item()
        assert diff < 1e-10, key


def test_mixed_batch_rows_equal_single_task_runs():
    stage, batch = multilora_model()
    x = ids(5, 11, seed=3)
    segments = [("a", 0, 2), ("b.2", 2, 3), ("c", 3, 5)]
    batch.set(segments)
    mixed = stage(x)
    for task, start, stop in segments:
        batch.set([(task, 0, stop - start)])
        alone = stage(x[start:stop])
        assert (mixed[start:stop] - alone).abs().max().item() < 1e-12


def test_a_sequence_trains_only_its_own_adapter():
    stage, batch = multilora_model()
    x = ids(4, 9, seed=4)
    batch.set([("a", 0, 1), ("b.2", 1, 3), ("c", 3, 4)])
    logits = stage(x)
    logits[1:3].sum().backward()  # only task b.2's sequences contribute to the loss
    touched = set()
    for _, _, layer in lora_modules(stage.model):
        for task in layer.tasks:
            a, b = layer.adapter(task)
            for p in (a, b):
                if p.grad is not None and p.grad.abs().max().item() > 0:
                    touched.add(task)
    assert touched == {"b.2"}
    assert all(
        not p.requires_grad or p.grad is None for n, p in stage.model.named_parameters() if "lora" not in n
    )


def test_layer_refuses_a_batch_without_segments():
    layer = MultiLoraLinear(torch.nn.Linear(4, 3), LoraBatch())
    layer.add_adapter("a", 2, 4.0, torch.zeros(2, 4))
    with pytest.raises(RuntimeError, match="segments"):
        layer(torch.zeros(1, 2, 4))


def test_tasks_without_an_adapter_on_a_module_get_the_base_output():
    batch = LoraBatch()
    base = torch.nn.Linear(4, 3).double()
    layer = MultiLoraLinear(base, batch)
    layer.add_adapter("a", 2, 4.0, torch.ones(2, 4, dtype=torch.float64), torch.float64)
    with torch.no_grad():
        layer.lora_B[0].fill_(1.0)
    x = torch.randn(3, 2, 4, dtype=torch.float64)
    batch.set([("other", 0, 1), ("a", 1, 3)])
    y = layer(x)
    assert torch.equal(y[0], base(x[0]))
    assert (y[1:] - base(x[1:]) - 2.0 * x[1:].sum(-1, keepdim=True) * 2).abs().max() < 1e-12


def test_segments_must_tile_the_batch_in_order():
    batch = LoraBatch()
    with pytest.raises(ValueError, match="tile"):
        batch.set([("a", 0, 2), ("b", 3, 4)])
    with pytest.raises(ValueError, match="tile"):
        batch.set([("a", 1, 2)])
    batch.set([("a", 0, 2), ("b", 2, 3)])
    assert batch.sizes == [2, 1]


# Packing.
TASKS = ["a", "b.2", "c"]
# Interleaved tasks and uneven lengths, one of a single token (no target): the step orders them by task.
ITEMS = [StepItem("c", 7), StepItem("a", 5), StepItem("b.2", 9), StepItem("a", 1), StepItem("c", 4)]
KEYS = [(it.task, 0, k) for k, it in enumerate(ITEMS)]
TARGETS = {"a": 4, "b.2": 8, "c": 9}


def micro_batch(items: tuple[int, ...], packed: bool):
    lengths = tuple(ITEMS[i].length for i in items)
    plan = MicroBatchPlan(items, lengths, max(lengths), packed=packed)
    source = SyntheticTokens(SPEC.vocab_size, seed=3)
    return build_micro_batch(plan, ITEMS, KEYS, source, TASKS, TARGETS, torch.device("cpu"), torch.float64)


def run(stage, batch, mb):
    """(loss, per-task loss, {param: grad}) of one micro-batch's forward and backward."""
    for p in stage.parameters():
        p.grad = None
    batch.set(mb.segments, int(mb.packed))
    logits = stage(mb.ids, mb.positions, mb.mask)
    loss, per_task = micro_batch_loss(logits, mb, len(TASKS))
    loss.backward()
    grads = {n: p.grad.clone() for n, p in stage.named_parameters() if p.grad is not None}
    return logits, loss.detach(), per_task, grads


def test_block_causal_mask_keeps_each_sequence_to_itself():
    mask = block_causal_mask([2, 1, 3])
    expected = np.zeros((6, 6), dtype=bool)
    for start, n in ((0, 2), (2, 1), (3, 3)):
        expected[start : start + n, start : start + n] = np.tril(np.ones((n, n), dtype=bool))
    assert np.array_equal(mask, expected)


def test_packed_row_lays_out_sequences_by_task_with_restarting_positions():
    mb = micro_batch((0, 1, 2, 3, 4), packed=True)
    # Ordered by task (a, a, b.2, c, c), then by item index.
    assert mb.lengths == [5, 1, 9, 7, 4]
    assert tuple(mb.ids.shape) == (1, 26) and mb.padded_tokens == mb.real_tokens == 26
    assert mb.segments == [("a", 0, 6), ("b.2", 6, 15), ("c", 15, 26)]
    assert mb.positions[0].tolist() == [*range(5), 0, *range(9), *range(7), *range(4)]
    # No target crosses into the next sequence: a sequence's last token has none.
    ends = np.cumsum(mb.lengths) - 1
    assert (mb.labels[0, ends] == -100).all()
    assert int((mb.labels != -100).sum()) == sum(n - 1 for n in mb.lengths)
    assert torch.equal(mb.task_index[0], torch.tensor([0] * 6 + [1] * 9 + [2] * 11))


def test_packed_equals_padded_equals_each_sequence_alone():
    stage, batch = multilora_model()
    every = (0, 1, 2, 3, 4)
    packed = micro_batch(every, packed=True)
    packed_logits, packed_loss, packed_tasks, packed_grads = run(stage, batch, packed)
    padded = micro_batch(every, packed=False)
    padded_logits, padded_loss, padded_tasks, padded_grads = run(stage, batch, padded)

    alone_loss, alone_tasks, alone_grads = 0.0, torch.zeros(len(TASKS), dtype=torch.float64), {}
    for i in every:
        mb = micro_batch((i,), packed=False)
        logits, loss, per_task, grads = run(stage, batch, mb)
        # The sequence's logits inside the packed row are the ones it has alone.
        row = padded.lengths.index(ITEMS[i].length)  # lengths are distinct: find its place in the order
        start = sum(padded.lengths[:row])
        got = packed_logits[0, start : start + ITEMS[i].length]
        assert (got - logits[0]).abs().max().item() < 1e-10
        assert (padded_logits[row, : ITEMS[i].length] - logits[0]).abs().max().item() < 1e-10
        alone_loss += loss.item()
        alone_tasks += per_task
        for name, g in grads.items():
            alone_grads[name] = alone_grads.get(name, 0) + g

    assert packed_loss.item() == pytest.approx(alone_loss, rel=1e-12)
    assert padded_loss.item() == pytest.approx(alone_loss, rel=1e-12)
    assert torch.allclose(packed_tasks, alone_tasks, rtol=1e-12, atol=0)
    assert torch.allclose(padded_tasks, alone_tasks, rtol=1e-12, atol=0)
    assert packed_grads.keys() == alone_grads.keys() == padded_grads.keys()
    assert len(alone_grads) > 0
    for name, g in alone_grads.items():
        assert (packed_grads[name] - g).abs().max().item() < 1e-12, name
        assert (padded_grads[name] - g).abs().max().item() < 1e-12, name
