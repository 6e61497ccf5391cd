"""balanced's local search (policies/dispatchers/balanced.py `improve`) against a plain scan of every move.

The search tries receivers least loaded first and stops at the bar; the plain scan below tries every receiver in
index order and keeps the first strictly better move. Both must make the same moves, so the same dispatch."""

import numpy as np
import pytest
from lobra.costmodel import CostModel, MemoryOptions, parse_plan
from lobra.policies.costs import CostTable
from lobra.policies.dispatchers.balanced import improve
from lobra.policies.dispatchers.loads import ReplicaLoads

PLANS = ["<1,1>x6 <2,1>x1 <8,1>x1", "<1,1>x3 <2,1>x2 <4,1>x2", "<2,1>x4 <1,1>x8", "<4,1>x2 <2,1,ckpt>x3"]


def plain_scan(loads: ReplicaLoads, max_moves: int = 2000) -> None:
    n_rep = len(loads.replicas)
    for _ in range(max_moves):
        totals = [loads.total(r) for r in range(n_rep)]
        src = max(range(n_rep), key=totals.__getitem__)
        limit, best = totals[src] - 1e-12, None
        for s, n in loads.counts[src].items():
            per_mb = loads.length_cost(src, s).per_mb
            sizes = {1, n, min(n, per_mb), n % per_mb or min(n, per_mb)}
            for dst in range(n_rep):
                dst_cost = loads.length_cost(dst, s)
                if dst == src or dst_cost is None:
                    continue
                fill = -loads.counts[dst].get(s, 0) % dst_cost.per_mb
                for k in sizes | ({fill} if 0 < fill <= n else set()):
                    after = max(loads.total_if(src, s, -k), loads.total_if(dst, s, k))
                    if after < limit:
                        limit, best = after, (s, dst, k)
        if best is None:
            return
        s, dst, k = best
        loads.add(src, s, -k)
        loads.add(dst, s, k)


def random_loads(table: CostTable, plan, rng) -> ReplicaLoads:
    """A random start: each sequence on a random replica that holds it, a few replicas left idle."""
    loads = ReplicaLoads(plan.replicas, table)
    lengths = [
        s for s in (256, 512, 1024, 2048, 4096, 8192) if s <= max(table.max_tokens(c) for c in plan.replicas)
    ]
    idle = set(rng.choice(len(plan.replicas), size=rng.integers(0, 3), replace=False).tolist())
    for _ in range(int(rng.integers(20, 200))):
        s = int(rng.choice(lengths))
        holders = [r for r, c in enumerate(plan.replicas) if table.max_tokens(c) >= s and r not in idle]
        holders = holders or [r for r, c in enumerate(plan.replicas) if table.max_tokens(c) >= s]
        loads.add(int(rng.choice(holders)), s, int(rng.integers(1, 9)))
    return loads


@pytest.mark.parametrize("packing", [False, True])
def test_the_ranked_search_makes_the_plain_scans_moves(packing):
    cost = CostModel.build("llama2-7b", "a100-40gb", memory=MemoryOptions(num_tasks=6))
    table = CostTable(cost, packing=packing)
    moved = 0
    for trial in range(40):
        plan = parse_plan(PLANS[trial % len(PLANS)])
        fast = random_loads(table, plan, np.random.default_rng(trial))
        plain = random_loads(table, plan, np.random.default_rng(trial))
        before = max(fast.total(r) for r in range(len(plan.replicas)))
        start = [dict(c) for c in fast.counts]
        improve(fast)
        plain_scan(plain)
        assert fast.counts == plain.counts
        assert max(fast.total(r) for r in range(len(plan.replicas))) <= before
        moved += fast.counts != start
    assert moved >= 30  # the starts are unbalanced: the search has work to do
