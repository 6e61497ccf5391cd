"""`lobra validate` on small inputs: metrics of known step pairs, the same-data guard, bad input, and one real run
(one rank, two steps) against a one-job calibration."""

import json

import numpy as np
import pandas as pd
import pytest
from lobra.analysis.validate import (
    ValidateConfig,
    ValidationError,
    calibration,
    dispatch_agreement,
    kendall_tau,
    noise_metrics,
    parse_plans,
    single_runs,
    step_metrics,
    step_pairs,
)
from lobra.costmodel import CostModel, parse_plan
from lobra.costmodel.host import HostModel


def test_step_metrics_of_known_pairs():
    pairs = pd.DataFrame({"real_step_s": [1.0, 2.0, 4.0, 0.5], "sim_step_s": [1.1, 1.8, 4.0, 0.6]})
    pairs["real_gpu_s"] = pairs["real_step_s"] * [1, 1, 2, 2]
    pairs["sim_gpu_s"] = pairs["sim_step_s"] * [1, 1, 2, 2]
    m = step_metrics(pairs)
    abs_pct = [10.0, 10.0, 0.0, 20.0]
    assert m["mape_pct"] == pytest.approx(10.0)
    assert m["p95_abs_pct_error"] == pytest.approx(np.percentile(abs_pct, 95)) == pytest.approx(18.5)
    # GPU-seconds: (1.1 + 1.8 + 8.0 + 1.2) / (1 + 2 + 8 + 1) - 1
    assert m["gpu_seconds_error_pct"] == pytest.approx((12.1 / 12.0 - 1) * 100)
    assert m["pairs"] == 4
    assert step_metrics(pairs.iloc[:0])["mape_pct"] is None


