import json

import numpy as np
import pandas as pd
import pytest


def test_simulate_json_summary(cli, tmp_path):
    rc, out, _ = cli(
        f"simulate --scenario real-7b --plan '<1,1>x8 <8,1>x1' --steps 2 --out {tmp_path} --json"
    )
    summary = json.loads(out)
    assert rc == 0
    assert {"step_time_s", "gpu_seconds_per_step", "plan", "steps"} <= set(summary)
    assert summary["steps"] == 2 and summary["plan"] == "<1,1>x8 <8,1>x1"
    assert summary["gpu_seconds_per_step"] == pytest.approx(16 * summary["step_time_s"])
    assert (tmp_path / "replicas.parquet").exists() and (tmp_path / "trace.json").exists()
    assert summary["traced_steps"] == 2  # every step, by default
    # without --out there is no trace.json to record for: nothing is traced
    rc, out, _ = cli("simulate --scenario real-7b --plan '<1,1>x8 <8,1>x1' --steps 2 --json")
    assert rc == 0 and json.loads(out)["traced_steps"] == 0
    rc, out, err = cli(f"simulate --scenario real-7b --steps 2 --trace-events 0 --out {tmp_path / 'bad'}")
    assert rc == 2 and err.strip() == "lobra: error: trace_events must be a positive integer, got 0"
    assert not (tmp_path / "bad").exists()


def test_sequences_longer_than_the_plan_are_an_error_unless_asked_to_cut_them(cli, tmp_path):
    """A plan of 1-GPU replicas (2K tokens) cannot hold real-7b's long sequences: the run used to cut them
    silently (the tasks' overflow applies at their max_len only); now an error, unless --beyond-capacity says."""
    rc, out, err = cli(
        f"simulate --scenario real-7b --plan '<1,1>x2' --steps 1 --json --out {tmp_path / 'no'}"
    )
    assert rc == 2 and out == "" and not (tmp_path / "no").exists()
    assert (
        "lobra: error: task 'alpacaeval' has sequences of 2,211 tokens, but the largest replica of plan"
        in err
    )
    assert "<1,1>x2 holds 2,048" in err and "--beyond-capacity truncate|drop" in err
    rc, out, _ = cli(
        "simulate --scenario real-7b --plan '<1,1>x2' --steps 1 --json --beyond-capacity truncate"
    )
    summary = json.loads(out)
    assert rc == 0 and summary["steps"] == 1
    # and it says so: the cut share of the sampled tokens, which a plan holding 16K cuts none of
    rc, wide, _ = cli("simulate --scenario real-7b --plan '<8,1>x1' --steps 1 --json")
    assert summary["cut_pct"] == summary["truncated_pct"] > json.loads(wide)["cut_pct"] == 0.0
    # the repro: a fixed 64K workload on 2K replicas exited 0 with 64 x 2,048 tokens
    what_if = "simulate --model llama2-7b --gpu a100-40gb --plan '<1,1>x16' --workload fixed:65536 --global-batch 64"
    rc, out, err = cli(f"{what_if} --json")
    assert rc == 2 and "has sequences of 65,536 tokens" in err
    rc, out, _ = cli(f"{what_if} --json --beyond-capacity drop")
    summary = json.loads(out)
    assert rc == 0 and summary["dropped_pct"] == 100.0


def test_what_if_matches_costmodel_replica_time(cli):
    _, out, _ = cli(
        "simulate --model llama2-7b --gpu a100-40gb --plan '<2,2>x1' --workload fixed:2048 --global-batch 8 "
        "--mbs 2 --json"
    )
    _, cm, _ = cli(
        "costmodel replica-time --model llama2-7b --gpu a100-40gb --plan '<2,2>x1' --seq-len 2048 --mbs 2 "
        "--micro-batches 4 --json"
    )
    assert json.loads(out)["step_time_s"] == pytest.approx(json.loads(cm)[0]["total_s"], rel=1e-12)


def test_dispatch_flags_reach_the_simulated_dispatcher(cli):
    base = "simulate --scenario real-7b --plan '<1,1>x8 <8,1>x1' --steps 1 --json"
    padding = {}
    for flags in (
        "",
        "--packing",
        "--bucketing pow2",
        "--num-buckets 2",
        "--dispatcher balanced-ilp --ilp-time-limit 1",
    ):
        rc, out, _ = cli(f"{base} {flags}")
        assert rc == 0
        padding[flags] = json.loads(out)["padding_ratio"]
    assert padding["--packing"] == 0 < padding[""]
    assert padding["--bucketing pow2"] > padding[""] and padding["--num-buckets 2"] > padding[""]


