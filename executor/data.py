"""Token ids of a step's dispatched sequences, and the micro-batch tensors built from them.

A sequence is keyed by (task, the task's own step count, its index in the task's global batch): not by its index
in the joint step, so that a task trained alone gets exactly the same ids as inside any mix of tasks, and every rank
can build any micro-batch without communication.

Ids are synthetic (uniform over the vocabulary, seeded by the key) or taken from a local tokenized dataset,
DIR/<task>.parquet or DIR/<task>.jsonl with an `input_ids` column of token-id lists: the key picks a start
sample and consecutive samples are concatenated (wrapping around) and cut to the dispatched length. (The sampler
only hands out lengths; matching a sequence to the very sample its length came from needs the sampler's indices.)

Loss weights: a sequence of n tokens has n-1 next-token targets. Every target of task t weighs 1 / N_t, where N_t
counts task t's targets over the whole step's global batch, so a task's loss is the mean over its global batch
whatever the replica, micro-batch or padding each sequence ran in: joint training equals separate training.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from lobra.executor.errors import ExecutorError
from lobra.policies.types import DispatchPlan, MicroBatchPlan, StepItem

IGNORE_INDEX = -100
SeqKey = tuple[str, int, int]  # (task, the task's step, index in its global batch)


def step_keys(items: list[tuple[str, int]], task_steps: dict[str, int]) -> list[SeqKey]:
    """Keys of a step's items (task by task, as StepSampler.next_step returns them); task_steps: each task's
    steps done before this one."""
    seen: dict[str, int] = {}
    keys = []
    for task, _ in items:
        k = seen.get(task, 0)
        seen[task] = k + 1
        keys.append((task, task_steps[task], k))
    return keys


def run_lengths(items: list[StepItem], dispatch: DispatchPlan) -> dict[int, int]:
    """Length each non-dropped item runs with (after truncation)."""
    dropped = set(dispatch.dropped)
    return {i: dispatch.truncated.get(i, it.length) for i, it in enumerate(items) if i not in dropped}


def target_counts(items: list[StepItem], dispatch: DispatchPlan) -> dict[str, int]:
    """N_t: next-token targets of each task in the step's global batch."""
    counts: dict[str, int] = {}
    for i, n in run_lengths(items, dispatch).items():
        counts[items[i].task] = counts.get(items[i].task, 0) + n - 1
    return counts


class SyntheticTokens:
    def __init__(self, vocab_size: int, seed: int) -> None:
        self.vocab_size, self.seed = vocab_size, seed

    def ids(self, key: SeqKey, length: int) -> np.ndarray:
        task, step, k = key
        rng = np.random.default_rng([self.seed, zlib.crc32(task.encode()), step, k])
        return rng.integers(0, self.vocab_size, size=length, dtype=np.int64)


def dataset_file(data_dir: str | Path, task: str) -> Path:
    for suffix in (".parquet", ".jsonl"):
        path = Path(data_dir) / f"{task}{suffix}"
        if path.is_file():
            return path
    raise ExecutorError(f"--data {data_dir}: no {task}.parquet or {task}.jsonl for task {task!r}")


class DatasetTokens:
    def __init__(self, data_dir: str | Path, vocab_size: int, seed: int) -> None:
        self.data_dir, self.vocab_size, self.seed = Path(data_dir), vocab_size, seed

    @lru_cache(maxsize=64)  # noqa: B019 (one source per run)
    def samples(self, task: str) -> list[np.ndarray]:
        path = dataset_file(self.data_dir, task)
        if path.suffix == ".parquet":
            import pandas as pd

            column = pd.read_parquet(path, columns=["input_ids"])["input_ids"]
            rows = [np.asarray(v, dtype=np.int64) for v in column]
        else:
            rows = [
                np.asarray(json.loads(line)["input_ids"], dtype=np.int64)
                for line in path.open()
                if line.strip()
            ]
        rows = [r for r in rows if r.size]
        if not rows:
            raise ExecutorError(f"{path}: no non-empty input_ids")
        top = max(int(r.max()) for r in rows)
        if top >= self.vocab_size or min(int(r.min()) for r in rows) < 0:
            raise ExecutorError(
                f"{path}: token id {top} is outside the model's vocabulary of {self.vocab_size}"
            )
        return rows

    def ids(self, key: SeqKey, length: int) -> np.ndarray:
        task, step, k = key
        rows = self.samples(task)
        rng = np.random.default_rng([self.seed, zlib.crc32(task.encode()), step, k])
        start, parts, have = int(rng.integers(len(rows))), [], 0
        while have < length:
            row = rows[(start + len(parts)) % len(rows)]
            parts.append(row)
            have += row.size
        return np.concatenate(parts)[:length]