def test_kendall_tau_of_known_rankings():
    assert kendall_tau([1.0, 2.0, 3.0], [0.5, 2.5, 9.0]) == pytest.approx(1.0)
    assert kendall_tau([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == pytest.approx(-1.0)
    # one discordant pair of three: (2 - 1) / 3
    assert kendall_tau([1.0, 2.0, 3.0], [1.0, 3.0, 2.0]) == pytest.approx(1 / 3)
    assert kendall_tau([1.0], [2.0]) is None


def _steps(tokens, times):
    return pd.DataFrame(
        {
            "step": range(len(tokens)),
            "num_sequences": 4,
            "tokens": tokens,
            "step_time_s": times,
            "status": "ok",
        }
    )


def test_step_pairs_flag_warmup_and_refuse_different_data():
    plan = parse_plan("<1,1>x2")
    sim = [_steps([10, 20, 30], [1.0, 1.1, 0.9])]
    pairs = step_pairs(plan, [_steps([10, 20, 30], [2.0, 1.0, 1.0])], sim, 1)
    assert list(pairs["warmup"]) == [True, False, False]
    assert list(pairs["error_pct"].round(6)) == [-50.0, 10.0, -10.0]
    assert list(pairs["sim_gpu_s"].round(6)) == [2.0, 2.2, 1.8]
    with pytest.raises(ValidationError, match="step 1: the simulator saw 4 sequences / 21 tokens"):
        step_pairs(plan, [_steps([10, 20, 30], [1.0] * 3)], [_steps([10, 21, 30], [1.0] * 3)], 1)
    with pytest.raises(ValidationError, match="ran steps"):
        step_pairs(plan, [_steps([10, 20], [1.0] * 2)], [_steps([10, 20, 30], [1.0] * 3)], 1)
    # every run is checked, not only the first
    with pytest.raises(ValidationError, match="step 2: the simulator saw 4 sequences / 30 tokens"):
        step_pairs(plan, [_steps([10, 20, 30], [1.0] * 3), _steps([10, 20, 31], [1.0] * 3)], sim, 1)


def test_step_pairs_take_the_median_of_repeated_runs_and_single_runs_keep_each():
    plan = parse_plan("<1,1>x1")
    same = _steps([10, 20], [1.0, 1.0])
    runs = [_steps([10, 20], [3.0, 1.0]), _steps([10, 20], [2.0, 1.25]), _steps([10, 20], [9.0, 0.8])]
    pairs = step_pairs(plan, runs, [same] * 3, 1)
    assert list(pairs["real_step_s"]) == [3.0, 1.0]
    assert list(pairs["real_min_s"]) == [2.0, 0.8] and list(pairs["real_max_s"]) == [9.0, 1.25]
    assert list(pairs["runs"]) == [3, 3] and list(pairs["error_pct"].round(6)) == [-66.666667, 0.0]
    single = single_runs(runs, [same] * 3, pairs)
    assert len(single) == 6 and list(single["run"]) == [0, 0, 1, 1, 2, 2]
    assert list(single["real_step_s"]) == [3.0, 1.0, 2.0, 1.25, 9.0, 0.8]
    assert list(single["median_step_s"]) == [3.0, 1.0] * 3
    noise = noise_metrics(single)
    # measured step 1 only: runs 1.0, 1.25, 0.8 against the median 1.0 and against the simulated 1.0
    assert noise["repeats"] == 3
    assert noise["single_run_vs_median_pct"] == pytest.approx((0 + 25 + 20) / 3)
    assert noise["single_run_mape_pct"] == pytest.approx((0 + 20 + 25) / 3)
    # each round's own simulation: the pair takes their median, a single run is compared with its own
    per_round = [_steps([10, 20], [1.0, 1.0]), _steps([10, 20], [1.0, 1.5]), _steps([10, 20], [1.0, 0.8])]
    pairs = step_pairs(plan, runs, per_round, 1)
    assert list(pairs["sim_step_s"]) == [1.0, 1.0]
    assert list(single_runs(runs, per_round, pairs)["sim_step_s"]) == [1.0, 1.0, 1.0, 1.5, 1.0, 0.8]
    with pytest.raises(ValidationError, match="step 1: the simulator saw 4 sequences / 20 tokens"):
        step_pairs(plan, runs, [same, _steps([10, 21], [1.0, 1.0])], 1)
    assert noise_metrics(single[single["run"] == 0])["single_run_vs_median_pct"] is None


def test_dispatch_agreement_counts_matching_replica_rows():
    real = pd.DataFrame(
        {"step": [0, 0, 1, 1], "replica": [0, 1, 0, 1], "tokens": [5, 6, 7, 8], "padded_tokens": [5, 6, 8, 8]}
    )
    real["micro_batches"] = 1
    sim = real.assign(attempt=0)
    sim.loc[3, "tokens"] = 9
    assert dispatch_agreement(real, sim) == 0.75


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
    rc, out, err = cli(f"validate {args} --out {tmp_path / 'v'}")
    assert rc == 2 and out == ""
    assert err.startswith("lobra: error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "v").exists()


def test_reused_calibration_is_the_shipped_one_without_a_cache(tmp_path):
    cal = calibration(ValidateConfig(out=str(tmp_path), calibrate=False), "tiny", "cpu", 4, progress=False)
    assert cal.origin == "shipped" and cal.profile.name == "tiny_cpu_layer_time.csv"
    assert cal.host.ranks == [1, 2, 3, 4]
    assert not (tmp_path / "calibration").exists()


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """A one-job executor calibration (tp=1, one rank, 9 shapes) where validate caches its own."""
    from lobra.executor.calibrate import calibrate_executor

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
    assert list(profile.columns) == ["tp", "seq_len", "mbs", "time", "time_min"]
    assert (
        len(profile) == 9
        and (profile["time"] >= profile["time_min"]).all()
        and (profile["time_min"] > 0).all()
    )
    host = HostModel.from_json(calibrated / "calibration" / "tiny_cpu_host.json")
    assert host.slowdown == {"<1,1>": {1: 1.0}} and host.sync_s[1] > 0 and host.optimizer_s[1] > 0
    assert set(host.new_shape_s) == {1} and host.new_shape_s[1] >= 0  # from the grid's first pass
    cost = CostModel.build("tiny", "cpu", profile=calibrated / "calibration" / "tiny_cpu_layer_time.csv")
    assert cost.fit is not None and cost.fit.tps == [1]


def test_validate_runs_executor_and_simulator_on_the_same_steps(cli, calibrated):
    out = calibrated
    rc, stdout, err = cli(
        f"validate --plans '<1,1>x1' --steps 2 --warmup 1 --repeats 2 --reuse-calibration --json --out {out}"
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
    rc, _, err = cli(f"validate --plans '<1,1>x2' --steps 2 --warmup 1 --reuse-calibration --out {out}")
    assert rc == 2 and "no measurements for 2 ranks" in err


@pytest.mark.slow
def test_calibration_measured_now_is_interleaved_with_the_real_runs(tmp_path):
    from lobra.analysis.validate import validate

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


def test_calibration_jobs_measure_the_given_plans_as_themselves():
    from lobra.executor.calibrate import calibration_jobs

    jobs = calibration_jobs(3, (1, 2), ("<1,1>", "<2,1>"), plans=("<2,1>x1 <1,1>x1", "<1,2>x1 <1,1>x1"))
    by_plan = {j["plan"]: j for j in jobs}
    assert set(by_plan) == {"<1,1>x1", "<2,1>x1", "<1,1>x2", "<1,1>x3", "<1,1>x1 <2,1>x1", "<1,1>x1 <1,2>x1"}
    # a per-R job that is also a given plan keeps its target; a plan outside the per-R scheme has none
    assert by_plan["<1,1>x1 <2,1>x1"] == {
        "plan": "<1,1>x1 <2,1>x1",
        "nproc": 3,
        "grid": False,
        "host": True,
        "target": "<2,1>",
    }
    assert by_plan["<1,1>x1 <1,2>x1"]["target"] is None and by_plan["<1,1>x1 <1,2>x1"]["nproc"] == 3
    assert by_plan["<2,1>x1"]["grid"] and by_plan["<2,1>x1"]["target"] == "<2,1>"
    assert all(j["host"] for j in jobs)
    assert all(not j["host"] for j in calibration_jobs(3, (1, 2), (), ()))


@pytest.mark.slow
def test_a_mixed_plan_is_measured_as_itself_with_each_of_its_configs(tmp_path):
    """The rank side: each config of <2,1>x1 <1,1>x1 runs its block alone in turn, then all ranks together."""
    from lobra.executor.calibrate import CalibrationJobs

    jobs = CalibrationJobs(
        seq_lens=(16, 48, 96),
        mbs=(1, 2, 4),
        max_ranks=1,
        tps=(1,),
        host_configs=("<1,1>",),
        plans=("<2,1>x1 <1,1>x1", "<1,2>x1 <1,1>x1"),
    )
    jobs.run(1, host=True, host_repeats=2, progress=False)
    mixed = next(r["host"] for r in jobs.results if r["job"]["plan"] == "<1,1>x1 <2,1>x1")
    piped = next(r["host"] for r in jobs.results if r["job"]["plan"] == "<1,1>x1 <1,2>x1")
    # each stage of the pipeline against half the <1,1> rank's compute, both alone: two stages, each some real
    # share of the whole model; no pipeline, no weights
    assert mixed["stage_weights"] == {} and len(piped["stage_weights"]["<1,2>"]) == 2
    assert all(0.3 < w < 3.0 for w in piped["stage_weights"]["<1,2>"])
    assert mixed["ranks"] == 3 and set(mixed["slowdown"]) == set(mixed["block_s"]) == {"<1,1>", "<2,1>"}
    for config, block in mixed["block_s"].items():
        assert block["alone"] > 0 and mixed["slowdown"][config] == pytest.approx(
            block["together"] / block["alone"]
        )
    # together, the <1,1> rank repeats its block for about as long as the TP pair's one block takes
    assert mixed["block_s"]["<2,1>"]["copies"] == 1 and mixed["block_s"]["<1,1>"]["copies"] >= 2
    host = jobs.host()
    assert host.plans["<1,1>x1 <2,1>x1"] == mixed["slowdown"]
    assert host.stage_weights == {"<1,2>": tuple(piped["stage_weights"]["<1,2>"])}
    assert host.slowdown == {"<1,1>": {1: 1.0}}  # a plan measured as itself fills no per-R table


def test_calibration_jobs_derive_host_effects(tmp_path):
    """From job results as the ranks write them (no job runs here)."""
    from lobra.executor.calibrate import CalibrationJobs

    jobs = CalibrationJobs(max_ranks=2, seq_lens=(16, 48, 96), mbs=(1, 2, 4))

    def host(ranks, slowdown, alone):
        return {
            "ranks": ranks,
            "slowdown": slowdown,
            "sync_s": 0.001 * ranks,
            "optimizer_s": 0.002,
            "block_s": {c: {"alone": alone, "together": alone * f} for c, f in slowdown.items()},
        }

    def job(plan, grid, target):
        return {"plan": plan, "grid": grid, "host": True, "target": target}

    # each shape's first run 40 ms over its second (a new-shape cost), the first point's also warming up
    grid = [
        {
            "tp": 1,
            "seq_len": s,
            "mbs": b,
            "samples": [2.0 * s * b, 3.0 * s * b],
            "first": s * b + 40.0,
            "second": s * b,
        }
        for s, b in jobs.points
    ]
    grid[0]["first"] += 500.0
    jobs.results = [
        {
            "job": job("<1,1>x1", True, "<1,1>"),
            "repeats": 2,
            "grid": grid,
            "host": host(1, {"<1,1>": 1.0}, 0.2),
        },
        {
            "job": job("<1,1>x2", False, "<1,1>"),
            "repeats": 2,
            "grid": [],
            "host": host(2, {"<1,1>": 1.1}, 0.2),
        },
        {
            "job": job("<1,2>x1", False, "<1,2>"),
            "repeats": 2,
            "grid": [],
            "host": host(2, {"<1,2>": 1.0}, 0.3),
        },
        # a plan measured as itself: its rows go to plans only, not to the per-R tables
        {
            "job": job("<1,1>x1 <1,2>x1", False, None),
            "repeats": 2,
            "grid": [],
            "host": host(3, {"<1,1>": 1.2, "<1,2>": 1.3}, 0.3),
        },
    ]
    # two jobs ran a <1,2> beside a <1,1>: their stage weights are averaged stage by stage
    jobs.results[3]["host"]["stage_weights"] = {"<1,2>": [1.0, 1.2]}
    jobs.results.append(
        {
            "job": job("<1,1>x2 <1,2>x1", False, "<1,2>"),
            "repeats": 2,
            "grid": [],
            "host": host(4, {"<1,1>": 1.3, "<1,2>": 1.4}, 0.3) | {"stage_weights": {"<1,2>": [1.1, 1.6]}},
        }
    )
    profile = jobs.profile()
    row = profile[(profile["seq_len"] == 48) & (profile["mbs"] == 2)].iloc[0]
    assert row["time"] == pytest.approx(2.5 * 96 / 2) and row["time_min"] == pytest.approx(2.0 * 96 / 2)
    model = jobs.host()
    assert model.slowdown == {"<1,1>": {1: 1.0, 2: 1.1}, "<1,2>": {2: 1.0, 4: 1.4}}
    assert model.stage_weights == {"<1,2>": (pytest.approx(1.05), pytest.approx(1.4))}
    assert model.plans["<1,1>x1 <1,2>x1"] == {"<1,1>": 1.2, "<1,2>": 1.3} and model.plans["<1,1>x2"] == {
        "<1,1>": 1.1
    }
    assert model.sync_s == {1: 0.001, 2: 0.002}
    assert model.new_shape_s == {1: pytest.approx(0.04)}  # the median over points: the warm-up is left out


def test_a_failed_calibration_job_names_the_ranks_error_and_keeps_its_log(tmp_path):
    import re
    from pathlib import Path

    from lobra.executor.calibrate import _run_job
    from lobra.executor.errors import ExecutorError

    argv = [
        "--plan",
        "<1,1>x1",
        "--scenario",
        "no-such",
        "--model",
        "tiny",
        "--result",
        str(tmp_path / "r.json"),
    ]
    with pytest.raises(ExecutorError, match="unknown scenario 'no-such'") as info:
        _run_job(argv, 1, tmp_path / "job.log")
    assert "ChildFailedError" not in str(info.value)
    kept = Path(re.search(r"whole log: (\S+)\)$", str(info.value)).group(1))
    assert kept.read_text() == (tmp_path / "job.log").read_text()
    kept.unlink()


def test_each_round_of_runs_is_simulated_with_the_grid_rounds_around_it(tmp_path):
    """Grid rounds 1x, 3x and 4x as slow around two rounds of runs: the runs of round 0 see the mean of the first
    two (2x), those of round 1 the mean of the last two (3.5x); one round alone would give 1x and 3x."""
    from lobra.analysis.validate import Calibration
    from lobra.costmodel import MicroBatch
    from lobra.executor.calibrate import CalibrationJobs

    jobs = CalibrationJobs(max_ranks=1, seq_lens=(16, 48, 96), mbs=(1, 2, 4))
    jobs.results = [
        {
            "job": {"plan": "<1,1>x1", "grid": True},
            "round": r,
            "repeats": 1,
            "grid": [
                {"tp": 1, "seq_len": s, "mbs": b, "samples": [scale * (s * b + 50)]} for s, b in jobs.points
            ],
            "host": None,
        }
        for r, scale in enumerate((1.0, 3.0, 4.0))
    ]
    jobs.rounds = 3
    cal = Calibration(tmp_path / "unused.csv", None, "measured now", tmp_path / "unused.csv", jobs)
    first, second = cal.round_costs("tiny", "cpu", 2)
    mb = MicroBatch.padded(2, 48)
    assert second.layer_ms(1, mb) / first.layer_ms(1, mb) == pytest.approx(3.5 / 2, rel=1e-3)
