from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lobra.costmodel import parse_plan
from lobra.policies.dispatchers import get_dispatcher
from lobra.policies.evaluate import estimate_step
from lobra.policies.registry import PolicyError
from lobra.policies.types import StepItem

NAMES = ["uniform", "length", "balanced", "balanced-ilp"]
PAPER_PLAN = parse_plan("<1,1>x6 <2,1>x1 <8,1>x1")


def step(seed: int, n: int = 300, long: tuple[int, ...] = (15000, 9000, 5000)) -> list[StepItem]:
    rng = np.random.default_rng(seed)
    lengths = np.minimum(rng.lognormal(5.8, 1.0, n).astype(int) + 16, 16384)
    lengths[: len(long)] = long
    return [StepItem(f"t{i % 3}", int(x)) for i, x in enumerate(lengths)]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("packing", [False, True])
def test_every_dispatcher_keeps_the_invariants(cost7b, name, packing):
    items = step(0)
    plan = get_dispatcher(name, packing=packing, time_limit_s=2).dispatch(items, PAPER_PLAN, cost7b)
    plan.check(items, cost7b)  # every item exactly once, no micro-batch over max_tokens
    assert not plan.dropped and not plan.truncated
    for mbs in plan.micro_batches:
        assert all(mb.packed == packing for mb in mbs)
        if not packing:  # longest micro-batches first
            assert [mb.seq_len for mb in mbs] == sorted((mb.seq_len for mb in mbs), reverse=True)


def test_uniform_gives_identical_replicas_equal_shares(cost7b):
    items = step(1, n=203, long=())
    plan = get_dispatcher("uniform", bucketing="pow2").dispatch(items, parse_plan("<8,1>x2"), cost7b)
    sizes = [len(plan.replica_items(r)) for r in range(2)]
    assert sorted(sizes) == [101, 102]
    assert {mb.seq_len for mbs in plan.micro_batches for mb in mbs} <= {
        256,
        512,
        1024,
        2048,
        4096,
        8192,
        16384,
    }


def test_length_sends_each_length_to_its_cheapest_config(cost7b):
    items = step(2)
    plan = get_dispatcher("length").dispatch(items, PAPER_PLAN, cost7b)
    table = get_dispatcher("length").table(cost7b)
    for config, mbs in zip(plan.plan.replicas, plan.micro_batches, strict=True):
        for mb in mbs:
            holders = {c for c in PAPER_PLAN.replicas if cost7b.max_tokens(c) >= mb.seq_len}
            best = min(holders, key=lambda c: (table.gpu_seconds_per_seq(c, mb.seq_len), c))
            assert config == best


@pytest.mark.slow
def test_balanced_is_close_to_the_integer_programme(cost7b):
    gaps = []
    for seed in range(4):
        items = step(seed, n=500)
        heuristic = estimate_step(get_dispatcher("balanced").dispatch(items, PAPER_PLAN, cost7b), cost7b)
        exact = estimate_step(
            get_dispatcher("balanced-ilp", time_limit_s=3).dispatch(items, PAPER_PLAN, cost7b), cost7b
        )
        gaps.append(heuristic.makespan_s / exact.makespan_s - 1)
    assert np.mean(gaps) < 0.02 and max(gaps) < 0.04
    # and both beat the paper's baselines on the heterogeneous plan
    uniform = estimate_step(get_dispatcher("uniform").dispatch(items, PAPER_PLAN, cost7b), cost7b)
    assert exact.makespan_s < uniform.makespan_s


def test_beyond_capacity_truncate_drop_or_error(cost7b):
    items = [StepItem("a", 20000), StepItem("b", 30000), StepItem("c", 100)]
    plan = parse_plan("<8,1>x1 <1,1>x2")
    out = get_dispatcher("balanced", beyond_capacity="truncate").dispatch(items, plan, cost7b)
    out.check(items, cost7b)
    assert out.dropped == () and out.truncated == {0: 16384, 1: 16384}
    out = get_dispatcher("balanced", beyond_capacity="drop").dispatch(items, plan, cost7b)
    out.check(items, cost7b)
    assert out.dropped == (0, 1) and out.truncated == {}
    # the default: an error that names the task, the length and what the plan holds
    with pytest.raises(
        PolicyError,
        match=r"task 'a' has sequences of 20,000 tokens, but the largest replica of"
        r" plan <1,1>x2 <8,1>x1 holds 16,384",
    ):
        get_dispatcher("balanced").dispatch(items, plan, cost7b)
    # a plan of small replicas only: a 5000-token sequence has nowhere to go
    with pytest.raises(PolicyError, match="task 'x' has sequences of 5,000 tokens"):
        get_dispatcher("uniform").dispatch([StepItem("x", 5000)], parse_plan("<1,1>x4"), cost7b)


