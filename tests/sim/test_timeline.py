"""Exact timelines on tiny hand-computed scenarios (SimPy's own test style: [(t, event), ...] == [...])."""

import pytest
from lobra.costmodel import CostModel, LayerTimeFit, OuterTimeFit, parse_plan
from lobra.costmodel.cost_model import P2P_LATENCY_S
from lobra.policies.dispatchers import DispatcherConfig
from lobra.sim import Policy, SimConfig, Simulator
from lobra.sim.whatif import fixed_workload

# t(b, s) = b ms per layer whatever the length; the tiny model has 2 layers and hidden size 64
FIT = LayerTimeFit({1: (0, 0, 0, 0, 1.0, 0), 2: (0, 0, 0, 0, 1.0, 0)})
NO_HEAD = OuterTimeFit.of_included()  # hand-computed times: the layers alone


def run(plan: str, num_seqs: int, mbs: int, pipeline: str = "events", seq_len: int = 16):
    cost = CostModel.build("tiny", "cpu", fit=FIT, outer=NO_HEAD)
    workload = fixed_workload(f"fixed:{seq_len}", num_seqs, steps=1)
    policy = Policy("plan", "fixed-mbs", DispatcherConfig(mbs=mbs), plan=parse_plan(plan))
    sim = Simulator(
        workload,
        cost,
        parse_plan(plan).num_gpus,
        policy,
        SimConfig(steps=1, trace_steps=1, pipeline=pipeline),
    )
    return sim.run(), cost


def ops(result, tracks=range(100)):
    """(track, name, start ms, end ms) of the replicas' ops on the given tracks (default: the stages' compute)."""
    return sorted(
        (e["tid"], e["name"], round(e["ts"] / 1e3, 6), round((e["ts"] + e["dur"]) / 1e3, 6))
        for e in result.trace_events
        if e["ph"] == "X" and e["pid"] > 0 and e["tid"] in tracks
    )


def test_single_replica_runs_micro_batches_back_to_back():
    result, cost = run("<1,1>x1", num_seqs=4, mbs=2)
    # two micro-batches of 2 sequences: 2 layers x 2 ms each
    assert ops(result) == [(0, "FB0", 0.0, 4.0), (0, "FB1", 4.0, 8.0)]
    opt = cost.optimizer_s(parse_plan("<1,1>x1").replicas[0])
    assert result.summary["step_time_s"] == pytest.approx(0.008 + opt, abs=1e-12)
    # one replica: nothing to all-reduce, then its optimizer on the sync track
    end = round(8.0 + opt * 1e3, 6)
    assert ops(result, [1000]) == [(1000, "all-reduce", 8.0, 8.0), (1000, "optimizer", 8.0, end)]


def test_two_stage_1f1b_timeline_by_hand():
    result, _ = run("<1,2>x1", num_seqs=4, mbs=2)
    # one layer per stage: a micro-batch of 2 takes 2 ms per stage, forward 2/3 ms, backward 4/3 ms;
    # each crossing: 32 tokens x 64 x 2 bytes over 2 GB/s plus the latency
    c = 32 * 64 * 2 / 2e9 * 1e3 + P2P_LATENCY_S * 1e3
    f, b = 2 / 3, 4 / 3
    expected = [
        (0, "F0", 0, f),
        (0, "F1", f, 2 * f),
        (1, "F0", f + c, 2 * f + c),
        (1, "B0", 2 * f + c, 2 * f + b + c),
        (1, "F1", 2 * f + b + c, 3 * f + b + c),
        (1, "B1", 3 * f + b + c, 3 * f + 2 * b + c),
        (0, "B0", 2 * f + b + 2 * c, 2 * f + 2 * b + 2 * c),
        (0, "B1", 3 * f + 2 * b + 2 * c, 3 * f + 3 * b + 2 * c),
    ]
    assert ops(result) == sorted((k, n, round(s, 6), round(e, 6)) for k, n, s, e in expected)


@pytest.mark.parametrize("plan", ["<1,1>x1", "<1,2>x1", "<2,2>x1"])
def test_closed_form_and_events_agree(plan):
    events, _ = run(plan, num_seqs=12, mbs=3, pipeline="events", seq_len=48)
    closed, _ = run(plan, num_seqs=12, mbs=3, pipeline="closed-form", seq_len=48)
    assert ops(events) == ops(closed)
    assert events.summary["step_time_s"] == pytest.approx(closed.summary["step_time_s"], rel=1e-12)


@pytest.mark.parametrize(
    "plan,seq_len,mbs",
    [
        ("<1,1>x1", 1024, 2),
        ("<2,1>x1", 2048, 2),
        ("<1,2>x1", 512, 4),
        ("<2,4>x1", 1024, 4),
        ("<8,1>x1", 16384, 1),
    ],
)
def test_what_if_mode_reproduces_the_cost_model_exactly(plan, seq_len, mbs):
    """A single replica, fixed lengths: the simulated step is the cost model's replica time."""
    from lobra.costmodel import MicroBatch

    cost = CostModel.build("llama2-7b", "a100-40gb")
    deployment = parse_plan(plan)
    workload = fixed_workload(f"fixed:{seq_len}", 4 * mbs, steps=1)
    policy = Policy("plan", "fixed-mbs", DispatcherConfig(mbs=mbs), plan=deployment)
    result = Simulator(workload, cost, deployment.num_gpus, policy, SimConfig(steps=1)).run()
    config = deployment.replicas[0]
    expected = cost.replica_time(config, [MicroBatch.padded(mbs, seq_len)] * 4)
    assert result.summary["step_time_s"] == pytest.approx(expected.total_s, rel=1e-12)
    assert result.replicas["busy_s"].iloc[0] == pytest.approx(expected.busy_s, rel=1e-12)


@pytest.mark.parametrize("pipeline", ["events", "closed-form"])
def test_measured_stage_weights_reach_the_simulated_pipeline(pipeline):
    """Overheads whose <1,2> last stage runs 1.5x its even share: the simulated step is the cost model's replica
    time with those weights, in both pipeline modes (and slower than the even share's)."""
    from lobra.costmodel import MicroBatch, Overheads, ParallelConfig

    overheads = Overheads(stage_weights={ParallelConfig(1, 2): (1.0, 1.5)}, dp_sync_s=0.0, optimizer_s=0.0)
    deployment = parse_plan("<1,2>x1")
    base = CostModel.build("tiny", "cpu", fit=FIT, outer=NO_HEAD)
    cost = base.with_overheads(overheads)
    workload = fixed_workload("fixed:16", 12, steps=1)
    policy = Policy("plan", "fixed-mbs", DispatcherConfig(mbs=3), plan=deployment)
    config = SimConfig(steps=1, trace_steps=1, pipeline=pipeline)
    result = Simulator(workload, cost, 2, policy, config).run()
    expected = cost.replica_time(deployment.replicas[0], [MicroBatch.padded(3, 16)] * 4)
    even = base.replica_time(deployment.replicas[0], [MicroBatch.padded(3, 16)] * 4)
    assert result.replicas["busy_s"].iloc[0] == pytest.approx(expected.busy_s, rel=1e-12)
    assert expected.busy_s > even.busy_s * 1.3
    # the last stage's ops take 1.5x the first's
    durations = {(e["tid"], e["name"]): e["dur"] for e in result.trace_events if e["ph"] == "X"}
    assert durations[(1, "B0")] == pytest.approx(1.5 * durations[(0, "B0")])