@pytest.mark.slow
def test_compare_json_has_every_policy(cli, tmp_path):
    rc, out, _ = cli(f"compare --scenario paper-7b --steps 2 --workers 1 --json --out {tmp_path}")
    rows = {r["policy"]: r for r in json.loads(out)}
    assert rc == 0
    assert set(rows) == {
        "task-sequential",
        "task-fused",
        "lobra-length",
        "lobra-balanced",
        "lobra",
        "lobra-plus",
        "optimum",
        "lower-bound",
        "integer-bound",
    }
    gpu_s = {name: row["gpu_seconds_per_step"] for name, row in rows.items()}
    assert gpu_s["lower-bound"] <= gpu_s["integer-bound"]
    for name, value in gpu_s.items():  # every run, the optimum too, is above both bounds
        if name != "lower-bound":
            assert value >= gpu_s["integer-bound"] * 0.9999, name
    # the optimum is the best plan for these very steps under lobra-plus's dispatch: lobra-plus cannot beat it
    assert gpu_s["optimum"] <= gpu_s["lobra-plus"] * 1.0001
    assert rows["lobra"]["gpu_seconds_per_step"] < rows["task-fused"]["gpu_seconds_per_step"]
    assert (tmp_path / "compare.png").stat().st_size > 10_000 and (tmp_path / "compare.csv").exists()


@pytest.mark.parametrize(
    "args,needle",
    [
        ("simulate --scenario real-7b --plan '<8,1>x3'", "does not fit"),
        (
            "simulate --model llama2-7b --gpu a100-40gb --plan '<1,1>x1' --workload fixed:x --global-batch 2",
            "integer length",
        ),
        (
            "simulate --model llama2-7b --gpu a100-40gb --plan '<1,1>x1' --workload fixed:512",
            "--global-batch",
        ),
        (
            "simulate --model llama2-7b --gpu a100-40gb --plan '<1,1>x1' --workload fixed:2048 --global-batch 4 "
            "--mbs 2",
            "does not fit <1,1>",
        ),
        ("simulate --scenario real-7b --fail soon", "TIME:GPU"),
        ("simulate --scenario real-7b --fail 5:99", "GPUs 0..15"),
        ("simulate --scenario real-7b --fail nan:3", "--fail nan:3: a failure's time must be finite seconds"),
        ("simulate --scenario real-7b --fail inf:3", "must be finite seconds >= 0, got inf"),
        ("simulate --scenario real-7b --fail 5:-1", "a failure's GPU must be an id >= 0"),
        ("simulate --scenario real-7b --dispatcher magic", "unknown dispatcher"),
        ("simulate --scenario nope", "unknown scenario"),
        ("compare --scenario paper-7b --steps 0", "--steps"),
        ("plan --scenario paper-7b --planner greedy", "unknown planner"),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, args, needle):
    rc, _, err = cli(args)
    assert rc == 2
    assert err.count("\n") == 1 and needle in err, err


@pytest.mark.parametrize(
    "args",
    [
        "--plan '<8,1>x1' --fail 3:12 --steps 3",  # a GPU no replica uses
        "--planner task-fused --fail 20:3 --fail 40:2 --steps 5",  # two failures, one during the re-plan
    ],
)
def test_failures_that_miss_the_replicas_or_come_twice_simulate_to_the_end(cli, args):
    """The step waited on "replicas done or a failure"; a failure disarmed the "done" half for good (SimPy
    disarms a nested condition once its parent fires), and the run ended in a raw RuntimeError."""
    rc, out, err = cli(f"simulate --scenario real-7b {args} --json")
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["steps"] == int(args.rsplit(" ", 1)[1])


def test_a_failure_at_the_start_or_two_at_once_are_applied_at_their_time(cli, tmp_path):
    """A GPU failed at t=0 is out before the first plan (no failed attempt); two failing together are both logged at
    t=20 and the re-plan sees both (GPU 4 was logged at t=50, after the re-plan, and cost a second attempt)."""
    rc, out, _ = cli(
        f"simulate --scenario real-7b --planner task-fused --fail 0:3 --steps 2 --out {tmp_path / 'a'} --json"
    )
    assert rc == 0 and json.loads(out)["failed_attempts"] == 0
    events = pd.read_csv(tmp_path / "a" / "events.csv")
    assert events.iloc[0].tolist() == [0.0, "failure", "GPU 3"] and events.iloc[1]["kind"] == "plan"
    args = f"--fail 20:3 --fail 20:4 --steps 3 --out {tmp_path / 'b'} --json"
    rc, out, _ = cli(f"simulate --scenario real-7b --planner task-fused {args}")
    assert rc == 0 and json.loads(out)["failed_attempts"] == 1
    events = pd.read_csv(tmp_path / "b" / "events.csv")
    failures = events[events["kind"] == "failure"]
    assert failures["time_s"].tolist() == [20.0, 20.0] and failures["detail"].tolist() == ["GPU 3", "GPU 4"]


def test_a_re_plan_places_on_the_surviving_nodes_and_a_dead_cluster_ends_cleanly(cli):
    """GPU 3 then GPU 12 fail: 14 GPUs in two nodes of 7, where no TP=8 group fits; the planner's count of GPUs
    used to give a plan that did not place ("does not fit 14 working GPUs") and the run wrote nothing. Every GPU
    failing ends the run with its reason, not "number of GPUs must be a positive integer, got 0"."""
    rc, out, err = cli("simulate --scenario real-7b --fail 20:3 --fail 40:12 --steps 4 --json")
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["steps"] == 4 and summary["stopped"] is None and len(summary["plans"]) >= 2
    assert "<8," not in summary["plans"][-1]  # after both: no node has 8 working GPUs
    every = " ".join(f"--fail 5:{g}" for g in range(16))
    rc, out, err = cli(f"simulate --scenario real-7b --plan '<8,1>x1' {every} --steps 4 --json")
    assert rc == 0, err
    assert json.loads(out)["stopped"] == "every GPU of the cluster has failed"


def test_simulate_out_is_checked_before_the_run(cli, tmp_path, monkeypatch):
    """--out into an unwritable place used to fail only after the whole simulation."""
    from lobra.commands import simulate

    def never(self):
        raise AssertionError("simulated although --out cannot be written")

    monkeypatch.setattr(simulate.Simulator, "run", never)
    afile = tmp_path / "afile"
    afile.write_text("")
    cases = {
        str(afile): "exists and is not a folder",
        str(afile / "sub"): f"{afile} is not a folder",
        "/proc/lobra-out": "cannot write in output folder /proc/lobra-out",  # read-only even for root
    }
    for out, message in cases.items():
        rc, _, err = cli(f"simulate --scenario real-7b --plan '<8,1>x1' --steps 1 --out {out}")
        assert rc == 2 and err.count("\n") == 1 and message in err, err


def test_simulate_out_is_replaced_whole_or_not_at_all(cli, tmp_path, monkeypatch):
    """A full disk while writing used to leave new tables beside a stale summary.json (or a truncated trace.json):
    now the run's files are staged beside --out and move in only when every one is written."""
    import errno
    import stat

    out = tmp_path / "run"
    base = "simulate --scenario real-7b --plan '<8,1>x1' --json --out " + str(out)
    rc, first, _ = cli(base + " --steps 1")
    assert rc == 0
    (out / "notes.txt").write_text("mine")  # another file in the folder: left alone
    files = sorted(p.name for p in out.iterdir())
    assert {"summary.json", "trace.json", "steps.csv", "steps.parquet", "events.csv"} <= set(files)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in out.iterdir() if p.name != "notes.txt")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    from lobra.sim import records

    real = records.write_json

    def full_disk(path, payload, indent=2):
        if path.name == "trace.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, payload, indent)

    monkeypatch.setattr(records, "write_json", full_disk)
    rc, _, err = cli(base + " --steps 2")
    assert rc == 2 and err.count("\n") == 1 and "No space left on device" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the first run's outputs, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no stage left behind
    monkeypatch.setattr(records, "write_json", real)
    rc, second, _ = cli(base + " --steps 2")
    assert rc == 0 and json.loads((out / "summary.json").read_text()) == json.loads(second) != json.loads(
        first
    )
    assert (out / "notes.txt").read_text() == "mine"


