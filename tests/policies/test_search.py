"""The plan search space: the fluid optimum with and without pipeline bubbles, and the config proposal."""

import pytest
from lobra.costmodel import CostModel, LayerTimeFit, OuterTimeFit, ParallelConfig
from lobra.policies.costs import CostTable, min_bubble_s
from lobra.policies.lp import split_lp
from lobra.policies.planners.search import fluid_counts, propose_configs

# t(b, s) = 0.001 b s ms per layer at every tp: a <1,2> replica is exactly as GPU-efficient as a <1,1> one, so
# without its bubble the two tie per sequence.
FIT = LayerTimeFit({1: (0, 0, 1e-3, 0, 0, 0)})
ONE, TWO = ParallelConfig(1, 1), ParallelConfig(1, 2)


@pytest.fixture(scope="module")
def table():
    cost = CostModel.build("tiny", "cpu", fit=FIT, outer=OuterTimeFit.of_included())
    return CostTable(cost, packing=True)


def test_a_bubble_is_pp_minus_one_full_micro_batches(table):
    assert min_bubble_s(ONE, [64, 128], table) == 0.0
    full = min(table.length_cost(TWO, s).full_mb_s for s in (64, 128))
    assert min_bubble_s(TWO, [64, 128], table) == pytest.approx(full) and full > 0


def test_the_fluid_optimum_moves_work_off_a_pipeline_by_its_bubble():
    """<1,1> made 1.5x slower: per sequence the pipeline is cheaper, so without bubbles all work goes to it; a
    bubble of a few micro-batches per step moves work back to <1,1>, and the GPUs stay filled."""
    from lobra.costmodel import Overheads

    cost = CostModel.build("tiny", "cpu", fit=FIT, outer=OuterTimeFit.of_included())
    table = CostTable(cost.with_overheads(Overheads(compute_factor={ONE: 1.5})), packing=True)
    counts = {64: 40.0, 128: 20.0}
    plain = fluid_counts(counts, [ONE, TWO], table, 4)
    assert plain[ONE] == 0.0 and plain[TWO] == pytest.approx(2.0)
    bubbles = {ONE: 0.0, TWO: 20 * min_bubble_s(TWO, list(counts), table)}
    weighed = fluid_counts(counts, [ONE, TWO], table, 4, bubbles)
    assert weighed[ONE] > 0.1 and weighed[TWO] < plain[TWO]
    assert weighed[ONE] + 2 * weighed[TWO] == pytest.approx(4.0, rel=1e-6)


def test_the_lp_bound_adds_each_configs_bubble(table):
    counts = {64: 40.0}
    free, _ = split_lp(counts, {TWO: 1}, table)
    paid, _ = split_lp(counts, {TWO: 1}, table, {TWO: 0.25})
    assert paid == pytest.approx(free + 0.25)


def test_the_proposal_keeps_each_pipeline_depth_apart(table):
    configs = [ONE, TWO, ParallelConfig(2, 1)]
    kept = propose_configs(configs, [64, 128], table)
    assert TWO in kept and ONE in kept  # both 1-GPU-per-stage depths survive; the tp=2 one may tie with <1,2>
