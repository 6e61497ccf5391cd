import pytest
from lobra.costmodel import CostModel, MemoryOptions, ParallelConfig
from lobra.policies.planners import get_planner
from lobra.policies.planners.search import enumerate_plans
from lobra.policies.registry import PolicyError
from lobra.traces import load_scenario, parse_workload

SMALL = {
    "tasks": [
        {
            "name": "short",
            "trace": {
                "synthetic": {"mean": 300, "skewness": 2.0, "kurtosis": 9.0, "cap": 4096, "samples": 5000}
            },
            "global_batch_size": 64,
            "max_len": 4096,
        },
        {
            "name": "long",
            "trace": {
                "synthetic": {"mean": 1500, "skewness": 1.0, "kurtosis": 1.5, "cap": 4096, "samples": 5000}
            },
            "global_batch_size": 16,
            "max_len": 4096,
        },
    ]
}
FAST = dict(sample_steps=2, time_limit_s=5, workers=1)


@pytest.fixture(scope="module")
def small():
    return parse_workload(SMALL)


@pytest.fixture(scope="module")
def cost():
    return CostModel.build("llama2-7b", "a100-40gb", memory=MemoryOptions(num_tasks=2))


def test_enumeration_fills_the_cluster():
    configs = [ParallelConfig(1, 1), ParallelConfig(2, 1), ParallelConfig(4, 1)]
    plans = list(enumerate_plans(configs, 4))
    assert sorted(str(p) for p in plans) == sorted(["<4,1>x1", "<2,1>x2", "<1,1>x2 <2,1>x1", "<1,1>x4"])
    held = list(enumerate_plans(configs, 4, must_hold=[ParallelConfig(4, 1)]))
    assert [str(p) for p in held] == ["<4,1>x1"]
    # no 1-GPU config: plans may leave fewer GPUs free than the smallest config needs
    odd = list(enumerate_plans([ParallelConfig(2, 1)], 5))
    assert [str(p) for p in odd] == ["<2,1>x2"]


@pytest.mark.parametrize("num_gpus", [2, 4])
def test_lobra_matches_exhaustive_on_small_clusters(small, cost, num_gpus):
    lobra = get_planner("lobra", **FAST).plan(small, cost, num_gpus)
    exhaustive = get_planner("exhaustive", **FAST).plan(small, cost, num_gpus)
    assert exhaustive.plans_considered >= lobra.plans_considered
    assert lobra.step_time_s == pytest.approx(exhaustive.step_time_s, rel=1e-3)


def test_every_planner_respects_the_cluster_and_the_lower_bound(small, cost):
    for name in ["task-fused", "task-sequential", "lobra", "lobra-plus"]:
        result = get_planner(name, **FAST).plan(small, cost, 8)
        assert result.lower_bound_gpu_seconds > 0
        # the bound ignores bubbles, sync and imbalance: nothing may beat it (packing: within rounding)
        assert result.gpu_seconds_per_step >= 0.98 * result.lower_bound_gpu_seconds, name
        if result.plan is not None:
            assert result.plan.num_gpus <= 8
        else:
            assert set(result.task_plans) == {"short", "long"}
            assert all(len(p.entries) == 1 and p.num_gpus <= 8 for p in result.task_plans.values())


def test_task_fused_is_homogeneous_and_holds_the_longest(small, cost):
    result = get_planner("task-fused", **FAST).plan(small, cost, 8)
    assert len(result.plan.entries) == 1
    config = result.plan.entries[0][0]
    assert cost.with_memory(MemoryOptions(num_tasks=2)).max_tokens(config) >= 4096


def test_exhaustive_refuses_large_clusters(small, cost):
    with pytest.raises(PolicyError, match="at most 16 GPUs"):
        get_planner("exhaustive", **FAST).plan(small, cost, 32)


def test_impossible_cluster(small):
    big = CostModel.build("llama2-70b", "a100-40gb")
    with pytest.raises(PolicyError, match="no parallel config of llama2-70b fits 2 x a100-40gb"):
        get_planner("lobra", **FAST).plan(small, big, 2)


@pytest.mark.slow
def test_paper_7b_lobra_well_below_task_fused():
    """The issue's bar: >= 30% fewer GPU-seconds than Task-Fused on paper-7b (cost model as it is)."""
    scenario = load_scenario("paper-7b")
    cm = CostModel.build(scenario.model, scenario.gpu)
    fused = get_planner("task-fused").plan(scenario.workload, cm, 16)
    lobra = get_planner("lobra").plan(scenario.workload, cm, 16)
    assert lobra.gpu_seconds_per_step <= 0.7 * fused.gpu_seconds_per_step
    assert str(fused.plan) == "<8,1>x2"  # the paper's Task-Fused plan


