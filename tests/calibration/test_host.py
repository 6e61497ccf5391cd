import json

import pytest
from lobra.calibration.host import HostModel, shipped_host
from lobra.costmodel import (
    CostModel,
    LayerTimeFit,
    MemoryOptions,
    MicroBatch,
    OuterTimeFit,
    Overheads,
    ParallelConfig,
    parse_plan,
)
from lobra.costmodel.errors import CostModelError

# t(b, s) = b ms per layer: a micro-batch of b sequences costs 2 b ms on the tiny model's 2 layers
FIT = LayerTimeFit({1: (0, 0, 0, 0, 1.0, 0), 2: (0, 0, 0, 0, 1.0, 0)})
NO_HEAD = OuterTimeFit.of_included()  # hand-computed times: the layers alone
HOST = HostModel(
    cores=2,
    contention={"<1,1>": {1: 1.0, 2: 1.5, 3: 2.0}, "<2,1>": {2: 1.0, 3: 1.2}},
    sync_s={1: 0.001, 2: 0.002, 3: 0.003},
    optimizer_s={1: 0.01, 2: 0.01, 3: 0.02},
)


def for_plan(base: CostModel, host: HostModel, plan: str) -> CostModel:
    return base.with_overheads(host.overheads(parse_plan(plan)))


def test_host_model_scales_compute_per_config_and_replaces_sync_and_optimizer(tmp_path):
    base = CostModel.build("tiny", "cpu", fit=FIT, outer=NO_HEAD)
    cost = for_plan(base, HOST, "<1,1>x1 <2,1>x1")
    mb = MicroBatch.padded(3, 16)
    one, two = ParallelConfig(1, 1), ParallelConfig(2, 1)
    assert base.stage_times(one, mb)[0] == pytest.approx(0.006)
    assert cost.stage_times(one, mb)[0] == pytest.approx(0.006 * 2.0)
    assert cost.stage_times(two, mb)[0] == pytest.approx(0.006 * 1.2)
    assert cost.dp_sync_s(one, 2, True) == 0.003 and cost.optimizer_s(two) == 0.02
    # the simulator re-derives cost models per task set: the overheads travel along, the base keeps none
    again = cost.with_memory(MemoryOptions(num_tasks=3, lora_rank=8))
    assert again.overheads is cost.overheads and again.stage_times(one, mb)[0] == pytest.approx(0.012)
    assert again.memory.num_tasks == 3 and base.overheads == Overheads()
    # a config without its own table contends like independent ranks
    assert HOST.factor(ParallelConfig(1, 2), 3, "<1,1>x1 <2,1>x1") == 2.0
    HOST.to_json(tmp_path / "host.json", {"measured": {"date": "today"}})
    assert HostModel.from_json(tmp_path / "host.json") == HOST


def test_a_plan_measured_as_itself_uses_its_own_contention(tmp_path):
    """The <1,1> rank beside a TP pair contends less than beside two busy <1,1> ranks: the plan's own row wins,
    other plans of the same rank count keep the per-R tables."""
    host = HostModel(
        cores=2,
        contention=HOST.contention,
        sync_s=HOST.sync_s,
        optimizer_s=HOST.optimizer_s,
        plans={"<1,1>x1 <2,1>x1": {"<1,1>": 1.1, "<2,1>": 1.3}},
    )
    base = CostModel.build("tiny", "cpu", fit=FIT, outer=NO_HEAD)
    mb = MicroBatch.padded(3, 16)
    one, two = ParallelConfig(1, 1), ParallelConfig(2, 1)
    mixed = for_plan(base, host, "<2,1>x1 <1,1>x1")
    assert mixed.stage_times(one, mb)[0] == pytest.approx(0.006 * 1.1) and mixed.overheads.factor(two) == 1.3
    assert mixed.with_memory(MemoryOptions(num_tasks=3, lora_rank=8)).overheads.factor(one) == 1.1
    assert for_plan(base, host, "<1,1>x3").overheads.factor(one) == 2.0
    # a measured plan needs no per-R rows: there are none at 3 ranks here
    lone = HostModel(
        2, {"<1,1>": {1: 1.0}}, {3: 0.0}, {3: 0.0}, plans={"<1,1>x1 <1,2>x1": {"<1,1>": 1.2, "<1,2>": 1.4}}
    )
    lone.check_plan(parse_plan("<1,2>x1 <1,1>x1").replicas, 3, "<1,1>x1 <1,2>x1")
    with pytest.raises(CostModelError, match=r"3 ranks with replica\(s\) <1,1>, <1,2>"):
        lone.check_plan(parse_plan("<1,2>x1 <1,1>x1").replicas, 3)
    # written and read back; a file may list a plan's replicas in any order
    host.to_json(tmp_path / "host.json")
    assert HostModel.from_json(tmp_path / "host.json") == host
    payload = json.loads((tmp_path / "host.json").read_text())
    payload["plans"] = {"<2,1>x1 <1,1>x1": {"<2,1>": 1.3, "<1,1>": 1.1}}
    (tmp_path / "host.json").write_text(json.dumps(payload))
    assert HostModel.from_json(tmp_path / "host.json").plans == host.plans
    with pytest.raises(CostModelError, match="positive"):
        HostModel(2, {"<1,1>": {1: 1.0}}, {1: 0.0}, {1: 0.0}, plans={"<1,1>x1": {"<1,1>": 0.0}})


