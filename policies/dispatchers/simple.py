"""The paper's baseline dispatchers: uniform (Task-Fused) and length-based (GROUP)."""

from __future__ import annotations

from lobra.costmodel import DeploymentPlan
from lobra.policies.costs import CostTable
from lobra.policies.dispatchers.base import DISPATCHERS, Assignment, Dispatcher, holders
from lobra.policies.dispatchers.loads import ReplicaLoads


@DISPATCHERS.register("uniform")
class UniformDispatcher(Dispatcher):
    """Task-Fused: deal the step's sequences, longest first, round-robin over the replicas that hold them, so every
    replica gets an equal share whatever its speed."""

    def assign(self, counts: dict[int, int], plan: DeploymentPlan, table: CostTable) -> Assignment:
        replicas = plan.replicas
        out: Assignment = [{} for _ in replicas]
        turn = 0
        for s in sorted(counts, reverse=True):
            can = holders(s, replicas, table)
            for _ in range(counts[s]):
                r = can[turn % len(can)]
                turn += 1
                out[r][s] = out[r].get(s, 0) + 1
        return out


@DISPATCHERS.register("length")
class LengthDispatcher(Dispatcher):
    """The paper's GROUP: each length goes to the config that processes it with the fewest GPU-seconds among those
    that can hold it; within that config, to the least-loaded replica, a micro-batch at a time."""

    def assign(self, counts: dict[int, int], plan: DeploymentPlan, table: CostTable) -> Assignment:
        replicas = plan.replicas
        loads = ReplicaLoads(replicas, table)
        for s in sorted(counts, reverse=True):
            can = holders(s, replicas, table)
            best = min({replicas[r] for r in can}, key=lambda c: (table.gpu_seconds_per_seq(c, s), c))
            targets = [r for r in can if replicas[r] == best]
            fill_least_loaded(loads, targets, s, counts[s])
        return loads.counts


def fill_least_loaded(loads: ReplicaLoads, targets: list[int], s: int, count: int) -> None:
    """Give `count` sequences of length s to `targets`, a full micro-batch at a time, each to the replica that would
    finish it earliest."""
    left = count
    while left:
        chunks = {r: min(left, loads.length_cost(r, s).per_mb) for r in targets}
        r = min(targets, key=lambda r: loads.total_if(r, s, chunks[r]))
        loads.add(r, s, chunks[r])
        left -= chunks[r]