# Four tenants of different lengths on 32 H100s (issue 16): the paper-style programme once rated lobra's plans of
# many small replicas far above what they run, and lobra chose a plan it rated worse than Task-Fused's.
FOUR_TENANTS = {
    "tasks": [
        {"name": "math", "trace": "gsm8k_train", "max_len": 8192, "global_batch_size": 128},
        {"name": "code", "trace": "codealpaca_2k", "max_len": 8192, "global_batch_size": 64},
        {
            "name": "longdoc",
            "trace": {"synthetic": {"mean": 4000, "skewness": 1.5, "kurtosis": 4}},
            "max_len": 8192,
            "global_batch_size": 16,
        },
        {
            "name": "chat",
            "trace": {"synthetic": {"mean": 600, "skewness": 3, "kurtosis": 20}},
            "max_len": 8192,
            "global_batch_size": 256,
        },
    ]
}


def test_lobra_never_rates_its_plan_above_task_fused():
    workload = parse_workload(FOUR_TENANTS)
    cost = CostModel.build("llama3-8b", "h100-80gb")
    fused = get_planner("task-fused", workers=1).plan(workload, cost, 32)
    lobra = get_planner("lobra", workers=1).plan(workload, cost, 32)
    assert lobra.gpu_seconds_per_step <= fused.gpu_seconds_per_step
    assert lobra.unproven == 0 and lobra.plans_considered > 3


def test_a_programme_stopped_by_its_limit_is_flagged_and_not_trusted(small, cost):
    """One branch-and-bound node proves nothing: every plan is then scored by a feasible dispatch, and said so."""
    stopped = get_planner("lobra", sample_steps=2, node_limit=1, workers=1).plan(small, cost, 4)
    assert stopped.unproven > 0 and stopped.to_dict()["unproven_programmes"] == stopped.unproven
    assert stopped.step_time_s > 0


def test_widening_the_window_never_loses_and_stops_when_the_plan_stays(monkeypatch):
    import lobra.policies.planners.lobra as lobra_planners

    sc = load_scenario("paper-70b-4task")
    cost = CostModel.build(sc.model, sc.gpu)
    widened = get_planner("lobra-plus", workers=1).plan(sc.workload, cost, 64)
    monkeypatch.setattr(lobra_planners, "MAX_WIDENINGS", 0)
    narrow = get_planner("lobra-plus", workers=1).plan(sc.workload, cost, 64)
    assert widened.gpu_seconds_per_step <= narrow.gpu_seconds_per_step
    assert widened.plans_considered > narrow.plans_considered


@pytest.mark.parametrize("name,num_gpus", [("lobra", 4), ("lobra-plus", 16)])
def test_progress_counts_every_plan_scored(small, cost, name, num_gpus):
    calls = []
    planner = get_planner(name, **FAST)
    planner.progress = lambda done, total: calls.append((done, total))
    result = planner.plan(small, cost, num_gpus)
    assert calls and [d for d, _ in calls] == list(range(1, len(calls) + 1))  # one call per plan scored
    assert all(d <= t for d, t in calls) and calls[-1][0] == calls[-1][1]  # ends with every plan scored
    assert calls[-1][1] <= result.plans_considered
    assert len(calls) > 1
    planner.plan(small, cost, num_gpus)  # a second plan counts from zero
    assert calls[len(calls) // 2][0] == 1


@pytest.mark.parametrize("name", ["lobra", "lobra-plus"])
def test_worker_processes_score_plans_as_one_process_does(small, cost, name):
    # The workers get the sampled steps and the cost model once, at their start (policies/pool.py); the cost
    # model travels without its memo. Scores, plan and count must not depend on where they were computed.
    fast = {**FAST, "sample_steps": 3}
    alone = get_planner(name, **fast).plan(small, cost, 8)
    pooled = get_planner(name, **{**fast, "workers": 2}).plan(small, cost, 8)
    assert str(pooled.plan) == str(alone.plan)
    assert pooled.step_time_s == alone.step_time_s
    assert pooled.plans_considered == alone.plans_considered


def test_a_cost_model_travels_without_its_memo(cost):
    import pickle

    from lobra.costmodel import MicroBatch

    mb = MicroBatch((700, 300, 1000), 1000, packed=True)
    before = cost.stage_times(ParallelConfig(2, 2), mb)
    assert cost._layer_cache  # the memo is filled ...
    copy = pickle.loads(pickle.dumps(cost))
    assert not copy._layer_cache and not copy._outer_cache  # ... and left behind
    assert copy.stage_times(ParallelConfig(2, 2), mb) == before
    assert copy.max_tokens(ParallelConfig(2, 2)) == cost.max_tokens(ParallelConfig(2, 2))
