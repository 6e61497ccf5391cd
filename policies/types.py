"""What policies exchange: a step's sequences, micro-batches, and the dispatch plan of a step.

Sequences are referred to by their index in the step's item list, so that the simulator and the executor can map a
plan back to their own records (token ids, task adapters) without copying them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lobra.costmodel import CostModel, DeploymentPlan, MicroBatch
from lobra.policies.registry import PolicyError


@dataclass(frozen=True)
class StepItem:
    """One sequence of one step: the task (adapter) it trains and its length in tokens."""

    task: str
    length: int

    def __post_init__(self) -> None:
        if not isinstance(self.length, int) or self.length < 1:
            raise PolicyError(
                f"sequence of task {self.task!r} has length {self.length!r}; must be a positive integer"
            )


@dataclass(frozen=True, slots=True)
class MicroBatchPlan:
    """Sequences run together on one replica: `items` index the step's items, `lengths` are their lengths as run
    (after truncation), padded to `seq_len` unless `packed`."""

    items: tuple[int, ...]
    lengths: tuple[int, ...]
    seq_len: int
    packed: bool = False

    @property
    def tokens(self) -> int:
        return sum(self.lengths) if self.packed else len(self.items) * self.seq_len

    @property
    def real_tokens(self) -> int:
        return sum(self.lengths)

    def to_costmodel(self) -> MicroBatch:
        return MicroBatch(self.lengths, self.seq_len, self.packed)


@dataclass(frozen=True)
class DispatchPlan:
    """One step's assignment: per replica (indexed like plan.replicas) an ordered list of micro-batches."""

    plan: DeploymentPlan
    micro_batches: tuple[tuple[MicroBatchPlan, ...], ...]
    # Items left out because no replica can hold them and their task asked to drop them.
    dropped: tuple[int, ...] = ()
    # Items shortened to fit the largest replica because their task asked to truncate: index -> length run.
    truncated: Mapping[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.micro_batches) != self.plan.num_replicas:
            raise PolicyError(
                f"dispatch plan has {len(self.micro_batches)} replicas, plan {self.plan} has "
                f"{self.plan.num_replicas}"
            )

    def replica_items(self, replica: int) -> list[int]:
        return [i for mb in self.micro_batches[replica] for i in mb.items]

    def check(self, items: Sequence[StepItem], cost: CostModel) -> None:
        """Raise unless every item is run exactly once or dropped, and no micro-batch exceeds its replica."""
        seen = [i for mbs in self.micro_batches for mb in mbs for i in mb.items] + list(self.dropped)
        if sorted(seen) != list(range(len(items))):
            raise PolicyError("dispatch plan does not run every sequence exactly once")
        for config, mbs in zip(self.plan.replicas, self.micro_batches, strict=True):
            limit = cost.max_tokens(config)
            for mb in mbs:
                if mb.tokens > limit:
                    raise PolicyError(
                        f"micro-batch of {mb.tokens} tokens exceeds {config}'s max_tokens {limit}"
                    )
                for i, n in zip(mb.items, mb.lengths, strict=True):
                    if n != self.truncated.get(i, items[i].length) or n > mb.seq_len:
                        raise PolicyError(f"item {i} runs with length {n}, expected {items[i].length}")
