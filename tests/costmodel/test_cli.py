import json
import subprocess
import sys
from pathlib import Path

import pytest
from lobra.costmodel.profile import shipped_path

A100 = str(shipped_path("llama2_7b_a100_40gb_layer_time.csv"))
H100_8B = str(shipped_path("llama3_8b_h100_80gb_layer_time.csv"))


def test_fit_then_predict_round_trip(tmp_path, cli):
    rc, out, _ = cli(["costmodel", "fit", "--profile", A100, "--out", str(tmp_path / "fit.json")])
    assert rc == 0 and "mape_pct" in out
    (tmp_path / "rows.csv").write_text("tp,seq_len,mbs\n1,128,1\n8,16384,1\n")
    rc, out, _ = cli(
        [
            "costmodel",
            "predict",
            "--fit",
            str(tmp_path / "fit.json"),
            "--input",
            str(tmp_path / "rows.csv"),
            "--json",
        ]
    )
    rows = json.loads(out)
    assert rc == 0 and [r["seq_len"] for r in rows] == [128, 16384]
    assert rows[0]["pred_ms"] == pytest.approx(3.08, rel=0.15)  # measured 3.08 ms
    assert rows[1]["pred_ms"] == pytest.approx(29.48, rel=0.1)  # measured 29.48 ms


def test_predict_by_model_and_gpu_uses_shipped_profile_or_analytical(tmp_path, cli):
    (tmp_path / "rows.csv").write_text("tp,seq_len,mbs\n2,1024,2\n")
    _, out, _ = cli(
        [
            "costmodel",
            "predict",
            "--model",
            "llama2-7b",
            "--gpu",
            "a100-40gb",
            "--input",
            str(tmp_path / "rows.csv"),
            "--json",
        ]
    )
    _, out_h100, _ = cli(
        [
            "costmodel",
            "predict",
            "--model",
            "llama2-7b",
            "--gpu",
            "h100-80gb",
            "--input",
            str(tmp_path / "rows.csv"),
            "--json",
        ]
    )
    a100, h100 = json.loads(out)[0]["pred_ms"], json.loads(out_h100)[0]["pred_ms"]
    assert a100 == pytest.approx(9.53, rel=0.1)  # the profile row tp=2, 1024, mbs 2 measured 9.53 ms
    assert 0 < h100 < a100


def test_analytical_fit_on_three_rows_predicts_another_model(tmp_path, cli):
    (tmp_path / "rows.csv").write_text(
        "tp,seq_len,mbs,time\n1,512,1,1.5264\n1,512,4,4.6617\n1,512,16,17.385\n"
    )
    cal = tmp_path / "cal.json"
    fit = [
        "costmodel",
        "fit",
        "--analytical",
        "--model",
        "llama3-8b",
        "--gpu",
        "h100-80gb",
        "--lora-targets",
        "all",
    ]
    rc, out, _ = cli([*fit, "--profile", str(tmp_path / "rows.csv"), "--out", str(cal)])
    assert rc == 0 and "stack" in out and json.loads(cal.read_text())["rows"] == 3
    predict = ["costmodel", "predict", "--fit", str(cal), "--input", str(tmp_path / "rows.csv"), "--json"]
    rc, own, err = cli(predict)
    assert rc == 0 and "stack of rows.csv (llama3-8b on h100-80gb)" in err
    for row, measured in zip(json.loads(own), (1.5264, 4.6617, 17.385), strict=True):
        assert row["pred_ms"] == pytest.approx(measured, rel=0.05)
    rc, big, _ = cli([*predict, "--model", "llama3-70b"])
    assert rc == 0 and all(
        b["pred_ms"] > 2 * o["pred_ms"] for b, o in zip(json.loads(big), json.loads(own), strict=True)
    )
    # without a fit, predict says which stack it assumes: the shipped A100 calibration's
    rc, _, err = cli(
        [
            "costmodel",
            "predict",
            "--model",
            "llama3-70b",
            "--gpu",
            "h100-80gb",
            "--input",
            str(tmp_path / "rows.csv"),
        ]
    )
    assert rc == 0 and "stack of shipped llama2_7b_a100_40gb_layer_time.csv" in err


def test_max_tokens_json(cli):
    rc, out, _ = cli("costmodel max-tokens --model llama2-7b --gpu a100-40gb --num-tasks 6 --json")
    table = {(r["tp"], r["pp"]): r["max_tokens"] for r in json.loads(out)}
    assert rc == 0 and table[(1, 1)] == 2048 and table[(8, 1)] == 16384 and table[(2, 8)] == 8192


def test_replica_time_table(cli):
    rc, out, _ = cli(
        "costmodel replica-time --model llama2-7b --gpu a100-40gb --plan '<1,1>x2 <2,2>x1' --seq-len 1024 --mbs 2 "
        "--micro-batches 3 --json"
    )
    rows = json.loads(out)
    assert rc == 0 and [r["config"] for r in rows] == ["<1,1>", "<2,2>"]
    assert rows[1]["pp_bubble_s"] > 0 and rows[0]["pp_bubble_s"] == 0