def test_a_trace_longer_than_any_config_is_not_planned_silently(cli, tmp_path):
    """A trace of 50K-200K tokens was planned at 16,384 tokens without a word."""
    rng = np.random.default_rng(1)
    lengths = rng.integers(50_000, 200_000, 300)
    trace = pd.DataFrame(
        {
            "sample_id": range(300),
            "prompt_tokens": lengths - 10,
            "response_tokens": 10,
            "total_tokens": lengths,
        }
    )
    trace.to_csv(tmp_path / "long.csv", index=False)
    tasks = tmp_path / "long.yaml"
    tasks.write_text("tasks:\n  - {name: longctx, trace: long.csv, max_len: 262144, global_batch_size: 8}\n")
    base = f"plan --tasks {tasks} --model llama2-7b --gpu a100-40gb --num-gpus 16 --json"
    rc, out, err = cli(base)
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert f"task 'longctx' has sequences of {int(lengths.max()):,} tokens" in err
    assert (
        "the largest config of llama2-7b that fits 16 x a100-40gb holds 16,384 (the cost model's limit)"
        in err
    )
    rc, out, _ = cli(base + " --beyond-capacity truncate")
    result = json.loads(out)
    assert rc == 0 and result["beyond_capacity"] == "truncate"
    expected = 100 * (1 - 16384 / lengths.mean())  # every sequence cut to 16K: about the whole-trace share
    assert result["cut_pct"] == pytest.approx(expected, abs=5)


def test_an_online_run_prints_every_plan_with_when_and_why(cli):
    rc, out, _ = cli("simulate --scenario online-7b --reconfig-s 10")
    assert rc == 0
    lines = out.split("plans over the run:")[1].strip().splitlines()
    assert lines[0].split()[2] == "plan" and len(lines) >= 3
    times = [float(line.split()[0]) for line in lines]
    assert times == sorted(times) and all("reconfigure tasks:" in line for line in lines[1:])