def test_host_model_refuses_unmeasured_rank_counts_and_bad_tables(tmp_path):
    with pytest.raises(CostModelError, match="no measurements for 4 ranks"):
        HOST.overheads(parse_plan("<1,1>x4"))
    with pytest.raises(CostModelError, match=r"for 2 ranks with replica\(s\) <2,1>"):
        HostModel(2, {"<1,1>": {1: 1.0, 2: 1.1}, "<2,1>": {3: 1.0}}, {2: 0.0}, {2: 0.0}).check_plan(
            parse_plan("<2,1>").replicas, 2
        )
    with pytest.raises(CostModelError, match="needs a table for <1,1>"):
        HostModel(2, {"<2,1>": {2: 1.0}}, {2: 0.0}, {2: 0.0})
    with pytest.raises(CostModelError, match="positive"):
        HostModel(2, {"<1,1>": {1: 0.0}}, {1: 0.0}, {1: 0.0})
    (tmp_path / "bad.json").write_text('{"cores": 2}')
    with pytest.raises(CostModelError, match="malformed"):
        HostModel.from_json(tmp_path / "bad.json")


def test_a_host_file_in_the_old_spelling_reads_the_same(tmp_path):
    host = HostModel(2, {"<1,1>": {1: 1.0}}, {1: 0.1}, {1: 0.2}, first_run_s={2: 0.04})
    host.to_json(tmp_path / "host.json")
    payload = json.loads((tmp_path / "host.json").read_text())
    payload["slowdown"], payload["new_shape_s"] = payload.pop("contention"), payload.pop("first_run_s")
    (tmp_path / "old.json").write_text(json.dumps(payload))
    assert HostModel.from_json(tmp_path / "old.json") == host


def test_shipped_tiny_cpu_host_model_covers_the_validation_plans():
    host = shipped_host("tiny", "cpu")
    assert host is not None and host.measured_num_ranks == [1, 2, 3, 4]
    for plan in ("<1,1>x1", "<1,1>x2", "<2,1>x1", "<1,2>x1", "<2,1>x1 <1,1>x1", "<2,1>x1 <1,1>x2"):
        host.check_plan(parse_plan(plan).replicas, parse_plan(plan).num_gpus)
    # the mixed validation plan has its own row, and tensor parallelism pays for new shapes
    assert set(host.plans["<1,1>x1 <2,1>x1"]) == {"<1,1>", "<2,1>"}
    assert host.first_run_s[2] > host.first_run_s[1] >= 0
    # the pipeline's last stage (LM head and loss besides its layer) weighs more than its first
    first, last = host.stage_weights["<1,2>"]
    assert last > first > 0


def test_only_measured_tp_degrees_pay_for_a_first_run_and_contention_scales_it():
    host = HostModel(
        cores=2,
        contention={"<1,1>": {3: 2.0}, "<2,1>": {3: 1.5}},
        sync_s={3: 0.0},
        optimizer_s={3: 0.0},
        first_run_s={2: 0.04},
    )
    base = CostModel.build("tiny", "cpu", fit=FIT, outer=NO_HEAD)
    cost = for_plan(base, host, "<2,1>x1 <1,1>x1")
    two, mb = ParallelConfig(2, 1), MicroBatch.padded(1, 16)
    assert base.first_run_s(two) == 0.0  # the fitted model knows no first-run cost
    assert cost.first_run_s(two) == 0.04 and cost.first_run_s(ParallelConfig(1, 1)) == 0.0
    # work on the same cores: it contends like the rest of the stage
    extra = cost.stage_times(two, mb, cost.first_run_s(two))[0] - cost.stage_times(two, mb)[0]
    assert extra == pytest.approx(0.04 * 1.5)
    with pytest.raises(CostModelError, match="first_run_s values must be numbers >= 0"):
        HostModel(2, {"<1,1>": {1: 1.0}}, {1: 0.0}, {1: 0.0}, first_run_s={2: -0.01})


def test_measured_stage_weights_shape_the_pipeline_and_its_pace(tmp_path):
    """The last stage of <1,2> measured at 1.5x its even share: on M equal micro-batches 1F1B then takes stage 0's
    first forward and last backward around M of the last stage's (a + M b), not the even share's (M + 1) x."""
    from lobra.policies.costs import CostTable

    host = HostModel(
        cores=2,
        contention={"<1,1>": {2: 1.0}, "<1,2>": {2: 1.0}},
        sync_s={2: 0.0},
        optimizer_s={2: 0.0},
        stage_weights={"<1,2>": (1.0, 1.5)},
    )
    base = CostModel.build("tiny", "cpu", fit=FIT, outer=NO_HEAD)
    piped = ParallelConfig(1, 2)
    cost = for_plan(base, host, "<1,2>x1")
    mb = MicroBatch.padded(2, 16)
    a = cost.stage_times(piped, mb)[0]  # 2 ms: one layer of 2 sequences
    assert base.stage_times(piped, mb) == (a, a) and cost.stage_times(piped, mb) == (a, 1.5 * a)
    base_time = base.replica_time(piped, [mb] * 4)
    time = cost.replica_time(piped, [mb] * 4)
    assert base_time.compute_s + base_time.pp_bubble_s == pytest.approx(5 * a)
    assert time.compute_s == pytest.approx(4 * 1.5 * a)  # the slowest stage's
    assert time.compute_s + time.pp_bubble_s == pytest.approx(a + 4 * 1.5 * a)
    # the dispatchers balance by the pipeline's pace: its slowest stage
    cost_mb = CostTable(cost).length_cost(piped, 16)
    assert cost_mb.time_s(2) == pytest.approx(1.5 * a + cost.p2p_s(piped, mb))
    host.to_json(tmp_path / "host.json")
    assert HostModel.from_json(tmp_path / "host.json") == host
    with pytest.raises(CostModelError, match="stage_weights of <1,2> needs 2 positive numbers"):
        HostModel(2, {"<1,1>": {1: 1.0}}, {1: 0.0}, {1: 0.0}, stage_weights={"<1,2>": (1.0,)})
