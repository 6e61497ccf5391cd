"""The linear relaxation shared by dispatch and planning: split each length's sequences across configs so that all
configs finish together, with amortised per-sequence costs (a full micro-batch's time / its size).

Its makespan is a lower bound on what integer dispatch can reach on the same plan (ceil(n / m) >= n / m), and its
split is the starting point of the `balanced` dispatcher.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from lobra.costmodel import ParallelConfig
from lobra.policies.costs import CostTable
from lobra.policies.highs import solve_lp
from lobra.policies.registry import PolicyError


def split_lp(
    counts: Mapping[int, float],
    replicas: Mapping[ParallelConfig, int],
    table: CostTable,
    bubble_s: Mapping[ParallelConfig, float] | None = None,
) -> tuple[float, dict[ParallelConfig, dict[int, float]]]:
    """(makespan, {config: {length: sequences}}) of the relaxation; sequences may be fractional. `bubble_s`: seconds
    each replica of a config spends on top of its sequences (a pipeline's least fill and drain, for planning)."""
    configs = sorted(replicas)
    lengths = sorted(counts)
    pairs = [
        (g, j, lc)
        for g, s in enumerate(lengths)
        for j, c in enumerate(configs)
        if (lc := table.length_cost(c, s)) is not None
    ]
    held = {g for g, _, _ in pairs}
    for g, s in enumerate(lengths):
        if g not in held:
            raise PolicyError(f"no replica of the plan can hold a sequence padded to {s} tokens")
    n_var = len(pairs) + 1
    objective = np.zeros(n_var)
    objective[-1] = 1.0
    a_ub = np.zeros((len(configs), n_var))
    a_eq = np.zeros((len(lengths), n_var))
    for p, (g, j, lc) in enumerate(pairs):
        a_ub[j, p] = (lc.alpha_s + lc.beta_s / lc.per_mb) / replicas[configs[j]]
        a_eq[g, p] = 1.0
    a_ub[:, -1] = -1.0
    b_ub = -np.array([(bubble_s or {}).get(c, 0.0) for c in configs])
    x = solve_lp(objective, a_ub, b_ub, a_eq, np.array([counts[s] for s in lengths], dtype=float))
    if x is None:  # pragma: no cover - the relaxation is always feasible once every length is held
        raise PolicyError("the dispatch relaxation failed")
    split: dict[ParallelConfig, dict[int, float]] = {c: {} for c in configs}
    for p, (g, j, _) in enumerate(pairs):
        if x[p] > 1e-9:
            split[configs[j]][lengths[g]] = float(x[p])
    return float(x[-1]), split
