"""Replica loads under an assignment, estimated with the cost tables (what greedy dispatchers balance).

On the dispatch hot path: length costs are cached per replica (no config hashing per call), and the 1F1B bubble of
each replica (its largest micro-batch) is cached until that replica's assignment changes.
"""

from __future__ import annotations

from lobra.policies.costs import CostTable, LengthCost


class ReplicaLoads:
    def __init__(self, replicas, table: CostTable) -> None:
        self.replicas, self.table = replicas, table
        self.counts: list[dict[int, int]] = [{} for _ in replicas]
        self._work = [0.0] * len(replicas)
        self._costs: list[dict[int, LengthCost | None]] = [{} for _ in replicas]
        self._largest: list[float | None] = [0.0] * len(replicas)
        self._least: dict[int, float | None] = {}

    def length_cost(self, r: int, s: int) -> LengthCost | None:
        costs = self._costs[r]
        if s not in costs:
            costs[s] = self.table.length_cost(self.replicas[r], s)
        return costs[s]

    def least_marginal_s(self, s: int) -> float | None:
        """The least time one more sequence of length s adds to any replica that holds it; None where some cost of
        s is negative (then adding a sequence might even speed a replica up, and no receiver can be ruled out)."""
        if s not in self._least:
            costs = [lc for c in set(self.replicas) if (lc := self.table.length_cost(c, s)) is not None]
            ok = all(lc.alpha_s >= 0 and lc.beta_s >= 0 for lc in costs)
            self._least[s] = min(lc.alpha_s for lc in costs) if ok else None
        return self._least[s]

    def group_s(self, r: int, s: int, n: int) -> float:
        return self.length_cost(r, s).time_s(n)

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
        self._largest[r] = None

    def _mb_s(self, r: int, s: int, n: int) -> float:
        """The stage time of the largest micro-batch of n sequences of length s."""
        lc = self.length_cost(r, s)
        return lc.beta_s + lc.alpha_s * min(n, lc.per_mb) if n > 0 else 0.0

    def bubble(self, r: int, extra: tuple[int, int] | None = None) -> float:
        """1F1B fill and drain: about (pp - 1) x the largest micro-batch's stage time."""
        pp = self.replicas[r].pp
        if pp == 1:
            return 0.0
        if self._largest[r] is None:
            self._largest[r] = max((self._mb_s(r, s, n) for s, n in self.counts[r].items()), default=0.0)
        largest = self._largest[r]
        if extra:
            s, dn = extra
            n = self.counts[r].get(s, 0)
            if dn > 0:
                largest = max(largest, self._mb_s(r, s, n + dn))
            elif self._mb_s(r, s, n) >= largest:  # shrinking the largest group: look at all of them again
                largest = max(
                    (self._mb_s(r, g, c + (dn if g == s else 0)) for g, c in self.counts[r].items()),
                    default=0.0,
                )
        return (pp - 1) * largest

    def total(self, r: int) -> float:
        return self._work[r] + self.bubble(r)

    def total_if(self, r: int, s: int, dn: int) -> float:
        """The replica's time if dn more sequences of length s were added (dn may be negative)."""
        return self._work[r] + self.delta(r, s, dn) + self.bubble(r, (s, dn))