@dataclass
class MicroBatchData:
    """The tensors of one micro-batch, its sequences ordered by task (contiguous segments for MultiLoraLinear).

    Padded: one row per sequence, right-padded to the micro-batch's length; the causal mask alone keeps padding out
    of every real token's attention. Packed: the sequences concatenated in one row, each attending only to itself
    (a block-diagonal causal mask), positions restarting at 0 per sequence, and no target crossing into the next
    sequence; then the tasks' segments run over tokens, not rows."""

    ids: object  # LongTensor [rows, cols]
    labels: object  # LongTensor [rows, cols], IGNORE_INDEX where there is no target
    weights: object  # [rows, cols], 1/N_t at task t's targets, 0 elsewhere
    task_index: object  # LongTensor [rows, cols]: index of each token's task in the workload
    positions: object  # LongTensor [rows, cols]: each token's position in its own sequence
    mask: object | None  # bool [1, 1, cols, cols] (True: may attend) when packed; None: plain causal
    segments: list[tuple[str, int, int]]  # (task, start, stop) over rows, or over tokens when packed
    lengths: list[int]
    packed: bool

    @property
    def num_seqs(self) -> int:
        return len(self.lengths)

    @property
    def real_tokens(self) -> int:
        return sum(self.lengths)

    @property
    def padded_tokens(self) -> int:
        return self.ids.numel()


def block_causal_mask(lengths: list[int]) -> np.ndarray:
    """[T, T] with True where query token i may attend key token j: j <= i within the same sequence."""
    seq = np.repeat(np.arange(len(lengths)), lengths)
    pos = np.arange(seq.size)
    return (seq[:, None] == seq[None, :]) & (pos[None, :] <= pos[:, None])


def build_micro_batch(
    mb: MicroBatchPlan,
    items: list[StepItem],
    keys: list[SeqKey],
    source,
    tasks: list[str],
    targets: dict[str, int],
    device,
    weight_dtype,
) -> MicroBatchData:
    import torch

    order = sorted(range(len(mb.items)), key=lambda j: (tasks.index(items[mb.items[j]].task), mb.items[j]))
    lengths = [mb.lengths[j] for j in order]
    # Where each sequence starts: (row, column) of a [rows, cols] grid.
    if mb.packed:
        rows, cols = 1, sum(lengths)
        starts = [(0, int(c)) for c in np.cumsum([0, *lengths[:-1]])]
    else:
        rows, cols = len(order), mb.seq_len
        starts = [(r, 0) for r in range(rows)]
    ids = np.zeros((rows, cols), dtype=np.int64)
    labels = np.full((rows, cols), IGNORE_INDEX, dtype=np.int64)
    weights = np.zeros((rows, cols), dtype=np.float64)
    task_index = np.zeros((rows, cols), dtype=np.int64)
    positions = np.zeros((rows, cols), dtype=np.int64)
    if not mb.packed:
        positions[:] = np.arange(cols)  # padding keeps counting: its positions are never attended to
    segments: list[tuple[str, int, int]] = []
    for j, n, (r, c) in zip(order, lengths, starts, strict=True):
        i = mb.items[j]
        task = items[i].task
        seq = source.ids(keys[i], n)
        ids[r, c : c + n] = seq
        labels[r, c : c + n - 1] = seq[1:]
        weights[r, c : c + n - 1] = 1.0 / targets[task] if n > 1 else 0.0
        task_index[r, c : c + n] = tasks.index(task)
        positions[r, c : c + n] = np.arange(n)
        start, stop = (c, c + n) if mb.packed else (r, r + 1)
        if segments and segments[-1][0] == task:
            segments[-1] = (task, segments[-1][1], stop)
        else:
            segments.append((task, start, stop))
    mask = None
    if mb.packed and len(lengths) > 1:
        mask = torch.from_numpy(block_causal_mask(lengths))[None, None].to(device)
    return MicroBatchData(
        ids=torch.from_numpy(ids).to(device),
        labels=torch.from_numpy(labels).to(device),
        weights=torch.from_numpy(weights).to(device=device, dtype=weight_dtype),
        task_index=torch.from_numpy(task_index).to(device),
        positions=torch.from_numpy(positions).to(device),
        mask=mask,
        segments=segments,
        lengths=lengths,
        packed=mb.packed,
    )
