"""The executor calibration: which jobs run, what their ranks measure, and the models derived from it."""

import re
from dataclasses import replace
from pathlib import Path

import pytest
from lobra.calibration.host import HostModel
from lobra.calibration.jobs import CalibrationJobs, calibration_jobs, run_job
from lobra.calibration.measurements import (
    BlockTime,
    GridPoint,
    HostMeasurement,
    Job,
    JobResult,
    RankResult,
)
from lobra.executor.errors import ExecutorError


def test_calibration_jobs_measure_the_given_plans_as_themselves():
    jobs = calibration_jobs(3, (1, 2), ("<1,1>", "<2,1>"), plans=("<2,1>x1 <1,1>x1", "<1,2>x1 <1,1>x1"))
    by_plan = {j.plan: j for j in jobs}
    assert set(by_plan) == {"<1,1>x1", "<2,1>x1", "<1,1>x2", "<1,1>x3", "<1,1>x1 <2,1>x1", "<1,1>x1 <1,2>x1"}
    # a per-R job that is also a given plan keeps its target; a plan outside the per-R scheme has none
    assert by_plan["<1,1>x1 <2,1>x1"] == Job(
        plan="<1,1>x1 <2,1>x1", nproc=3, grid=False, host=True, target="<2,1>"
    )
    assert by_plan["<1,1>x1 <1,2>x1"].target is None and by_plan["<1,1>x1 <1,2>x1"].nproc == 3
    assert by_plan["<2,1>x1"].grid and by_plan["<2,1>x1"].target == "<2,1>"
    assert all(j.host for j in jobs)
    assert all(not j.host for j in calibration_jobs(3, (1, 2), (), ()))


def _host(num_ranks, contention, alone):
    return HostMeasurement(
        num_ranks=num_ranks,
        contention=contention,
        sync_s=0.001 * num_ranks,
        optimizer_s=0.002,
        block_s={c: BlockTime(alone, alone * f) for c, f in contention.items()},
    )


def _result(plan, grid, target, host, points=()):
    job = Job(plan, 1, grid=grid, host=True, target=target)
    return JobResult(job, 2, 0, RankResult(tuple(points), host))


def _grid(points):
    """Each shape's first run 40 ms over its second (a first-run cost), the first point's also warming up."""
    grid = [GridPoint(1, s, b, (2.0 * s * b, 3.0 * s * b), s * b + 40.0, s * b) for s, b in points]
    first = grid[0]
    grid[0] = GridPoint(1, first.seq_len, first.mbs, first.samples, first.first_ms + 500.0, first.second_ms)
    return grid


def test_calibration_jobs_derive_host_effects():
    """From job results as the ranks write them (no job runs here)."""
    jobs = CalibrationJobs(max_ranks=2, seq_lens=(16, 48, 96), mbs=(1, 2, 4))
    jobs.results = [
        _result("<1,1>x1", True, "<1,1>", _host(1, {"<1,1>": 1.0}, 0.2), _grid(jobs.points)),
        _result("<1,1>x2", False, "<1,1>", _host(2, {"<1,1>": 1.1}, 0.2)),
        _result("<1,2>x1", False, "<1,2>", _host(2, {"<1,2>": 1.0}, 0.3)),
        # a plan measured as itself: its rows go to plans only, not to the per-R tables
        _result("<1,1>x1 <1,2>x1", False, None, _host(3, {"<1,1>": 1.2, "<1,2>": 1.3}, 0.3)),
    ]
    # two jobs ran a <1,2> beside a <1,1>: their stage weights are averaged stage by stage
    mixed = jobs.results[3]
    weighed = replace(mixed.host, stage_weights={"<1,2>": (1.0, 1.2)})
    jobs.results[3] = JobResult(mixed.job, 2, 0, RankResult((), weighed))
    four = replace(_host(4, {"<1,1>": 1.3, "<1,2>": 1.4}, 0.3), stage_weights={"<1,2>": (1.1, 1.6)})
    jobs.results.append(_result("<1,1>x2 <1,2>x1", False, "<1,2>", four))
    profile = jobs.profile()
    row = profile[(profile["seq_len"] == 48) & (profile["mbs"] == 2)].iloc[0]
    assert row["time"] == pytest.approx(2.5 * 96 / 2) and row["time_min"] == pytest.approx(2.0 * 96 / 2)
    model = jobs.host()
    assert model.contention == {"<1,1>": {1: 1.0, 2: 1.1}, "<1,2>": {2: 1.0, 4: 1.4}}
    assert model.stage_weights == {"<1,2>": (pytest.approx(1.05), pytest.approx(1.4))}
    assert model.plans["<1,1>x1 <1,2>x1"] == {"<1,1>": 1.2, "<1,2>": 1.3}
    assert model.plans["<1,1>x2"] == {"<1,1>": 1.1}
    assert model.sync_s == {1: 0.001, 2: 0.002}
    assert model.first_run_s == {1: pytest.approx(0.04)}  # the median over points: the warm-up is left out