def test_check_reports_heldout_error(cli):
    rc, out, _ = cli(["costmodel", "check", "--profile", A100, "--json"])
    result = json.loads(out)
    assert rc == 0 and result["fit_heldout_mape_pct"]["all"] <= 4.0
    assert set(result["analytical_leave_one_tp_out_mape_pct"]) == {"1", "2", "4", "8", "all"}


def _bad_csv(tmp_path, name, body):
    path = tmp_path / f"{name}.csv"
    path.write_text(body)
    return str(path)


@pytest.mark.parametrize(
    "args,needle",
    [
        ("costmodel fit --profile {missing_cols} --out {out}", "lacks column(s) mbs"),
        ("costmodel fit --profile {negative} --out {out}", "values must be positive"),
        ("costmodel fit --profile {zero} --out {out}", "values must be positive"),
        ("costmodel fit --profile /no/such.csv --out {out}", "does not exist"),
        ("costmodel max-tokens --model gpt-9 --gpu a100-40gb", "unknown model 'gpt-9'"),
        ("costmodel max-tokens --model tiny --gpu v100", "unknown GPU 'v100'"),
        ("costmodel max-tokens --model tiny --gpu cpu --num-tasks 0", "num_tasks"),
        ("costmodel predict --model llama2-7b --gpu a100-40gb --input {tp3}", "tp=3 does not divide"),
        (
            "costmodel replica-time --model llama2-7b --gpu a100-40gb --plan '<1,1>x2 <2,' --seq-len 128",
            "cannot parse plan",
        ),
        (
            "costmodel replica-time --model llama2-7b --gpu a100-40gb --plan '<3,1>x1' --seq-len 128",
            "tp=3 does not divide",
        ),
        (
            "costmodel replica-time --model llama2-7b --gpu a100-40gb --plan '<1,1>x1' --seq-len 8192",
            "does not fit <1,1>",
        ),
        ("costmodel max-tokens --model tiny", "the following arguments are required: --gpu"),
        ("costmodel fit --profile x.csv --out y.json --bogus", "unrecognized arguments"),
        ("costmodel fit --analytical --profile {h100} --out {out}", "--analytical needs --model and --gpu"),
        (
            "costmodel fit --analytical --model tiny --gpu cpu --profile {two_rows} --out {out}",
            "at least 3 profile rows",
        ),
        (
            "costmodel fit --analytical --model tiny --gpu cpu --lora-targets q_proj,wq --profile {h100} --out {out}",
            "unknown module(s) ['wq']",
        ),
        (
            "costmodel predict --model llama3-70b --gpu h100-80gb --profile {h100} --input {tp3}",
            "measured llama3-8b, not llama3-70b",
        ),
        ("costmodel predict --input {tp3}", "predict needs --fit, or --model and --gpu"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, cli, args, needle):
    files = {
        "missing_cols": _bad_csv(tmp_path, "cols", "tp,seq_len,time\n1,128,3\n"),
        "negative": _bad_csv(tmp_path, "neg", "tp,seq_len,mbs,time\n1,-5,1,3\n"),
        "zero": _bad_csv(tmp_path, "zero", "tp,seq_len,mbs,time\n1,0,1,3\n"),
        "tp3": _bad_csv(tmp_path, "tp3", "tp,seq_len,mbs\n3,128,1\n"),
        "two_rows": _bad_csv(tmp_path, "two", "tp,seq_len,mbs,time\n1,128,1,3\n1,256,1,4\n"),
        "h100": H100_8B,
        "out": str(tmp_path / "fit.json"),
    }
    code, _, err = cli(args.format(**files))
    assert code == 2
    assert err.count("\n") == 1 and needle in err, err
    assert not Path(files["out"]).exists()  # nothing half-written


def test_console_script_exit_status():
    """The installed entry point itself: a bad model is exit 2 with one line on stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "lobra.cli", "costmodel", "max-tokens", "--model", "nope", "--gpu", "cpu"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "lobra: error: unknown model 'nope'; choose from llama2-7b, "
        "llama2-13b, llama2-70b, llama3-8b, llama3-70b, qwen2.5-7b, "
        "qwen2.5-32b, qwen2.5-72b, paper-32b, tiny or a config.json path"
    ]


def test_max_tokens_takes_a_count_or_a_task_file(cli, tmp_path):
    """--num-tasks N adapters, or --tasks FILE (the adapters of its tasks, as --tasks means everywhere)."""
    tasks = tmp_path / "t.yaml"
    tasks.write_text(
        "tasks:\n"
        + "".join(
            f"  - {{name: t{i}, trace: gsm8k_train, global_batch_size: 4, max_len: 512}}\n" for i in range(6)
        )
    )
    base = "costmodel max-tokens --model llama2-7b --gpu a100-40gb --json"
    rc, by_count, _ = cli(f"{base} --num-tasks 6")
    rc2, by_file, _ = cli(f"{base} --tasks {tasks}")
    assert rc == rc2 == 0 and json.loads(by_count) == json.loads(by_file)
    assert json.loads(by_count) != json.loads(cli(f"{base} --num-tasks 1")[1])  # more adapters, less room
    rc, _, err = cli(f"{base} --num-tasks 6 --tasks {tasks}")
    assert rc == 2 and "not allowed with argument" in err
