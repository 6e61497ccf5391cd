import pytest
from lobra.costmodel import CostModelError, DeploymentPlan, ParallelConfig, parse_plan


def test_config_counts_gpus_and_prints():
    assert ParallelConfig(2, 4).num_gpus == 8
    assert str(ParallelConfig(8, 1)) == "<8,1>"
    assert ParallelConfig() == ParallelConfig(1, 1)


@pytest.mark.parametrize("tp,pp", [(0, 1), (1, 0), (-2, 1), (1.5, 1), ("2", 1), (True, 1)])
def test_config_rejects_bad_degrees(tp, pp):
    with pytest.raises(CostModelError, match="positive integer"):
        ParallelConfig(tp, pp)


def test_check_fits_names_the_reason():
    kw = dict(num_layers=32, num_heads=32, num_kv_heads=8, gpus_per_node=8)
    ParallelConfig(8, 4).check_fits(**kw)
    with pytest.raises(CostModelError, match="does not divide the model's 32 attention heads"):
        ParallelConfig(3, 1).check_fits(**kw)
    with pytest.raises(CostModelError, match="spans nodes"):
        ParallelConfig(16, 1).check_fits(**{**kw, "num_heads": 64, "num_kv_heads": 64})
    with pytest.raises(CostModelError, match="exceeds the model's 32 layers"):
        ParallelConfig(1, 64).check_fits(**kw)
    # GQA with more TP ranks than KV heads is fine when the KV heads can be replicated evenly.
    ParallelConfig(8, 1).check_fits(**{**kw, "num_kv_heads": 4})
    with pytest.raises(CostModelError, match="key/value heads"):
        ParallelConfig(4, 1).check_fits(**{**kw, "num_kv_heads": 6, "num_heads": 24})


def test_parse_plan_round_trip_and_counts():
    plan = parse_plan("<1,1>x6 <2,1>x1 <8,1>x1")
    assert plan.num_gpus == 16
    assert plan.num_replicas == 8
    assert str(plan) == "<1,1>x6 <2,1>x1 <8,1>x1"
    assert parse_plan(str(plan)) == plan
    assert plan.replicas == [ParallelConfig(1, 1)] * 6 + [ParallelConfig(2, 1), ParallelConfig(8, 1)]


def test_parse_plan_merges_repeats_and_accepts_loose_spacing():
    plan = parse_plan(" <2, 4> x2,<1,1>  <2,4>X1 ")
    assert plan.entries == ((ParallelConfig(1, 1), 1), (ParallelConfig(2, 4), 3))
    assert plan.num_gpus == 25
    assert plan == DeploymentPlan.of([ParallelConfig(2, 4)] * 3 + [ParallelConfig(1, 1)])


@pytest.mark.parametrize(
    "text", ["", "   ", "<1,1>x", "<1,1>x0", "<1;1>x2", "1,1x2", "<1,1>x2 junk", "<0,1>x1", "<a,1>x1"]
)
def test_parse_plan_rejects_malformed(text):
    with pytest.raises(CostModelError):
        parse_plan(text)


def test_plan_rejects_unsorted_or_empty_entries():
    with pytest.raises(CostModelError):
        DeploymentPlan(())
    with pytest.raises(CostModelError):
        DeploymentPlan(((ParallelConfig(2, 1), 1), (ParallelConfig(1, 1), 1)))
