"""`lobra traces list|show` and `lobra scenarios list|show`, and the import guard of the traces package."""

import json
import subprocess
import sys

import pytest
from lobra.traces import shipped_traces

from lobra.cli import COMMANDS, main


def _json(argv, capsys):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_commands_registered():
    assert "traces" in COMMANDS and "scenarios" in COMMANDS


def test_traces_list(capsys):
    rows = _json(["traces", "list", "--json"], capsys)
    assert [r["name"] for r in rows] == shipped_traces()
    gsm = next(r for r in rows if r["name"] == "gsm8k_train")
    assert gsm["count"] == 7473 and gsm["max"] == 607 and gsm["p90"] == 333
    assert main(["traces", "list"]) == 0
    out = capsys.readouterr().out
    assert "qmsum_goldspan" in out and "skewness" in out.splitlines()[0]


def test_traces_show_json_and_plot(tmp_path, capsys):
    png = tmp_path / "plots" / "hist.png"
    info = _json(["traces", "show", "qmsum_goldspan", "--json", "--plot", str(png)], capsys)
    assert info["count"] == 1576 and info["p99"] == pytest.approx(7490.2, abs=0.1)
    assert info["mean_response"] == pytest.approx(81.3, abs=0.05)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    csv = tmp_path / "mine.csv"
    csv.write_text("total_tokens\n1\n2\n3\n10\n")
    assert main(["traces", "show", str(csv)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"mine: {csv}") and "kurtosis" in out


def test_scenarios_list(capsys):
    rows = {r["name"]: r for r in _json(["scenarios", "list", "--json"], capsys)}
    assert rows["paper-70b"]["tasks"] == 12 and rows["paper-70b"]["sequences_per_step"] == 1696
    assert (rows["tiny-cpu"]["model"], rows["tiny-cpu"]["gpu"], rows["tiny-cpu"]["num_gpus"]) == (
        "tiny",
        "cpu",
        4,
    )
    assert main(["scenarios", "list"]) == 0
    assert "paper-70b-4task" in capsys.readouterr().out


def test_scenarios_show(tmp_path, capsys):
    info = _json(["scenarios", "show", "paper-70b-4task", "--num-gpus", "128", "--json"], capsys)
    assert info["num_gpus"] == 128 and [t["task"] for t in info["task_list"]] == [
        "Evol-Instruct",
        "CommitPackFT",
        "BillSum",
        "PubMedQA",
    ]
    bill = info["task_list"][2]
    assert bill["mean"] == pytest.approx(3903, rel=0.01) and bill["global_batch_size"] == 32
    path = tmp_path / "mix.yaml"
    path.write_text(
        "tasks:\n  - {name: a, trace: leval_open, global_batch_size: 4, max_len: 8192, overflow: drop}\n"
    )
    info = _json(
        [
            "scenarios",
            "show",
            "--tasks",
            str(path),
            "--model",
            "llama2-7b",
            "--gpu",
            "a100-40gb",
            "--num-gpus",
            "2",
            "--json",
        ],
        capsys,
    )
    task = info["task_list"][0]
    assert info["name"] == "mix" and task["max"] <= 8192 and task["overflowing"] > 0
    assert task["samples"] == 940 and task["steps_per_epoch"] == (940 - task["overflowing"]) // 4
    assert main(["scenarios", "show", "real-7b"]) == 0
    assert "leval_open" in capsys.readouterr().out


def test_import_traces_loads_no_heavy_dependency():
    code = (
        "import sys, lobra.traces, lobra.traces.sampler, lobra.traces.scenario, lobra.traces.synthetic, "
        "lobra.traces.tasks, lobra.traces.trace; "
        "heavy = ('torch', 'simpy', 'transformers', 'datasets', 'matplotlib'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"
