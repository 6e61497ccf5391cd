"""The integer lower bound is the least of every deployable plan's relaxation (found without enumerating them), and
the exhaustive optimum is the best plan under the dispatcher it is asked about."""

import numpy as np
import pytest
from lobra.costmodel import CostModel
from lobra.policies.costs import CostTable, min_bubble_s
from lobra.policies.lp import split_lp
from lobra.policies.planners import get_planner
from lobra.policies.planners.base import (
    WorkloadSample,
    _feasible,
    evaluate_plan,
    lower_bound_gpu_seconds,
    workload_memory,
)
from lobra.policies.planners.certify import GRANULE, exhaustive_optimum, integer_lower_bound
from lobra.policies.planners.lobra import step_overhead_s
from lobra.policies.planners.search import enumerate_plans
from lobra.policies.registry import PolicyError
from lobra.traces import load_scenario


@pytest.fixture(scope="module")
def paper7b():
    sc = load_scenario("paper-7b")
    base = CostModel.build(sc.model, sc.gpu)
    cost = base.with_memory(workload_memory(sc.workload, base.memory))
    return sc, cost, WorkloadSample.draw(sc.workload, 4, seed=0)


def _least_relaxation(sample, cost, num_gpus):
    """Every plan enumerated, each its relaxation (the bound's definition), the least (and its step overhead)."""
    table = CostTable(cost, packing=True)
    configs = _feasible(cost, num_gpus)
    lengths = np.maximum(sample.lengths() // GRANULE * GRANULE, GRANULE)
    values, counts = np.unique(lengths, return_counts=True)
    per_step = {int(s): n / len(sample.steps) for s, n in zip(values, counts, strict=True)}
    best = np.inf
    for plan in enumerate_plans(configs, num_gpus):
        if all(any(table.length_cost(c, s) for c, _ in plan.entries) for s in per_step):
            bubbles = {c: min_bubble_s(c, list(per_step), table) for c, _ in plan.entries}
            makespan = split_lp(per_step, dict(plan.entries), table, bubbles)[0]
            best = min(best, makespan + step_overhead_s(plan, cost))
    return best * num_gpus


def test_the_integer_bound_is_the_least_relaxation_over_every_plan(paper7b):
    sc, cost, sample = paper7b
    bound = integer_lower_bound(sample, cost, sc.num_gpus)
    least = _least_relaxation(sample, cost, sc.num_gpus)
    assert bound.proven
    # a bound (<=), and a tight one: the bisection's tolerance and the least overhead of any config are all it gives up
    assert 0.99 * least <= bound.gpu_seconds <= least
    assert bound.gpu_seconds > 1.05 * lower_bound_gpu_seconds(sample, cost, sc.num_gpus)  # tighter than fluid


def test_the_exhaustive_optimum_is_at_most_every_planners_plan(paper7b):
    sc, cost, sample = paper7b
    plus = get_planner("lobra-plus", workers=1)
    plan, step = exhaustive_optimum(sample, cost, sc.num_gpus, plus.dispatcher, plus.dispatcher_config)
    assert step == pytest.approx(evaluate_plan(plan, sample, cost, plus.dispatcher, plus.dispatcher_config))
    for name in ("task-fused", "lobra-plus"):
        chosen = get_planner(name, workers=1, sample_steps=2).plan(sc.workload, cost, sc.num_gpus).plan
        assert step <= evaluate_plan(chosen, sample, cost, plus.dispatcher, plus.dispatcher_config) + 1e-9
    assert step * sc.num_gpus >= integer_lower_bound(sample, cost, sc.num_gpus).gpu_seconds


def test_the_exhaustive_optimum_refuses_a_large_cluster(paper7b):
    _, cost, sample = paper7b
    with pytest.raises(PolicyError, match="at most 16 GPUs"):
        exhaustive_optimum(sample, cost, 32, "balanced", get_planner("lobra-plus").dispatcher_config)
