"""Pure parts of the executor (no process group): rank placement, stage split, sequence keys, micro-batch tensors,
loss weights, dataset tokens."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from lobra.costmodel import CostModel, MemoryOptions, load_model_spec, parse_plan
from lobra.executor.data import (
    IGNORE_INDEX,
    DatasetTokens,
    SyntheticTokens,
    build_micro_batch,
    step_keys,
    target_counts,
)
from lobra.executor.errors import ExecutorError
from lobra.executor.groups import placements
from lobra.executor.parallel import stage_layers
from lobra.policies.dispatchers import get_dispatcher
from lobra.policies.types import StepItem


def test_ranks_fill_replicas_in_plan_order():
    plan = parse_plan("<1,1>x2 <2,2>x1 <2,1>x1")  # sorted: <1,1>, <1,1>, <2,1>, <2,2>
    got = [(p.replica, p.stage, p.tp_rank, p.base) for p in placements(plan)]
    assert got == [
        (0, 0, 0, 0),
        (1, 0, 0, 1),
        (2, 0, 0, 2),
        (2, 0, 1, 2),
        (3, 0, 0, 4),
        (3, 0, 1, 4),
        (3, 1, 0, 4),
        (3, 1, 1, 4),
    ]
    last = placements(plan)[7]
    assert last.stage_rank(0) == 5 and last.last_stage and not last.is_leader


@pytest.mark.parametrize(("layers", "pp"), [(2, 2), (5, 2), (7, 3), (4, 4)])
def test_stages_split_layers_contiguously(layers, pp):
    ranges = [stage_layers(layers, pp, s) for s in range(pp)]
    assert [i for r in ranges for i in r] == list(range(layers))
    assert max(map(len, ranges)) - min(map(len, ranges)) <= 1


def test_keys_are_per_task_so_a_task_alone_sees_the_same_ids():
    items = [("a", 5), ("a", 7), ("b", 3)]
    keys = step_keys(items, {"a": 4, "b": 9})
    assert keys == [("a", 4, 0), ("a", 4, 1), ("b", 9, 0)]
    assert step_keys([("b", 3)], {"b": 9}) == [("b", 9, 0)]
    src = SyntheticTokens(256, seed=1)
    assert np.array_equal(src.ids(("b", 9, 0), 3), SyntheticTokens(256, 1).ids(("b", 9, 0), 3))
    assert not np.array_equal(src.ids(("b", 9, 0), 8), src.ids(("b", 9, 1), 8))


def test_micro_batches_order_by_task_and_weights_normalise_each_task():
    items = [StepItem("a", 5), StepItem("b", 9), StepItem("a", 3), StepItem("b", 1), StepItem("c", 40)]
    keys = step_keys([(i.task, i.length) for i in items], {"a": 0, "b": 0, "c": 0})
    memory = MemoryOptions(num_tasks=3, lora_rank=8)
    cost = CostModel.build(load_model_spec("tiny"), "cpu", memory=memory)
    dispatch = get_dispatcher("balanced").dispatch(items, parse_plan("<1,1>x2"), cost)
    targets = target_counts(items, dispatch)
    assert targets == {"a": 4 + 2, "b": 8 + 0, "c": 39}
    src = SyntheticTokens(256, 0)
    per_task = {"a": 0.0, "b": 0.0, "c": 0.0}
    for mbs in dispatch.micro_batches:
        for mb in mbs:
            data = build_micro_batch(mb, items, keys, src, ["a", "b", "c"], targets, "cpu", torch.float64)
            tasks = [t for t, s, e in data.segments for _ in range(s, e)]
            assert tasks == sorted(tasks, key="abc".index)  # contiguous per task, in workload order
            assert data.ids.shape == (len(mb.items), mb.seq_len)
            for row, (task, n) in enumerate(zip(tasks, data.lengths, strict=True)):
                assert (data.labels[row, : n - 1] == data.ids[row, 1:n]).all()
                assert (data.labels[row, n - 1 :] == IGNORE_INDEX).all()
                assert (data.weights[row, n - 1 :] == 0).all()
                per_task[task] += data.weights[row].sum().item()
    assert per_task == pytest.approx({"a": 1.0, "b": 1.0, "c": 1.0})


def test_dataset_tokens_cut_and_concatenate_real_ids(tmp_path):
    rows = [[1, 2, 3], [4, 5], [6, 7, 8, 9]]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps({"input_ids": r}) + "\n" for r in rows))
    src = DatasetTokens(tmp_path, vocab_size=16, seed=0)
    ids = src.ids(("t", 0, 0), 7)
    flat = sum(rows, [])
    assert len(ids) == 7
    starts = [sum(map(len, rows[:k])) for k in range(3)]
    assert any(np.array_equal(ids, np.array((flat + flat)[s : s + 7])) for s in starts)
    assert np.array_equal(ids, DatasetTokens(tmp_path, 16, 0).ids(("t", 0, 0), 7))
    (tmp_path / "big.jsonl").write_text(json.dumps({"input_ids": [99]}) + "\n")
    with pytest.raises(ExecutorError, match="outside the model's vocabulary"):
        src.ids(("big", 0, 0), 3)
