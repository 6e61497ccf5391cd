import json

import pandas as pd
import pytest
from lobra.analysis.sweep import WALL_CLOCK_COLUMNS, RunSpec, expand_grid, parse_vary, run_sweep, select_tasks
from lobra.traces import load_scenario, load_workload

GRID = "--model llama2-7b --gpu a100-40gb --steps 2"


def test_one_row_per_run_in_grid_order(cli, tasks_file, tmp_path):
    rc, out, err = cli(
        f"sweep --tasks {tasks_file} {GRID} --vary num-gpus=2,4 --vary planner=lobra,task-fused"
        f" --out {tmp_path} --json"
    )
    assert rc == 0, err
    rows = json.loads(out)
    assert [(r["num_gpus"], r["planner"]) for r in rows] == [
        (2, "lobra"),
        (2, "task-fused"),
        (4, "lobra"),
        (4, "task-fused"),
    ]
    assert [r["run"] for r in rows] == [0, 1, 2, 3]
    assert all(r["steps"] == 2 and r["gpu_seconds_per_step"] > 0 and r["plan"] for r in rows)
    # a 4-GPU run uses 4 GPUs for the whole step
    assert rows[3]["gpu_seconds_per_step"] == pytest.approx(4 * rows[3]["step_time_s"])
    table = pd.read_parquet(tmp_path / "sweep.parquet")
    assert len(table) == 4 and table.equals(pd.read_csv(tmp_path / "sweep.csv").astype(table.dtypes))


def test_table_output_names_the_varied_columns(cli, tasks_file, tmp_path):
    rc, out, _ = cli(
        f"sweep --tasks {tasks_file} {GRID} --num-gpus 4 --vary num-buckets=4,8 --out {tmp_path}"
    )
    assert rc == 0
    assert "num_buckets" in out.splitlines()[0] and "2 runs" in out


def test_deterministic_under_a_seed_whatever_the_workers(tasks_file):
    base = RunSpec(tasks=str(tasks_file), model="llama2-7b", gpu="a100-40gb", steps=2)
    specs = expand_grid(base, [parse_vary("num-gpus=2,4"), parse_vary("planner=lobra-plus,task-fused")])
    one, again, two = run_sweep(specs, 1), run_sweep(specs, 1), run_sweep(specs, 2)
    drop = list(WALL_CLOCK_COLUMNS)
    pd.testing.assert_frame_equal(one.drop(columns=drop), again.drop(columns=drop))
    pd.testing.assert_frame_equal(one.drop(columns=drop), two.drop(columns=drop))
    other = run_sweep([specs[0].__class__(**{**specs[0].__dict__, "seed": 1})], 1)
    assert other["gpu_seconds_per_step"][0] != one["gpu_seconds_per_step"][0]


def test_runs_of_one_planning_problem_share_the_plan(tasks_file):
    base = RunSpec(tasks=str(tasks_file), model="llama2-7b", gpu="a100-40gb", num_gpus=4, steps=2)
    specs = [
        RunSpec(**{**base.__dict__, "policy": "a"}),
        RunSpec(**{**base.__dict__, "policy": "b"}),  # the same run under another name: simulated once
        RunSpec(**{**base.__dict__, "num_buckets": 4}),
        RunSpec(**{**base.__dict__, "dispatcher": "length", "bucketing": "pow2"}),
    ]
    df = run_sweep(specs, 1)
    assert list(df["policy"]) == ["a", "b", "lobra", "lobra+length"]
    assert df["planning_time_s"].nunique() == 1 and df["plan"].nunique() == 1
    assert df.loc[0].drop(["policy", "run"]).equals(df.loc[1].drop(["policy", "run"]))
    assert list(df["num_buckets"]) == [16, 16, 4, 16] and df["bucketing"][3] == "pow2"
    assert df["padding_ratio"][2] > df["padding_ratio"][0]  # fewer buckets pad more


def test_vary_gpu_type_on_a_tasks_file(cli, tasks_file, tmp_path):
    rc, out, _ = cli(
        f"sweep --tasks {tasks_file} {GRID} --num-gpus 2 --vary gpu=a100-40gb,h100-80gb --out {tmp_path} --json"
    )
    rows = json.loads(out)
    assert rc == 0 and [r["gpu"] for r in rows] == ["a100-40gb", "h100-80gb"]
    assert rows[1]["step_time_s"] < rows[0]["step_time_s"]  # an H100 is faster than an A100