def test_dispatch_is_deterministic(cost7b):
    items = step(3)
    a = get_dispatcher("balanced").dispatch(items, PAPER_PLAN, cost7b)
    b = get_dispatcher("balanced").dispatch(items, PAPER_PLAN, cost7b)
    assert a == b


PLANS = ["<1,1>x4", "<1,1>x2 <2,1>x1", "<2,2>x1 <1,1>x1", "<1,4>x1 <4,1>x1 <1,1>x2", "<8,1>x1 <1,1>x1"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lengths=st.lists(st.integers(1, 20000), min_size=1, max_size=120),
    plan=st.sampled_from(PLANS),
    name=st.sampled_from(["uniform", "length", "balanced"]),
    packing=st.booleans(),
    buckets=st.integers(1, 16),
    beyond=st.sampled_from(["truncate", "drop"]),
)
def test_invariants_hold_for_random_steps(cost7b, lengths, plan, name, packing, buckets, beyond):
    items = [StepItem(f"t{i % 4}", n) for i, n in enumerate(lengths)]
    deployment = parse_plan(plan)
    dispatcher = get_dispatcher(name, packing=packing, num_buckets=buckets, beyond_capacity=beyond)
    out = dispatcher.dispatch(items, deployment, cost7b)
    out.check(items, cost7b)
    largest = max(cost7b.max_tokens(c) for c in deployment.replicas)
    cut = {i for i, it in enumerate(items) if it.length > largest}
    assert set(out.dropped) == (cut if beyond == "drop" else set())
    assert set(out.truncated) == (cut if beyond == "truncate" else set())
    if not packing:
        per_replica = [Counter(mb.seq_len for mb in mbs) for mbs in out.micro_batches]
        assert len({s for c in per_replica for s in c}) <= buckets


def test_bad_dispatcher_config():
    with pytest.raises(PolicyError, match="bucketing"):
        get_dispatcher("balanced", bucketing="log")
    with pytest.raises(PolicyError, match="unknown dispatcher"):
        get_dispatcher("fastest")


def test_an_unproven_integer_programme_is_never_worse_than_the_heuristic():
    """Stopped at one node, balanced-ilp keeps the heuristic's answer where that is better on the same model."""
    from lobra.costmodel import CostModel, MemoryOptions, parse_plan
    from lobra.policies.costs import CostTable
    from lobra.policies.dispatchers import DispatcherConfig, get_dispatcher
    from lobra.policies.dispatchers.balanced import makespan_s

    cost = CostModel.build("llama2-7b", "a100-40gb", memory=MemoryOptions(num_tasks=2))
    plan = parse_plan("<1,1>x6 <2,1>x2 <4,1>x1")
    table = CostTable(cost)
    counts = {256: 40, 512: 17, 1024: 9, 2048: 5, 4096: 3, 8192: 1}
    stopped = get_dispatcher("balanced-ilp", DispatcherConfig(node_limit=1)).assign(counts, plan, table)
    heuristic = get_dispatcher("balanced").assign(counts, plan, table)
    assert makespan_s(stopped, plan.replicas, table) <= makespan_s(heuristic, plan.replicas, table) + 1e-12
    assert {s: sum(r.get(s, 0) for r in stopped) for s in counts} == counts


@pytest.mark.slow
def test_the_integer_programme_gives_the_same_dispatch_under_heavy_load(cost7b):
    """Its node limit decides, not the clock: the same steps dispatch identically with every core kept busy by
    other processes (the wall-clock safety net, far away, is never what stops it)."""
    import multiprocessing as mp
    import os

    dispatcher = get_dispatcher("balanced-ilp", node_limit=200)
    steps = [step(seed, n=400) for seed in range(3)]
    idle = [dispatcher.dispatch(items, PAPER_PLAN, cost7b) for items in steps]
    hogs = [
        mp.get_context("spawn").Process(target=_spin, daemon=True) for _ in range(2 * (os.cpu_count() or 1))
    ]
    for h in hogs:
        h.start()
    try:
        busy = [dispatcher.dispatch(items, PAPER_PLAN, cost7b) for items in steps]
    finally:
        for h in hogs:
            h.terminate()
    assert busy == idle
    assert dispatcher.clock_stopped == 0


def _spin() -> None:
    while True:
        pass


def test_a_programme_stopped_by_the_clock_is_counted(cost7b):
    dispatcher = get_dispatcher("balanced-ilp", time_limit_s=1e-3, node_limit=10**9)
    out = dispatcher.dispatch(step(0, n=400), PAPER_PLAN, cost7b)
    out.check(step(0, n=400), cost7b)  # still a valid dispatch (the heuristic's, or a better incumbent)
    assert dispatcher.clock_stopped == 1
    dispatcher.dispatch(step(1, n=400), PAPER_PLAN, cost7b)
    assert dispatcher.clock_stopped == 2
