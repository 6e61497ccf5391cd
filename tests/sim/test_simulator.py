"""Whole simulations: conservation, determinism, tenants over time, faults, outputs."""

import json

import numpy as np
import pandas as pd
import pytest
from lobra.costmodel import CostModel, parse_plan
from lobra.policies.dispatchers import DispatcherConfig
from lobra.policies.registry import PolicyError
from lobra.sim import Cluster, Failure, Policy, SimConfig, SimError, Simulator
from lobra.traces import StepSampler, load_scenario, parse_workload

REAL = load_scenario("real-7b")
COST = CostModel.build("llama2-7b", "a100-40gb")
PLAN = parse_plan("<1,1>x6 <2,1>x1 <8,1>x1")


def simulate(policy, steps=3, workload=REAL.workload, **config):
    return Simulator(workload, COST, 16, policy, SimConfig(steps=steps, **config)).run()


@pytest.mark.parametrize("packing", [False, True])
def test_every_sampled_token_is_processed_once(packing):
    policy = Policy("p", "balanced", DispatcherConfig(packing=packing), plan=PLAN)
    result = simulate(policy)
    sampler = StepSampler(REAL.workload, seed=0)
    for step in range(3):
        # the same sampler and seed give the step's sequences; real-7b truncates long ones at 16K itself
        lengths = [n for _, n in sampler.next_step()]
        replicas = result.replicas[result.replicas["step"] == step]
        assert replicas["tokens"].sum() == sum(lengths)
        assert result.steps.loc[step, "num_sequences"] == len(lengths)
        assert (replicas["padded_tokens"] >= replicas["tokens"]).all()
        if packing:
            assert (replicas["padded_tokens"] == replicas["tokens"]).all()
    # a replica is busy at most the whole step
    assert ((result.replicas["idle_s"] >= -1e-12) & (result.replicas["busy_s"] > 0)).all()


def test_same_seed_same_run_other_seed_other_run():
    policy = Policy("p", "balanced", plan=PLAN)
    a = simulate(policy, jitter=0.1, straggler_prob=0.2, seed=7)
    b = simulate(policy, jitter=0.1, straggler_prob=0.2, seed=7)
    c = simulate(policy, jitter=0.1, straggler_prob=0.2, seed=8)
    pd.testing.assert_frame_equal(a.steps, b.steps)
    pd.testing.assert_frame_equal(a.replicas, b.replicas)
    assert not np.allclose(a.steps["step_time_s"], c.steps["step_time_s"])


def test_jitter_keeps_the_mean_and_stragglers_slow_down():
    policy = Policy("p", "balanced", plan=PLAN)
    base = simulate(policy, steps=6).summary["step_time_s"]
    jittered = simulate(policy, steps=6, jitter=0.05, seed=1).summary["step_time_s"]
    slow = simulate(policy, steps=6, straggler_prob=1.0, straggler_slowdown=1.5).summary["step_time_s"]
    assert jittered == pytest.approx(base, rel=0.1)
    assert slow == pytest.approx(1.5 * base, rel=0.02)  # every replica 1.5x slower; sync unchanged


def test_online_tenants_arrive_leave_and_trigger_replanning():
    scenario = load_scenario("online-7b")
    result = Simulator(
        scenario.workload,
        COST,
        16,
        Policy.of_planner("lobra-plus", sample_steps=2, workers=1),
        SimConfig(reconfig_s=5.0),
    ).run()
    tasks = result.tasks.set_index("task")
    for task in scenario.workload:
        assert tasks.loc[task.name, "steps"] == task.num_steps  # every task ran exactly its steps
        assert tasks.loc[task.name, "completion_s"] > task.spec.arrival_s
    # no step trained a task before it arrived
    steps = result.steps[result.steps["status"] == "ok"]
    assert steps["start_s"].is_monotonic_increasing
    late = scenario.workload.task("alpacaeval").spec.arrival_s
    assert tasks.loc["alpacaeval", "completion_s"] - late > 0
    reconfigs = result.events[result.events["kind"] == "reconfigure"]
    assert len(reconfigs) == result.summary["reconfigurations"] >= 2
    assert result.summary["total_time_s"] >= steps["step_time_s"].sum() + 5.0 * len(reconfigs) - 1e-6


