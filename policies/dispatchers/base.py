"""The dispatcher interface: (a step's items, a deployment plan, a cost model) -> DispatchPlan.

Every dispatcher shares the same frame: resolve sequences longer than the largest replica (truncate or drop, as their
task says), pad to buckets, decide how many sequences of each padded length each replica runs (`assign`, the policy
itself), then build micro-batches. Policies differ only in `assign`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from lobra.costmodel import CostModel, DeploymentPlan
from lobra.policies.bucketing import (
    DEFAULT_NUM_BUCKETS,
    ROUND_TO,
    assign_buckets,
    dp_buckets,
    pow2_buckets,
    round_up,
)
from lobra.policies.costs import CostTable
from lobra.policies.microbatch import packed_micro_batches, padded_micro_batches
from lobra.policies.registry import PolicyError, Registry
from lobra.policies.types import DispatchPlan, StepItem

BUCKETINGS = ("dp", "pow2")
PLACEMENT_RATIO = 1.2
OVERFLOWS = ("truncate", "drop")


@dataclass(frozen=True)
class DispatcherConfig:
    bucketing: str = "dp"  # "dp": optimal buckets per step; "pow2": fixed 256..16K ladder (baselines)
    num_buckets: int = DEFAULT_NUM_BUCKETS
    packing: bool = False  # pack real lengths into micro-batches instead of padding
    time_limit_s: float = 10.0  # for integer programs: always bounded

    def __post_init__(self) -> None:
        if self.bucketing not in BUCKETINGS:
            raise PolicyError(f"bucketing must be one of {BUCKETINGS}, got {self.bucketing!r}")
        if not isinstance(self.num_buckets, int) or self.num_buckets < 1:
            raise PolicyError(f"num_buckets must be a positive integer, got {self.num_buckets!r}")
        if self.time_limit_s <= 0:
            raise PolicyError(f"time_limit_s must be positive, got {self.time_limit_s!r}")


# An assignment: per replica, {padded length: number of sequences}.
Assignment = list[dict[int, int]]


class Dispatcher:
    name = "base"

    def __init__(self, config: DispatcherConfig | None = None, **overrides) -> None:
        self.config = DispatcherConfig(**{**(config.__dict__ if config else {}), **overrides})
        self._tables: dict[int, CostTable] = {}

    def table(self, cost: CostModel) -> CostTable:
        # One table per cost model, kept across steps: dispatch is on the hot path of the simulator.
        table = self._tables.get(id(cost))
        if table is None or table.cost is not cost:
            table = self._tables[id(cost)] = CostTable(cost, packing=self.config.packing)
        return table

    def dispatch(
        self,
        items: Sequence[StepItem],
        plan: DeploymentPlan,
        cost: CostModel,
        overflow: Mapping[str, str] | None = None,
    ) -> DispatchPlan:
        table = self.table(cost)
        replicas = plan.replicas
        limits = [table.max_tokens(c) for c in replicas]
        if max(limits) == 0:
            raise PolicyError(f"no replica of plan {plan} can hold {cost.model.name} on {cost.gpu.name}")
        lengths, dropped, truncated = resolve_overflow(items, max(limits), overflow or {})
        keep = [i for i in range(len(items)) if i not in set(dropped)]
        if not keep:
            return DispatchPlan(plan, tuple(() for _ in replicas), tuple(dropped), truncated)
        kept_lengths = np.array([lengths[i] for i in keep])
        padded = self._pad(kept_lengths, max(limits), limits)
        groups: dict[int, list[int]] = {}
        for i, s in sorted(
            zip(keep, padded.tolist(), strict=True), key=lambda p: (-p[1], -lengths[p[0]], p[0])
        ):
            groups.setdefault(int(s), []).append(i)
        counts = {s: len(ids) for s, ids in groups.items()}
        assignment = self.assign(counts, plan, table)
        check_assignment(assignment, counts, replicas, table)
        micro_batches = []
        cursor = dict.fromkeys(groups, 0)
        for r in range(len(replicas)):
            ids, run, pad = [], [], []
            for s, n in sorted(assignment[r].items(), reverse=True):
                chosen = groups[s][cursor[s] : cursor[s] + n]
                cursor[s] += n
                ids += chosen
                run += [lengths[i] for i in chosen]
                pad += [s] * n
            if self.config.packing:
                mbs = packed_micro_batches(ids, run, limits[r])
            else:
                mbs = padded_micro_batches(ids, run, pad, limits[r])
            micro_batches.append(tuple(mbs))
        return DispatchPlan(plan, tuple(micro_batches), tuple(dropped), truncated)

    def _pad(self, lengths: np.ndarray, largest: int, capacities: list[int]) -> np.ndarray:
        if self.config.packing:
            # No padding happens: classes of similar length only group sequences for placement decisions (hundreds
            # of 16-token classes would make every decision slower, not better). A geometric ladder keeps every
            # class within PLACEMENT_RATIO of its members; the replicas' capacities are boundaries too, so no
            # sequence is classed above a replica that can hold it.
            top = int(round_up(lengths.max()))
            ladder = [ROUND_TO]
            while ladder[-1] < top:
                ladder.append(int(round_up(ladder[-1] * PLACEMENT_RATIO)))
            bounds = np.unique(np.minimum([*ladder, *capacities, top], top))
            return np.minimum(assign_buckets(lengths, bounds), largest)
        if self.config.bucketing == "pow2":
            bounds = np.minimum(pow2_buckets(int(lengths.max())), largest)
        else:
            bounds = dp_buckets(lengths, self.config.num_buckets)
        return np.minimum(assign_buckets(lengths, np.unique(np.maximum(bounds, 1))), largest)

    def assign(self, counts: dict[int, int], plan: DeploymentPlan, table: CostTable) -> Assignment:
        raise NotImplementedError


def resolve_overflow(items: Sequence[StepItem], largest: int, overflow: Mapping[str, str]):
    """Lengths as run, items dropped, items truncated: for sequences longer than every replica can hold."""
    lengths, dropped, truncated = [], [], {}
    for i, item in enumerate(items):
        n = item.length
        if n > largest:
            policy = overflow.get(item.task)
            if policy == "truncate":
                truncated[i] = n = largest
            elif policy == "drop":
                dropped.append(i)
            else:
                raise PolicyError(
                    f"a sequence of task {item.task!r} has {item.length} tokens, more than any replica "
                    f"can hold ({largest}); set the task's overflow to truncate or drop"
                )
        lengths.append(n)
    return lengths, dropped, truncated


def check_assignment(assignment: Assignment, counts: dict[int, int], replicas, table: CostTable) -> None:
    totals: dict[int, int] = {}
    for r, share in enumerate(assignment):
        for s, n in share.items():
            if n < 0:
                raise PolicyError(f"negative count {n} for length {s} on replica {r}")
            if n and s > table.max_tokens(replicas[r]):
                raise PolicyError(f"replica {r} {replicas[r]} cannot hold length {s}")
            totals[s] = totals.get(s, 0) + n
    if {s: n for s, n in totals.items() if n} != {s: n for s, n in counts.items() if n}:
        raise PolicyError("the assignment does not cover every sequence exactly once")


def holders(s: int, replicas, table: CostTable) -> list[int]:
    out = [r for r, c in enumerate(replicas) if table.max_tokens(c) >= s]
    if not out:
        raise PolicyError(f"no replica can hold a sequence padded to {s} tokens")
    return out


DISPATCHERS: Registry[Dispatcher] = Registry("dispatcher")
