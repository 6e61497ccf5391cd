"""`lobra validate` on small inputs: bad input, the reused calibration, and one real run (one rank, two steps)
against a one-job calibration; the calibration measured now, interleaved with the real runs."""

import json

import numpy as np
import pandas as pd
import pytest
from lobra.calibration.host import HostModel
from lobra.calibration.validate_config import ValidateConfig, ValidationError, parse_plans
from lobra.calibration.validation_calibration import calibration
from lobra.costmodel import CostModel


def test_plans_parse_to_canonical_strings():
    assert parse_plans("<2,1>x1 <1,1>x1; <1,1>x2 ;") == ("<1,1>x1 <2,1>x1", "<1,1>x2")
    with pytest.raises(ValidationError, match="bad plan '<1,1>x0'"):
        parse_plans("<1,1>x2;<1,1>x0")
    with pytest.raises(ValidationError, match="holds no plan"):
        parse_plans(" ; ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("--plans '<1,1>x1;<<'", "bad plan '<<'"),
        ("--plans '<1,1>x4 <2,1>x1'", "needs 6 ranks, more than --max-ranks 4"),
        ("--plans '<1,1>x2' --max-ranks 1", "needs 2 ranks, more than --max-ranks 1"),
        ("--plans '<1,1>x1;<1,1>'", "repeats a plan"),
        ("--plans '<1,3>'", "pp=3 exceeds the model's 2 layers"),
        ("--scenario no-such", "unknown scenario 'no-such'"),
        ("--scenario paper-7b", "runs on a100-40gb"),
        ("--steps 2 --warmup 2", "--steps 2 leaves no step after the 2 warm-up step(s)"),
        ("--steps 0", "--steps must be an integer >= 1"),
        ("--repeats 0", "--repeats must be an integer >= 1"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(cli, tmp_path, args, message):
    rc, out, err = cli(f"validate --allow-busy {args} --out {tmp_path / 'v'}")
    assert rc == 2 and out == ""
    assert err.startswith("lobra: error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "v").exists()


def test_reused_calibration_is_the_shipped_one_without_a_cache(tmp_path):
    cal = calibration(ValidateConfig(out=str(tmp_path), calibrate=False), "tiny", "cpu", 4, progress=False)
    assert cal.origin == "shipped" and cal.profile.name == "tiny_cpu_layer_time.csv"
    assert cal.host.measured_num_ranks == [1, 2, 3, 4]
    assert not (tmp_path / "calibration").exists()


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """A one-job executor calibration (tp=1, one rank, 9 shapes) where validate caches its own."""
    from lobra.calibration.jobs import calibrate_executor

    out = tmp_path_factory.mktemp("validate")
    calibrate_executor(
        out / "calibration",
        seq_lens=(16, 48, 96),
        mbs=(1, 2, 4),
        repeats=1,
        max_ranks=1,
        tps=(1,),
        host_configs=("<1,1>",),
        progress=False,
    )
    return out


def test_executor_calibration_writes_a_profile_and_host_model(calibrated):
    profile = pd.read_csv(calibrated / "calibration" / "tiny_cpu_layer_time.csv")
    assert list(profile.columns) == ["tp", "seq_len", "mbs", "time", "time_min", "pre_post_time"]
    assert (profile["pre_post_time"] == 0).all()  # whole-model times: the head is in them
    assert (
        len(profile) == 9
        and (profile["time"] >= profile["time_min"]).all()
        and (profile["time_min"] > 0).all()
    )
    host = HostModel.from_json(calibrated / "calibration" / "tiny_cpu_host.json")
    assert host.contention == {"<1,1>": {1: 1.0}} and host.sync_s[1] > 0 and host.optimizer_s[1] > 0
    assert set(host.first_run_s) == {1} and host.first_run_s[1] >= 0  # from the grid's first pass
    cost = CostModel.build("tiny", "cpu", profile=calibrated / "calibration" / "tiny_cpu_layer_time.csv")
    assert cost.fit is not None and cost.fit.tps == [1]


def test_validate_runs_executor_and_simulator_on_the_same_steps(cli, calibrated):
    out = calibrated
    rc, stdout, err = cli(
        f"validate --allow-busy --plans '<1,1>x1' --steps 2 --warmup 1 --repeats 2 --reuse-calibration --json"
        f" --out {out}"
    )
    assert rc == 0, err
    summary = json.loads(stdout)
    assert summary["calibration"]["origin"] == "cached"
    assert summary["warmup_steps_skipped"] == 1 and summary["step_pairs"] == 1
    assert summary["kendall_tau"] is None  # one plan ranks nothing
    (plan,) = summary["per_plan"]
    assert plan["plan"] == "<1,1>x1" and plan["steps_measured"] == 1 and plan["dispatch_agreement"] == 1.0
    assert plan["runs"] == 2 and summary["noise"]["repeats"] == 2
    pairs = pd.read_csv(out / "pairs.csv")
    assert list(pairs["step"]) == [0, 1] and list(pairs["warmup"]) == [True, False]
    # the same sampled data on both sides and in both real runs, as the executor recorded it
    real = [pd.read_csv(out / "runs" / "tp1pp1x1" / f"run{k}" / "steps.csv") for k in (0, 1)]
    assert (
        list(pairs["tokens"])
        == list(pairs["sim_tokens"])
        == list(real[0]["tokens"])
        == list(real[1]["tokens"])
    )
    assert list(pairs["num_sequences"]) == list(pairs["sim_num_sequences"]) == [32, 32]
    both = np.array([r["step_time_s"] for r in real])
    assert pairs["real_step_s"].tolist() == pytest.approx(np.median(both, axis=0).tolist())
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs["real_step_s"]) == pytest.approx(sorted(both.ravel()))
    measured = pairs[~pairs["warmup"]]
    abs_pct = (
        (measured["sim_step_s"] - measured["real_step_s"]).abs() / measured["real_step_s"] * 100
    ).mean()
    assert summary["mape_step_time"] == pytest.approx(abs_pct)
    assert json.loads((out / "validation.json").read_text())["per_plan"] == summary["per_plan"]
    assert len(pd.read_csv(out / "plans.csv")) == 1
    # more ranks than the cached host model was measured for: refused before anything runs
    rc, _, err = cli(
        f"validate --allow-busy --plans '<1,1>x2' --steps 2 --warmup 1 --reuse-calibration --out {out}"
    )
    assert rc == 2 and "no measurements for 2 ranks" in err


@pytest.mark.slow
def test_calibration_measured_now_is_interleaved_with_the_real_runs(tmp_path):
    from lobra.calibration.validate import validate

    cfg = ValidateConfig(
        plans=("<1,1>x1",),
        steps=2,
        warmup=1,
        repeats=2,
        max_ranks=1,
        calibration_seq_lens=(16, 48, 96),
        calibration_mbs=(1, 2, 4),
        calibration_repeats=2,
        out=str(tmp_path / "v"),
    )
    result = validate(cfg, progress=False)
    cal = tmp_path / "v" / "calibration"
    measured = json.loads((cal / "tiny_cpu_host.json").read_text())["measured"]
    # one grid round before the real runs, one before the second round and one after it; one sample per point each
    assert measured["rounds"] == 3 and measured["samples_per_point"] == 3
    rounds = [pd.read_csv(cal / "rounds" / f"round{r}_layer_time.csv") for r in range(3)]
    assert all(len(r) == 9 for r in rounds)  # 9 shapes at tp=1 only: the grids of the plans' tp degrees
    assert result.calibration["origin"].startswith("measured now, 2 round(s)")
    pooled = pd.read_csv(cal / "tiny_cpu_layer_time.csv")
    first = pd.read_csv(cal / "dispatch_layer_time.csv")  # the executor dispatched with the first round's
    assert len(pooled) == len(first) == 9
    assert (pooled["time"] >= pooled["time_min"]).all()
    assert (pooled["time_min"] <= first["time_min"] + 1e-9).all()  # the pool holds the first round's samples
    assert result.calibration["dispatch_profile"] == str((cal / "dispatch_layer_time.csv").resolve())
    assert result.per_plan[0].runs == 2 and result.per_plan[0].dispatch_agreement == 1.0
    # each round's runs simulated with the grid rounds around them (0 and 1, 1 and 2: never equal), the pair with
    # their median
    per_run = result.runs.pivot(index="step", columns="run", values="sim_step_s")
    assert (per_run[0] != per_run[1]).all()
    assert list(result.pairs["sim_step_s"]) == pytest.approx(list(per_run.mean(axis=1)))


def test_each_round_of_runs_is_simulated_with_the_grid_rounds_around_it(tmp_path):
    """Grid rounds 1x, 3x and 4x as slow around two rounds of runs: the runs of round 0 see the mean of the first
    two (2x), those of round 1 the mean of the last two (3.5x); one round alone would give 1x and 3x."""
    from lobra.calibration.jobs import CalibrationJobs
    from lobra.calibration.measurements import GridPoint, Job, JobResult, RankResult
    from lobra.calibration.validation_calibration import Calibration
    from lobra.costmodel import MicroBatch

    jobs = CalibrationJobs(max_ranks=1, seq_lens=(16, 48, 96), mbs=(1, 2, 4))
    jobs.results = [
        JobResult(
            Job("<1,1>x1", 1, grid=True),
            1,
            r,
            RankResult(tuple(GridPoint(1, s, b, (scale * (s * b + 50),)) for s, b in jobs.points)),
        )
        for r, scale in enumerate((1.0, 3.0, 4.0))
    ]
    jobs.rounds = 3
    cal = Calibration(tmp_path / "unused.csv", None, "measured now", tmp_path / "unused.csv", jobs)
    first, second = cal.round_costs("tiny", "cpu", 2)
    mb = MicroBatch.padded(2, 48)
    assert second.layer_ms(1, mb) / first.layer_ms(1, mb) == pytest.approx(3.5 / 2, rel=1e-3)


def test_validate_refuses_a_busy_machine_and_flags_busy_plans(cli, monkeypatch, tmp_path):
    from lobra.commands.validate import busy_plans

    monkeypatch.setattr("os.getloadavg", lambda: (9.0, 9.0, 9.0))
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    rc, _, err = cli(f"validate --reuse-calibration --out {tmp_path / 'v'}")
    assert rc == 2 and "busy (1-minute load 9.0 on 2 cores)" in err and "--allow-busy" in err
    assert not (tmp_path / "v").exists()
    rows = [
        {"plan": "<1,1>x4", "num_ranks": 4, "load_avg_1m": 2.5},
        {"plan": "<1,1>x1", "num_ranks": 1, "load_avg_1m": 2.5},
    ]
    # 4 ranks on 2 cores load them fully on their own; one rank at load 2.5 shared them with other work
    assert busy_plans(rows, 2) == ["<1,1>x1 (load 2.5, 1 ranks of its own, 2 cores)"]