def test_a_failed_gpu_loses_the_step_which_is_retried_on_a_new_plan():
    policy = Policy.of_planner("lobra-plus", sample_steps=2, workers=1)
    clean = simulate(policy, steps=4)
    t_fail = clean.steps.loc[1, "start_s"] + 0.5 * clean.steps.loc[1, "step_time_s"]
    result = simulate(policy, steps=4, failures=(Failure(t_fail, 3),), reconfig_s=20.0)
    steps = result.steps
    failed = steps[steps["status"] == "failed"]
    assert len(failed) == 1 and failed.iloc[0]["step"] == 1
    lost = (t_fail - failed.iloc[0]["start_s"]) * parse_plan(failed.iloc[0]["plan"]).num_gpus
    assert failed.iloc[0]["gpu_seconds"] == pytest.approx(lost)
    assert result.summary["gpu_seconds_lost"] == pytest.approx(lost)
    ok = steps[steps["status"] == "ok"]
    assert ok["step"].tolist() == [0, 1, 2, 3]  # nothing lost, nothing trained twice
    # the retried step trains the very same sequences
    assert failed.iloc[0]["num_sequences"] == ok[ok["step"] == 1].iloc[0]["num_sequences"]
    assert ok[ok["step"] == 1].iloc[0]["tokens"] == clean.steps.loc[1, "tokens"]
    retry = ok[ok["step"] == 1].iloc[0]
    assert retry["start_s"] == pytest.approx(t_fail + 20.0)
    assert result.events["kind"].tolist()[:3] == ["plan", "failure", "reconfigure"]
    # the new plan avoids the dead GPU: 15 GPUs left
    assert parse_plan(ok.iloc[-1]["plan"]).num_gpus <= 15


def test_fixed_plan_that_does_not_fit_is_refused():
    with pytest.raises(SimError, match="does not fit"):
        Simulator(REAL.workload, COST, 8, Policy("p", "balanced", plan=parse_plan("<8,1>x1 <4,1>x1")))


