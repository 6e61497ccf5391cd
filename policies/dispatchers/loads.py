"""Replica loads under an assignment, estimated with the cost tables (what greedy dispatchers balance)."""

from __future__ import annotations

from policies.costs import CostTable


class ReplicaLoads:
    def __init__(self, replicas, table: CostTable) -> None:
        self.replicas, self.table = replicas, table
        self.counts: list[dict[int, int]] = [{} for _ in replicas]
        self._work = [0.0] * len(replicas)

    def group_s(self, r: int, s: int, n: int) -> float:
        return self.table.length_cost(self.replicas[r], s).time_s(n)

    def delta(self, r: int, s: int, dn: int) -> float:
        n = self.counts[r].get(s, 0)
        return self.group_s(r, s, n + dn) - self.group_s(r, s, n)

    def add(self, r: int, s: int, dn: int) -> None:
        self._work[r] += self.delta(r, s, dn)
        n = self.counts[r].get(s, 0) + dn
        if n:
            self.counts[r][s] = n
        else:
            self.counts[r].pop(s, None)

    def bubble(self, r: int, extra: tuple[int, int] | None = None) -> float:
        """1F1B fill and drain: (pp - 1) x the largest micro-batch's stage time."""
        pp = self.replicas[r].pp
        if pp == 1:
            return 0.0
        largest = 0.0
        groups = dict(self.counts[r])
        if extra:
            groups[extra[0]] = groups.get(extra[0], 0) + extra[1]
        for s, n in groups.items():
            lc = self.table.length_cost(self.replicas[r], s)
            largest = max(largest, lc.beta_s + lc.alpha_s * min(n, lc.per_mb))
        return (pp - 1) * largest

    def total(self, r: int) -> float:
        return self._work[r] + self.bubble(r)

    def total_if(self, r: int, s: int, dn: int) -> float:
        """The replica's time if dn more sequences of length s were added (dn may be negative)."""
        return self._work[r] + self.delta(r, s, dn) + self.bubble(r, (s, dn))

    def makespan(self) -> float:
        return max(self.total(r) for r in range(len(self.replicas)))