def test_num_tasks_cuts_grows_and_repeats(tasks_file):
    w = load_workload(tasks_file)
    assert select_tasks(w, 1).names == ["short"]
    grown = select_tasks(w, 5)
    assert grown.names == ["short", "long", "short-2", "long-2", "short-3"]
    assert grown.task("long-2").global_batch_size == 8
    # the scalability scenario grows from the paper's 12 datasets, then repeats its own 4 under new names
    four = load_scenario("paper-70b-4task").workload
    twelve = load_scenario("paper-70b").workload
    sixteen = select_tasks(four, 16, twelve)
    assert sixteen.names[:4] == four.names and sorted(sixteen.names[:12]) == sorted(twelve.names)
    assert sixteen.names[12:] == [f"{n}-2" for n in four.names]


@pytest.mark.slow
def test_the_ray_backend_gives_the_local_table(tasks_file):
    """A local Ray of 2 CPUs started for the sweep (and stopped after): the same rows as local processes; a run's
    error comes back as its own one-line error, not Ray's."""
    pytest.importorskip("ray")
    from lobra.analysis.sweep import SweepError

    base = RunSpec(tasks=str(tasks_file), model="llama2-7b", gpu="a100-40gb", steps=2)
    specs = expand_grid(base, [parse_vary("num-gpus=2,4"), parse_vary("planner=lobra-plus,task-fused")])
    drop = list(WALL_CLOCK_COLUMNS)
    local = run_sweep(specs, 2).drop(columns=drop)
    ray = run_sweep(specs, 2, backend="ray").drop(columns=drop)
    pd.testing.assert_frame_equal(local, ray)
    impossible = [RunSpec(tasks=str(tasks_file), model="llama2-70b", gpu="a100-40gb", num_gpus=1, steps=2)]
    with pytest.raises(SweepError, match=r"^run .* on 1 GPUs, lobra: no parallel config of llama2-70b"):
        run_sweep(impossible, 2, backend="ray")


@pytest.mark.parametrize(
    "args, message",
    [
        ("--vary num-gpus=2,4 --address auto", "--address names a Ray cluster: use it with --backend ray"),
        ("--vary num-gpus", "--vary must be KEY=V1,V2"),
        ("--vary num-gpus=2,", "--vary must be KEY=V1,V2"),
        ("--vary gpus=2,4", "unknown --vary key 'gpus'"),
        ("--vary planner=nope", "unknown planner 'nope'"),
        ("--vary gpu=h900", "unknown GPU 'h900'"),
        ("--vary num-gpus=two", "--vary num-gpus: bad value"),
        ("--vary num-gpus=0", "num-gpus must be a positive integer"),
        ("--vary num-gpus=2,2", "a value is repeated"),
        ("--vary num-gpus=2 --vary num-gpus=4", "--vary num-gpus is given twice"),
        ("--vary packing=maybe", "--vary packing: bad value"),
        ("", "give at least one --vary"),
    ],
)
def test_bad_input_is_one_line_and_status_2(cli, tasks_file, tmp_path, args, message):
    rc, out, err = cli(f"sweep --tasks {tasks_file} {GRID} --num-gpus 2 {args} --out {tmp_path}")
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("lobra: error: ") and message in err


@pytest.mark.parametrize(
    "args, message",
    [
        ("--scenario paper-70b-4task --vary num-gpus=8", "runs on 16..256 GPUs"),
        ("--scenario nope --vary num-gpus=8", "unknown scenario 'nope'"),
        ("--vary num-gpus=2", "a sweep needs exactly one of --scenario and --tasks"),
    ],
)
def test_bad_workload_is_one_line_and_status_2(cli, args, message):
    rc, _, err = cli(f"sweep {args}")
    assert rc == 2 and err.count("\n") == 1 and message in err


def test_tasks_file_without_its_hardware(cli, tasks_file):
    rc, _, err = cli(f"sweep --tasks {tasks_file} --vary num-gpus=2")
    assert rc == 2 and "needs --model, --gpu" in err