def test_placement_keeps_tp_in_a_node_and_links_are_right():
    cluster = Cluster(COST.gpu, 16)
    places = cluster.place(parse_plan("<1,1>x6 <2,1>x1 <8,1>x1"))
    for p in places:
        for stage in p.stages:
            assert len({g // 8 for g in stage}) == 1  # TP inside a node
    assert sorted(g for p in places for g in p.gpus) == list(range(16))
    assert cluster.link_gbps(0, 1) == COST.gpu.nvlink_gbps
    assert cluster.link_gbps(0, 9) == COST.gpu.network_gbps
    with pytest.raises(SimError, match="no node has 8 free GPUs"):
        Cluster(COST.gpu, 16).without(3).place(parse_plan("<8,1>x2"))


def test_outputs_are_files_users_can_load(tmp_path):
    result = simulate(Policy("p", "balanced", plan=PLAN), steps=2, trace_steps=1)
    result.write(tmp_path)
    replicas = pd.read_parquet(tmp_path / "replicas.parquet")
    for col in ("step", "replica", "config", "busy_s", "idle_s", "tokens", "padded_tokens", "micro_batches"):
        assert col in replicas.columns
    assert len(pd.read_csv(tmp_path / "steps.csv")) == 2
    trace = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    spans = [e for e in trace if e["ph"] == "X"]
    assert spans and all(e["dur"] > 0 for e in spans)
    assert {e["pid"] for e in spans} == set(range(9))  # the steps track, then the plan's 8 replicas
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["plan"] == str(PLAN)
    assert summary["clock_stopped_programmes"] == 0  # the node limit, not the clock, decided every programme


def test_a_full_trace_takes_no_more_steps_and_says_so():
    whole = simulate(Policy("p", "balanced", plan=PLAN), steps=4, trace_steps=None)
    per_step = len([e for e in whole.trace_events if e["ph"] == "X"]) / 4
    limited = simulate(
        Policy("p", "balanced", plan=PLAN), steps=4, trace_steps=None, trace_events=int(1.5 * per_step)
    )
    assert whole.summary["traced_steps"] == 4 and limited.summary["traced_steps"] == 2  # whole steps only
    steps = [e["name"] for e in limited.trace_events if e["ph"] == "X" and e["pid"] == 0]
    assert steps == ["step 0", "step 1"]
    assert "ops traced up to step 1" in limited.trace_events[0]["args"]["name"]
    assert (
        limited.summary["gpu_seconds_per_step"] == whole.summary["gpu_seconds_per_step"]
    )  # the run is the same


@pytest.mark.parametrize("pipeline", ["closed-form", "events"])
def test_the_trace_holds_every_modelled_event_on_named_tracks(pipeline):
    """Every traced step: compute per stage, stage-to-stage sends, the all-reduce and the optimizer of every replica,
    each on a track named by its replica and stage; trace_steps=None traces every step."""
    plan = parse_plan("<1,2>x2 <2,1>x1")
    workload = parse_workload(
        {"tasks": [{"name": "a", "trace": "gsm8k_train", "global_batch_size": 64, "max_len": 1024}]}
    )
    policy = Policy("p", "balanced", plan=plan)
    result = simulate(policy, steps=3, workload=workload, trace_steps=None, pipeline=pipeline)
    events = result.trace_events
    names = {(e["pid"], e.get("tid")): e["args"]["name"] for e in events if e["ph"] == "M"}
    assert names[(0, None)] == "steps" and names[(1, None)] == "replica 0 <1,2>"
    assert names[(1, 0)] == "stage 0: layers 0-15 + embedding"
    assert names[(1, 1)] == "stage 1: layers 16-31 + LM head, loss"
    assert names[(1, 100)] == "link 0 -> 1" and names[(1, 201)] == "link 1 -> 0"
    assert names[(3, 0)] == "stage 0: layers 0-31 + embedding + LM head, loss"
    spans = [e for e in events if e["ph"] == "X"]
    steps = [e for e in spans if e["pid"] == 0]
    assert [e["name"] for e in steps] == ["step 0", "step 1", "step 2"]
    for step in steps:  # every op of a step lies inside the step's span
        inside = [
            e for e in spans if e["pid"] and step["ts"] - 1e-3 <= e["ts"] < step["ts"] + step["dur"] - 1e-3
        ]
        kinds = {e["name"].rstrip("0123456789 ") for e in inside}
        assert kinds == {"F", "B", "FB", "activations", "gradients", "all-reduce", "optimizer"}
        assert max(e["ts"] + e["dur"] for e in inside) <= step["ts"] + step["dur"] + 1e-3
        # one all-reduce and one optimizer per replica, the optimizer right after the all-reduce
        sync = sorted((e["pid"], e["name"], e["ts"], e["dur"]) for e in inside if e["tid"] == 1000)
        assert [(p, n) for p, n, *_ in sync] == [
            (p, n) for p in (1, 2, 3) for n in ("all-reduce", "optimizer")
        ]
        for (_, _, ts, dur), (_, _, ts2, _) in zip(sync[::2], sync[1::2], strict=True):
            assert ts2 == pytest.approx(ts + dur)
        # a forward's activations leave stage 0 as it ends: as many sends as stage-0 forwards
        fwd = [e for e in inside if e["tid"] == 0 and e["name"].startswith("F") and e["pid"] in (1, 2)]
        sends = [e for e in inside if e["tid"] == 100]
        assert len(sends) == len(fwd) > 0 and all(e["dur"] > 0 for e in sends)


def test_task_sequential_runs_the_tasks_one_after_another():
    workload = parse_workload(
        {
            "tasks": [
                {"name": "a", "trace": "gsm8k_train", "global_batch_size": 32, "max_len": 1024},
                {"name": "b", "trace": "codealpaca_2k", "global_batch_size": 32, "max_len": 1024},
            ]
        }
    )
    seq = simulate(
        Policy.of_planner("task-sequential", sample_steps=2, workers=1), steps=2, workload=workload
    )
    reps = seq.replicas[seq.replicas["step"] == 0]
    # two phases, one per task, each on its own plan over the cluster
    assert reps["tokens"].sum() == seq.steps.loc[0, "tokens"]
    assert seq.steps.loc[0, "gpu_seconds"] == pytest.approx(seq.steps.loc[0, "step_time_s"] * 16)


def test_a_replica_pays_for_each_micro_batch_shape_the_first_time_only():
    """With every sequence of one length, every step runs the same micro-batches: only the first step meets new
    shapes, and only the tensor-parallel replica (the one with a new-shape cost) pays for them."""
    from lobra.costmodel import LayerTimeFit, OuterTimeFit, Overheads
    from lobra.sim.whatif import fixed_workload

    fit = LayerTimeFit({1: (0, 0, 0, 0, 1.0, 0), 2: (0, 0, 0, 0, 1.0, 0)})
    base = CostModel.build("tiny", "cpu", fit=fit, outer=OuterTimeFit.of_included())
    workload = fixed_workload("fixed:256", 16, steps=4)
    for plan_text, pays in (("<2,1>x1", True), ("<1,1>x2", False)):
        plan = parse_plan(plan_text)
        times = {}
        for extra in (0.0, 0.5):
            overheads = Overheads(first_run_s={2: extra} if extra else {}, dp_sync_s=0.0, optimizer_s=0.0)
            cost = base.with_overheads(overheads)
            policy = Policy("p", "balanced", plan=plan)
            result = Simulator(workload, cost, 2, policy, SimConfig(steps=4, replan=False)).run()
            times[extra] = result.steps["step_time_s"].to_numpy()
        added = (times[0.5] - times[0.0]) / 0.5
        if pays:
            assert added[0] >= 1 and added[0] == pytest.approx(round(added[0]))  # whole shapes, at least one
        else:
            assert added[0] == pytest.approx(0.0)
        assert added[1:] == pytest.approx(np.zeros(3))


def test_a_policy_plans_with_the_dispatch_settings_it_runs():
    padded = Policy.of_planner("lobra-plus", dispatcher_config=DispatcherConfig())
    assert padded.make_planner().dispatcher_config == DispatcherConfig()
    default = Policy.of_planner("lobra-plus")
    assert default.make_planner().dispatcher_config == DispatcherConfig(packing=True)
    # run with another dispatcher, a planner still plans for its own
    other = Policy.of_planner("lobra-plus", dispatcher="uniform", dispatcher_config=DispatcherConfig())
    assert other.make_planner().dispatcher_config == DispatcherConfig(packing=True)
    with pytest.raises(ValueError, match="needs mbs"):
        Policy("p", "fixed-mbs", plan=PLAN)


@pytest.mark.parametrize("beyond", ["truncate", "drop"])
def test_every_sampled_token_is_trained_truncated_or_dropped_as_the_run_says(beyond):
    """On <1,1> replicas (2K tokens), long sequences are cut to 2K or left out, as --beyond-capacity says; the
    tasks table and the summary say how much of each."""
    from lobra.costmodel import MemoryOptions
    from lobra.traces import parse_workload

    def task(name):
        trace = {"synthetic": {"mean": 1800, "skewness": 1.0, "kurtosis": 2.0, "cap": 8192, "samples": 2000}}
        return {"name": name, "trace": trace, "max_len": 8192, "global_batch_size": 16}

    workload = parse_workload({"tasks": [task("a"), task("b")]})
    cost = CostModel.build("llama2-7b", "a100-40gb", memory=MemoryOptions(num_tasks=2))
    config = DispatcherConfig(beyond_capacity=beyond)
    policy = Policy("p", "balanced", config, plan=parse_plan("<1,1>x4"))
    result = Simulator(workload, cost, 4, policy, SimConfig(steps=3)).run()
    tasks = result.tasks.set_index("task")
    parts = tasks[["trained_tokens", "truncated_tokens", "dropped_tokens"]].sum(axis=1)
    assert (parts == tasks["sampled_tokens"]).all() and (tasks["sampled_tokens"] > 0).all()
    cut, kept = (
        ("truncated_tokens", "dropped_tokens")
        if beyond == "truncate"
        else ("dropped_tokens", "truncated_tokens")
    )
    assert (tasks[cut] > 0).all() and (tasks[kept] == 0).all()
    s = result.summary
    assert s["truncated_pct"] + s["dropped_pct"] == pytest.approx(s["cut_pct"]) and s["cut_pct"] > 0
    assert result.steps["tokens"].sum() == tasks["trained_tokens"].sum()
    with pytest.raises(PolicyError, match="task 'a' has sequences of"):  # the default, before anything runs
        Simulator(
            workload, cost, 4, Policy("p", "balanced", plan=parse_plan("<1,1>x4")), SimConfig(steps=3)
        ).run()
