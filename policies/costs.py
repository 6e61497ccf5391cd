"""Per-replica cost tables the dispatchers and planners reason with.

For padded length s on config j (max_tokens L), a micro-batch holds up to m = L // s sequences, and its time on the
replica's critical path (one stage's compute plus the stage-boundary transfer) is close to linear in its size n:
f(n) ~ beta + alpha n. alpha and beta come from the cost model itself (the secant between n = 1 and n = m; exact for
the fitted profile form, which is linear in b). The time of c sequences of length s on one replica is then
c alpha + ceil(c / m) beta: exact for the padded micro-batch builder, which fills micro-batches by length.

With packing, micro-batches mix lengths up to max_tokens tokens, so a sequence of length s pays its own marginal
time plus an s / max_tokens share of a micro-batch's fixed cost: linear, m = 1 and beta folded into alpha.
"""

from __future__ import annotations

from dataclasses import dataclass

from lobra.costmodel import CostModel, MicroBatch, ParallelConfig


@dataclass(frozen=True)
class LengthCost:
    per_mb: int  # sequences per full micro-batch
    alpha_s: float  # marginal seconds per sequence
    beta_s: float  # fixed seconds per micro-batch
    full_mb_s: float  # a full micro-batch's stage time (for the 1F1B bubble)

    def time_s(self, count: int) -> float:
        if count <= 0:
            return 0.0
        return count * self.alpha_s + -(-count // self.per_mb) * self.beta_s


class CostTable:
    """Cached LengthCost per (config, padded length) for one cost model."""

    def __init__(self, cost: CostModel, packing: bool = False) -> None:
        self.cost = cost
        self.packing = packing
        self._cache: dict[tuple[ParallelConfig, int], LengthCost | None] = {}

    def max_tokens(self, config: ParallelConfig) -> int:
        return self.cost.max_tokens(config)

    def length_cost(self, config: ParallelConfig, seq_len: int) -> LengthCost | None:
        """None when the config cannot hold a sequence of this length."""
        key = (config, int(seq_len))
        if key not in self._cache:
            limit = self.cost.max_tokens(config)
            if seq_len > limit:
                self._cache[key] = None
            elif self.packing:
                one = self._mb_s(config, 1, seq_len, packed=True)
                marginal = self._mb_s(config, 2, seq_len, packed=True) - one
                fixed_share = (one - marginal) * seq_len / limit
                full = self._mb_s(config, limit // seq_len, seq_len, packed=True)
                self._cache[key] = LengthCost(1, marginal + fixed_share, 0.0, full)
            else:
                m = limit // seq_len
                one = self._mb_s(config, 1, seq_len)
                full = self._mb_s(config, m, seq_len)
                alpha = (full - one) / (m - 1) if m > 1 else one
                self._cache[key] = LengthCost(m, alpha, one - alpha if m > 1 else 0.0, full)
        return self._cache[key]

    def _mb_s(self, config: ParallelConfig, n: int, s: int, packed: bool = False) -> float:
        return self.cost.micro_batch_s(config, MicroBatch((s,) * n, s, packed))

    def gpu_seconds_per_seq(self, config: ParallelConfig, seq_len: int) -> float:
        """GPU-seconds one sequence costs at full micro-batches: the length-based dispatcher's criterion."""
        lc = self.length_cost(config, seq_len)
        return float("inf") if lc is None else (lc.alpha_s + lc.beta_s / lc.per_mb) * config.num_gpus


def min_bubble_s(config: ParallelConfig, lengths, table: CostTable) -> float:
    """The least 1F1B fill and drain a pipelined replica of `config` pays per step when it runs sequences of these
    lengths: (pp - 1) full micro-batches' stage time at the cheapest length it holds (0 without a pipeline)."""
    if config.pp == 1:
        return 0.0
    fulls = [lc.full_mb_s for s in lengths if (lc := table.length_cost(config, s)) is not None]
    return (config.pp - 1) * min(fulls) if fulls else 0.0
