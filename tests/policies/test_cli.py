import json

import pandas as pd
import pytest


@pytest.fixture()
def tasks(tmp_path):
    path = tmp_path / "tasks.yaml"
    path.write_text(
        "tasks:\n"
        "  - {name: a, trace: gsm8k_train, global_batch_size: 16, max_len: 2048}\n"
        "  - {name: b, trace: alpacaeval_gpt4turbo, global_batch_size: 8, max_len: 2048}\n"
    )
    return path


def test_plan_json_keys_and_lower_bound(cli, tasks):
    rc, out, _ = cli(
        f"plan --tasks {tasks} --model llama2-7b --gpu a100-40gb --num-gpus 4 --planner lobra-plus "
        "--sample-steps 2 --workers 1 --json"
    )
    result = json.loads(out)
    assert rc == 0
    assert {"plan", "step_time_s", "gpu_seconds_per_step", "planning_time_s"} <= set(result)
    assert result["gpu_seconds_per_step"] >= 0.98 * result["lower_bound_gpu_seconds"]
    assert result["gpu_seconds_per_step"] == result["step_time_s"] * 4


def test_bench_dispatch_writes_results(cli, tasks, tmp_path):
    rc, out, _ = cli(
        f"bench dispatch --tasks {tasks} --model llama2-7b --gpu a100-40gb --num-gpus 4 "
        f"--plan '<1,1>x2 <2,1>x1' --steps 3 --time-limit 1 --out {tmp_path} --json"
    )
    rows = {r["dispatcher"]: r for r in json.loads(out)}
    assert rc == 0 and set(rows) == {"uniform", "length", "balanced", "balanced-ilp"}
    assert rows["balanced-ilp"]["mean_gap_pct"] == 0
    df = pd.read_csv(next(tmp_path.glob("dispatch_*.csv")))
    assert len(df) == 12 and (df["makespan_s"] > 0).all()


def test_bench_plan_over_cluster_sizes(cli, tasks, tmp_path):
    rc, out, _ = cli(
        f"bench plan --tasks {tasks} --model llama2-7b --gpu a100-40gb --num-gpus 4 "
        f"--gpus 2,4 --planners lobra --workers 1 --out {tmp_path} --json"
    )
    rows = json.loads(out)
    assert rc == 0 and [r["num_gpus"] for r in rows] == [2, 4]
    assert all(r["planning_time_s"] > 0 for r in rows)
