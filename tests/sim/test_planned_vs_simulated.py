"""A planner that says its estimate is the dispatch it plans for must match the simulation of its plan: the same
sampled steps (same seed), the same dispatcher, so within 3% (it is the same arithmetic: a drift means the planner
and the simulator model a step differently)."""

import pytest
from lobra.costmodel import CostModel
from lobra.policies.planners import PLANNERS
from lobra.policies.planners.base import SAMPLED_DISPATCH
from lobra.sim import Policy, SimConfig, Simulator
from lobra.traces import load_scenario

CLAIMING = [name for name in PLANNERS.names() if PLANNERS.get(name).estimate == SAMPLED_DISPATCH]


@pytest.mark.parametrize(
    "scenario", ["paper-7b", "real-7b", "tiny-cpu", pytest.param("paper-70b-4task", marks=pytest.mark.slow)]
)
def test_planned_gpu_seconds_are_the_simulated_ones(scenario):
    sc = load_scenario(scenario)
    cost = CostModel.build(sc.model, sc.gpu)
    assert {"task-fused", "lobra-plus", "task-sequential"} <= set(CLAIMING)
    for name in ("task-fused", "task-sequential", "lobra-plus"):
        policy = Policy.of_planner(name, workers=1)
        planned = policy.make_planner().plan(sc.workload, cost, sc.num_gpus)
        steps = policy.planner_config.sample_steps
        result = Simulator(sc.workload, cost, sc.num_gpus, policy, SimConfig(steps=steps, seed=0)).run()
        simulated = result.summary["gpu_seconds_per_step"]
        assert simulated == pytest.approx(planned.gpu_seconds_per_step, rel=0.03), (scenario, name)


@pytest.mark.parametrize("scenario", ["paper-7b", "real-7b"])
def test_a_surrogate_planner_reports_the_dispatch_its_plan_will_run(scenario):
    """lobra scores plans by an integer programme on expected bucket counts (a surrogate, said in its estimate);
    `dispatched_step_time` (lobra plan --check-estimate) dispatches the sampled steps on the chosen plan as they
    will run, and that is what the simulation gives."""
    sc = load_scenario(scenario)
    cost = CostModel.build(sc.model, sc.gpu)
    policy = Policy.of_planner("lobra", workers=1)
    planner = policy.make_planner()
    assert planner.estimate != SAMPLED_DISPATCH and "surrogate" in planner.estimate
    planned = planner.plan(sc.workload, cost, sc.num_gpus)
    dispatched = planner.dispatched_step_time(planned, sc.workload, cost)
    steps = policy.planner_config.sample_steps
    result = Simulator(sc.workload, cost, sc.num_gpus, policy, SimConfig(steps=steps, seed=0)).run()
    assert result.summary["plan"] == str(planned.plan)
    assert result.summary["step_time_s"] == pytest.approx(dispatched, rel=0.03)
