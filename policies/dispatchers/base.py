"""The dispatcher interface: (a step's items, a deployment plan, a cost model) -> DispatchPlan.

Every dispatcher shares the same frame: resolve sequences longer than the largest replica (truncate or drop, as their
task says), pad to buckets, decide how many sequences of each padded length each replica runs (`assign`, the policy
itself), then build micro-batches. Policies differ only in `assign`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from lobra.costmodel import CostModel, DeploymentPlan
from lobra.policies.bucketing import (
    ROUND_TO,
    assign_buckets,
    dp_buckets,
    pow2_buckets,
    round_up,
)
from lobra.policies.costs import CostTable
from lobra.policies.dispatchers.config import BUCKETINGS, DispatcherConfig  # noqa: F401  (BUCKETINGS: re-export)
from lobra.policies.microbatch import packed_micro_batches, padded_micro_batches
from lobra.policies.registry import PolicyError, Registry
from lobra.policies.types import DispatchPlan, StepItem

PLACEMENT_RATIO = 1.2
OVERFLOWS = ("truncate", "drop")


# An assignment: per replica, {padded length: number of sequences}.
Assignment = list[dict[int, int]]


class Dispatcher:
    name = "base"
    takes_mbs = False  # True: micro-batches of the settings' mbs sequences; False: sized to max_tokens

    def __init__(self, config: DispatcherConfig | None = None, **overrides) -> None:
        self.config = DispatcherConfig(**{**(config.__dict__ if config else {}), **overrides})
        if self.takes_mbs and self.config.mbs is None:
            raise PolicyError(f"dispatcher {self.name!r} needs mbs, the sequences per micro-batch")
        if not self.takes_mbs and self.config.mbs is not None:
            raise PolicyError(
                f"dispatcher {self.name!r} sizes its micro-batches to max_tokens and takes no mbs "
                f"(got mbs={self.config.mbs}; the fixed-mbs dispatcher takes one)"
            )
        self._tables: dict[int, CostTable] = {}
        # integer programmes the wall-clock safety net stopped (balanced-ilp): their dispatch depends on the load
        self.clock_stopped = 0

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
    ) -> DispatchPlan:
        table = self.table(cost)
        replicas = plan.replicas
        limits = [table.max_tokens(c) for c in replicas]
        if max(limits) == 0:
            raise PolicyError(f"no replica of plan {plan} can hold {cost.model.name} on {cost.gpu.name}")
        lengths, dropped, truncated = resolve_overflow(items, plan, max(limits), self.config.beyond_capacity)
        ids = np.delete(np.arange(len(items)), dropped)
        if not len(ids):
            return DispatchPlan(plan, tuple(() for _ in replicas), tuple(dropped), truncated)
        kept_lengths = np.delete(np.array(lengths), dropped)
        padded = self._pad(kept_lengths, max(limits), limits)
        # Per padded length, longest first, its items longest first (ties by index): which items each replica
        # gets of its share.
        order = np.lexsort((ids, -kept_lengths, -padded))
        groups: dict[int, list[int]] = {}
        for i, s in zip(ids[order].tolist(), padded[order].tolist(), strict=True):
            groups.setdefault(s, []).append(i)
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
                built = packed_micro_batches(ids, run, limits[r])
            else:
                built = padded_micro_batches(ids, run, pad, limits[r])
            micro_batches.append(tuple(built))
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


def resolve_overflow(items: Sequence[StepItem], plan: DeploymentPlan, largest: int, policy: str):
    """Lengths as run, items dropped, items truncated: for sequences longer than every replica can hold."""
    lengths, dropped, truncated = [], [], {}
    for i, item in enumerate(items):
        n = item.length
        if n > largest:
            if policy == "truncate":
                truncated[i] = n = largest
            elif policy == "drop":
                dropped.append(i)
            else:
                raise _beyond_plan(item.task, item.length, plan, largest)
        lengths.append(n)
    return lengths, dropped, truncated


def beyond_capacity_error(
    task: str, length: int, where: str, largest: int, remedy: str = "", note: str = ""
) -> PolicyError:
    return PolicyError(
        f"task {task!r} has sequences of {length:,} tokens, but {where} holds {largest:,}{note}; {remedy}lower"
        " the task's max_len, or pass --beyond-capacity truncate|drop (the cut is counted)"
    )


def check_capacity(longest: Mapping[str, int], plan: DeploymentPlan, table, policy: str) -> None:
    """Before anything runs: every replica of the plan can hold the model, and with policy "error" every task's
    longest sequence fits one of them."""
    cost = getattr(table, "cost", table)  # a CostTable or the CostModel itself
    for config in plan.replicas:
        if not table.max_tokens(config):
            cost.check_config(config)  # a head count or node size that rules the config out says so
            raise PolicyError(
                f"replica {config} of plan {plan} cannot hold {cost.model.name}: its weights and LoRA state leave"
                f" no room for a micro-batch in {cost.gpu.memory_gib:g} GiB of {cost.gpu.name} memory"
            )
    largest = max(table.max_tokens(c) for c in plan.replicas)
    for task, n in longest.items():
        if n > largest and policy == "error":
            raise _beyond_plan(task, n, plan, largest)


def _beyond_plan(task: str, length: int, plan: DeploymentPlan, largest: int) -> PolicyError:
    where = f"the largest replica of plan {plan}"
    return beyond_capacity_error(task, length, where, largest, "use a plan with larger replicas, ")


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