def test_a_rank_result_reads_back_as_written(tmp_path):
    result = RankResult(
        (GridPoint(2, 64, 4, (1.5, 2.5), 40.0, 1.0), GridPoint(2, 32, 1, (0.5,))),
        HostMeasurement(
            3, {"<2,1>": 1.3}, 0.01, 0.02, {"<2,1>": BlockTime(0.1, 0.13, 2)}, {"<1,2>": (1.0, 1.2)}
        ),
        1.25,
    )
    result.write(tmp_path / "r.json")
    assert RankResult.read(tmp_path / "r.json") == result
    with pytest.raises(ExecutorError, match="num_ranks must be a positive integer, got 0"):
        HostMeasurement(0, {}, 0.0, 0.0)
    with pytest.raises(ExecutorError, match="samples of"):
        GridPoint(1, 16, 1, ())


def test_a_failed_calibration_job_names_the_ranks_error_and_keeps_its_log(tmp_path):
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
        run_job(argv, 1, tmp_path / "job.log")
    assert "ChildFailedError" not in str(info.value)
    kept = Path(re.search(r"whole log: (\S+)\)$", str(info.value)).group(1))
    assert kept.read_text() == (tmp_path / "job.log").read_text()
    kept.unlink()


@pytest.mark.slow
def test_a_mixed_plan_is_measured_as_itself_with_each_of_its_configs():
    """The rank side: each config of <2,1>x1 <1,1>x1 runs its block alone in turn, then all ranks together."""
    jobs = CalibrationJobs(
        seq_lens=(16, 48, 96),
        mbs=(1, 2, 4),
        max_ranks=1,
        tps=(1,),
        host_configs=("<1,1>",),
        plans=("<2,1>x1 <1,1>x1", "<1,2>x1 <1,1>x1"),
    )
    jobs.run(1, host=True, host_repeats=2, progress=False)
    mixed = next(r.host for r in jobs.results if r.job.plan == "<1,1>x1 <2,1>x1")
    piped = next(r.host for r in jobs.results if r.job.plan == "<1,1>x1 <1,2>x1")
    # each stage of the pipeline against half the <1,1> rank's compute, both alone: two stages, each some real
    # share of the whole model; no pipeline, no weights
    assert mixed.stage_weights == {} and len(piped.stage_weights["<1,2>"]) == 2
    assert all(0.3 < w < 3.0 for w in piped.stage_weights["<1,2>"])
    assert mixed.num_ranks == 3 and set(mixed.contention) == set(mixed.block_s) == {"<1,1>", "<2,1>"}
    for config, block in mixed.block_s.items():
        assert block.alone_s > 0 and mixed.contention[config] == pytest.approx(
            block.together_s / block.alone_s
        )
    # together, the <1,1> rank repeats its block for about as long as the TP pair's one block takes
    assert mixed.block_s["<2,1>"].copies == 1 and mixed.block_s["<1,1>"].copies >= 2
    host = jobs.host()
    assert host.plans["<1,1>x1 <2,1>x1"] == mixed.contention
    assert host.stage_weights == {"<1,2>": piped.stage_weights["<1,2>"]}
    assert host.contention == {"<1,1>": {1: 1.0}}  # a plan measured as itself fills no per-R table


@pytest.mark.slow
def test_calibrate_the_executor_on_a_small_grid(tmp_path, cli):
    """`lobra calibrate --target executor` end to end on 3 ranks and a 9-point grid: the profile, its fit and the host
    model, with a <1,2> pipeline's stages weighed against a <1,1> rank beside it."""
    from lobra.costmodel.profile import load_profile

    out = tmp_path / "cal"
    argv = ["calibrate", "--device", "cpu", "--target", "executor", "--max-ranks", "3"]
    rc, stdout, _ = cli(
        argv + ["--seq-lens", "16,48,96", "--mbs", "1,2,4", "--repeats", "1", "--out", str(out)]
    )
    assert rc == 0
    profile = load_profile(out / "tiny_cpu_layer_time.csv")
    assert sorted(profile["tp"].unique()) == [1, 2] and len(profile) == 18 and (profile["time"] > 0).all()
    host = HostModel.from_json(out / "tiny_cpu_host.json")
    assert host.measured_num_ranks == [1, 2, 3] and set(host.contention) == {"<1,1>", "<2,1>", "<1,2>"}
    weights = host.stage_weights["<1,2>"]
    assert len(weights) == 2 and all(w > 0 for w in weights)
    assert "<1,2> stages over an even share of the whole model: x" in stdout
