"""Micro-batches and the time one replica takes for a step's share of them.

No PP: the micro-batches run one after another, so the stage times add up. 1F1B over pp stages: the exact schedule
of costmodel/pipeline.py (for equal micro-batches: the sum plus (pp - 1) micro-batches of fill and drain, the
bubble). Activations cross each stage boundary forward and their gradients backward. After the micro-batches the
replicas all-reduce their LoRA gradients and step the optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass

from lobra.costmodel.errors import CostModelError


@dataclass(frozen=True)
class MicroBatch:
    """Sequences run together: padded to `seq_len` each, or packed (variable-length attention) when `packed`."""

    lengths: tuple[int, ...]
    seq_len: int
    packed: bool = False

    def __post_init__(self) -> None:
        if not self.lengths:
            raise CostModelError("a micro-batch needs at least one sequence")
        # set(map(type, ...)) and min/max run in C: one of these is built per micro-batch the simulator runs
        if not set(map(type, self.lengths)) <= {int} or min(self.lengths) < 1:
            raise CostModelError(f"micro-batch lengths must be positive integers, got {self.lengths!r}")
        if max(self.lengths) > self.seq_len:
            raise CostModelError(
                f"micro-batch holds a sequence of {max(self.lengths)} tokens, longer than its "
                f"padded length {self.seq_len}"
            )

    @classmethod
    def padded(cls, num_seqs: int, seq_len: int) -> MicroBatch:
        return cls((seq_len,) * num_seqs, seq_len)

    @classmethod
    def of_lengths(cls, lengths, packed: bool = False, pad_to: int | None = None) -> MicroBatch:
        lengths = tuple(int(n) for n in lengths)
        return cls(lengths, pad_to or max(lengths), packed)

    @property
    def num_seqs(self) -> int:
        return len(self.lengths)

    @property
    def tokens(self) -> int:
        """Tokens the hardware processes: the real ones when packed, padded ones otherwise."""
        return sum(self.lengths) if self.packed else self.num_seqs * self.seq_len

    @property
    def real_tokens(self) -> int:
        return sum(self.lengths)


@dataclass(frozen=True)
class ReplicaTime:
    """Seconds one replica spends on one step, by cause."""

    compute_s: (
        float  # forward+backward of every micro-batch through the slowest stage's decoder layers, summed
    )
    embedding_s: float  # the embedding's share of that, when the slowest stage is the first
    head_s: float  # the final norm, LM head and loss's share of it, when the slowest stage is the last
    pp_bubble_s: float  # 1F1B fill and drain (the schedule's idle time without transfers)
    pp_comm_s: float  # what stage-boundary transfers add to the schedule
    dp_sync_s: float  # all-reduce of LoRA gradients across replicas
    optimizer_s: float  # Adam over this GPU's share of the LoRA parameters

    @property
    def busy_s(self) -> float:
        """Time until the replica's last micro-batch is done (before the cross-replica sync)."""
        return self.compute_s + self.embedding_s + self.head_s + self.pp_bubble_s + self.pp_comm_s

    @property
    def total_s(self) -> float:
        return self.busy_s + self.dp_sync_s + self.optimizer_s


def ring_allreduce_s(
    num_bytes: float, participants: int, link_gbps: float, latency_s: float = 10e-6
) -> float:
    """Ring all-reduce: 2 (n-1)/n of the bytes cross the slowest link, in 2 (n-1) latency-bound steps."""
    if participants <= 1 or num_bytes <= 0:
        return 0.0
    n = participants
    return 2 * (n - 1) / n * num_bytes / (link_gbps * 1e9) + 2 * (n - 1) * latency_s
