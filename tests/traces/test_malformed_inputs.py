"""Malformed task files and traces: ONE line `lobra: error: ...` naming file, task and field; exit 2."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from lobra.cli import main

TASK = "{name: t1, trace: codealpaca_2k, global_batch_size: 8, max_len: 512"  # closed by each case

CSV_FILES = {
    "empty.csv": "",
    "header_only.csv": "sample_id,prompt_tokens,response_tokens,total_tokens\n",
    "no_total.csv": "sample_id,prompt_tokens\n0,5\n",
    "negative.csv": "total_tokens\n5\n-3\n",
    "nonnumeric.csv": "total_tokens\n5\nabc\n",
    "fraction.csv": "total_tokens\n5\n12.5\n",
    "mismatch.csv": "prompt_tokens,response_tokens,total_tokens\n1,2,3\n1,2,4\n",
    "only_prompt.csv": "prompt_tokens,total_tokens\n1,3\n",
    "empty_cell.csv": "total_tokens,note\n5,a\n,b\n",
    "three.csv": "total_tokens\n5\n6\n7\n",
}


def _csv_task(csv: str, extra: str = "") -> str:
    return f"tasks:\n  - {{name: t1, trace: {csv}, global_batch_size: 2, max_len: 512{extra}}}\n"


# kind -> (task file text, fragments the error line must contain). The file name is checked for all of them.
CASES = {
    "missing field": (
        "tasks:\n  - {name: t1, trace: codealpaca_2k, max_len: 512}\n",
        ["task 't1'", "missing required field 'global_batch_size'"],
    ),
    "wrong type": (
        "tasks:\n  - {name: t1, trace: codealpaca_2k, global_batch_size: big, max_len: 512}\n",
        ["task 't1'", "global_batch_size must be a positive integer, got 'big'"],
    ),
    "bool for integer": (
        "tasks:\n  - {name: t1, trace: codealpaca_2k, global_batch_size: true, max_len: 512}\n",
        ["task 't1'", "global_batch_size must be a positive integer, got True"],
    ),
    "negative batch": (
        "tasks:\n  - {name: t1, trace: codealpaca_2k, global_batch_size: -4, max_len: 512}\n",
        ["task 't1'", "global_batch_size", "-4"],
    ),
    "zero max_len": (
        "tasks:\n  - {name: t1, trace: codealpaca_2k, global_batch_size: 8, max_len: 0}\n",
        ["task 't1'", "max_len must be a positive integer, got 0"],
    ),
    "unknown trace": (
        "tasks:\n  - {name: t1, trace: nosuch, global_batch_size: 8, max_len: 512}\n",
        ["task 't1'", "trace: unknown trace 'nosuch'"],
    ),
    "trace of wrong type": (
        "tasks:\n  - {name: t1, trace: 5, global_batch_size: 8, max_len: 512}\n",
        ["task 't1'", "trace must be a trace name"],
    ),
    "unknown key": (
        f"tasks:\n  - {TASK}, learning_rate: 0.1}}\n",
        ["task 't1'", "unknown field 'learning_rate'"],
    ),
    "bad overflow": (
        f"tasks:\n  - {TASK}, overflow: wrap}}\n",
        ["task 't1'", "overflow must be 'truncate' or 'drop', got 'wrap'"],
    ),
    "steps and epochs": (
        f"tasks:\n  - {TASK}, steps: 3, epochs: 1}}\n",
        ["task 't1'", "steps or epochs, not both"],
    ),
    "fractional steps": (
        f"tasks:\n  - {TASK}, steps: 2.5}}\n",
        ["task 't1'", "steps must be a positive integer"],
    ),
    "zero epochs": (f"tasks:\n  - {TASK}, epochs: 0}}\n", ["task 't1'", "epochs must be a positive number"]),
    "bad rank": (f"tasks:\n  - {TASK}, rank: 0}}\n", ["task 't1'", "rank must be a positive integer, got 0"]),
    "bad alpha": (f"tasks:\n  - {TASK}, alpha: -1}}\n", ["task 't1'", "alpha must be a positive number"]),
    "bad targets": (f"tasks:\n  - {TASK}, targets: [q_proj, lm_head]}}\n", ["task 't1'", "targets must be"]),
    "negative arrival": (
        f"tasks:\n  - {TASK}, arrival_s: -1}}\n",
        ["task 't1'", "arrival_s must be a number >= 0"],
    ),
    "bad task name": (
        "tasks:\n  - {name: 'a b', trace: codealpaca_2k, global_batch_size: 8, max_len: 512}\n",
        ["task 'a b'", "name must be 1-64 letters"],
    ),
    "task name too long for a file name": (
        "tasks:\n  - {name: " + "x" * 251 + ", trace: codealpaca_2k, global_batch_size: 8, max_len: 512}\n",
        ["name must be 1-64 letters", "xxx...'"],
    ),
    "task name not a string": (
        "tasks:\n  - {name: 5, trace: codealpaca_2k, global_batch_size: 8, max_len: 512}\n",
        ["task #1", "name must be 1-64 letters", "got 5"],
    ),
    "duplicate task names": (
        f"tasks:\n  - {TASK}}}\n  - {TASK}}}\n",
        ["task 't1'", "duplicate task name (also task #1)"],
    ),
    "task not a mapping": ("tasks:\n  - just-a-name\n", ["task #1", "must be a mapping"]),
    "non-mapping top level": ("- a\n- b\n", ["top level must be a mapping", "list"]),
    "empty document": ("", ["top level must be a mapping", "empty document"]),
    "missing tasks key": ("description: nothing\n", ["missing the 'tasks' key"]),
    "empty task list": ("tasks: []\n", ["'tasks' must be a non-empty list"]),
    "unknown top-level key": (f"tasks:\n  - {TASK}}}\nmodel: llama2-7b\n", ["unknown top-level key 'model'"]),
    "bad YAML syntax": ("tasks:\n  - {name: t1, trace: [\n", ["invalid YAML at line"]),
    "impossible synthetic moments": (
        "tasks:\n  - {name: t1, trace: {synthetic: {mean: 300, skewness: 3, kurtosis: 2}},"
        " global_batch_size: 8,"
        " max_len: 512}\n",
        ["task 't1'", "trace: synthetic kurtosis 2 is impossible"],
    ),
    "unreachable synthetic moments": (
        "tasks:\n  - {name: t1, trace: {synthetic: {mean: 300, skewness: 12, kurtosis: 200, samples: 100}},"
        " global_batch_size: 8, max_len: 512}\n",
        ["task 't1'", "trace: synthetic trace cannot reach"],
    ),
    "unknown synthetic key": (
        "tasks:\n  - {name: t1, trace: {synthetic: {mean: 300, skewness: 3, kurtosis: 20, std: 9}},"
        " global_batch_size: 8, max_len: 512}\n",
        ["task 't1'", "unknown synthetic field 'std'"],
    ),
    "synthetic missing kurtosis": (
        "tasks:\n  - {name: t1, trace: {synthetic: {mean: 300, skewness: 3}}, global_batch_size: 8,"
        " max_len: 512}\n",
        ["task 't1'", "synthetic lacks required field 'kurtosis'"],
    ),
    "synthetic mean above cap": (
        "tasks:\n  - {name: t1, trace: {synthetic: {mean: 3000, skewness: 1, kurtosis: 2, cap: 2048}},"
        " global_batch_size: 8, max_len: 512}\n",
        ["task 't1'", "mean must lie between 1 and the cap 2048"],
    ),
    "drop leaves too few samples": (
        f"tasks:\n  - {TASK}, overflow: drop, max_len: 50}}\n",
        ["task 't1'", "after overflow 'drop' at max_len 50", "fewer than global_batch_size 8"],
    ),
    "batch larger than trace": (
        _csv_task("three.csv").replace("global_batch_size: 2", "global_batch_size: 8"),
        ["task 't1'", "has 3 samples, fewer than global_batch_size 8"],
    ),
    "missing CSV file": (
        _csv_task("missing.csv"),
        ["task 't1'", "trace file", "missing.csv", "does not exist"],
    ),
    "empty CSV": (_csv_task("empty.csv"), ["task 't1'", "empty.csv", "is empty"]),
    "CSV without rows": (
        _csv_task("header_only.csv"),
        ["task 't1'", "header_only.csv", "header but no rows"],
    ),
    "CSV missing total_tokens": (_csv_task("no_total.csv"), ["task 't1'", "lacks the column 'total_tokens'"]),
    "negative lengths in CSV": (
        _csv_task("negative.csv"),
        ["task 't1'", "'total_tokens' has value -3 < 1 on line 3"],
    ),
    "non-numeric lengths in CSV": (
        _csv_task("nonnumeric.csv"),
        ["task 't1'", "non-numeric value 'abc' on line 3"],
    ),
    "fractional lengths in CSV": (
        _csv_task("fraction.csv"),
        ["task 't1'", "non-integer value 12.5 on line 3"],
    ),
    "empty cell in CSV": (
        _csv_task("empty_cell.csv"),
        ["task 't1'", "'total_tokens' has an empty cell on line 3"],
    ),
    "CSV prompt + response != total": (
        _csv_task("mismatch.csv"),
        ["task 't1'", "prompt_tokens + response_tokens != total_tokens on line 3"],
    ),
    "CSV with prompt but no response": (
        _csv_task("only_prompt.csv"),
        ["task 't1'", "lacks 'response_tokens'"],
    ),
}


def run_cli(argv, capsys) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse errors
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc: int, out: str, err: str, fragments: list[str]) -> str:
    assert rc == 2, (rc, out, err)
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    line = err.rstrip("\n")
    # argparse's own errors (bad flag values) carry the subcommand: "lobra scenarios show: error: ..."
    assert re.match(r"^lobra( [a-z-]+)*: error: ", line), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


@pytest.fixture
def workdir(tmp_path):
    for name, text in CSV_FILES.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_at_least_twenty_kinds():
    assert len(CASES) >= 20


@pytest.mark.parametrize("kind", list(CASES))
def test_malformed_task_file(kind, workdir, capsys):
    text, fragments = CASES[kind]
    path = workdir / "tasks.yaml"
    path.write_text(text)
    argv = [
        "scenarios",
        "show",
        "--tasks",
        str(path),
        "--model",
        "llama2-7b",
        "--gpu",
        "a100-40gb",
        "--num-gpus",
        "8",
    ]
    line = assert_one_line_error(*run_cli(argv, capsys), fragments)
    assert line.startswith(f"lobra: error: {path}: "), line  # every task-file error names the file


@pytest.mark.parametrize(
    "csv, fragment",
    [
        ("empty.csv", "is empty"),
        ("no_total.csv", "lacks the column 'total_tokens'"),
        ("negative.csv", "value -3 < 1 on line 3"),
        ("nonnumeric.csv", "non-numeric value 'abc'"),
        ("missing.csv", "does not exist"),
    ],
)
def test_malformed_trace_via_traces_show(csv, fragment, workdir, capsys):
    assert_one_line_error(*run_cli(["traces", "show", str(workdir / csv)], capsys), [csv, fragment])


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["traces", "show", "nosuch"], ["unknown trace 'nosuch'"]),
        (["scenarios", "show", "nope"], ["unknown scenario 'nope'"]),
        (["scenarios", "show", "paper-70b-4task", "--num-gpus", "512"], ["16..256 GPUs", "512"]),
        (["scenarios", "show", "paper-7b", "--model", "llama2-13b"], ["fixes the model"]),
        (["scenarios", "show", "--tasks", "t.yaml", "--model", "llama2-7b"], ["missing: gpu, num_gpus"]),
        (
            ["scenarios", "show", "--tasks", "t.yaml", "--model", "nope", "--gpu", "cpu", "--num-gpus", "2"],
            ["unknown model 'nope'"],
        ),
        (
            [
                "scenarios",
                "show",
                "--tasks",
                "t.yaml",
                "--model",
                "tiny",
                "--gpu",
                "tpu-v9",
                "--num-gpus",
                "2",
            ],
            ["unknown GPU 'tpu-v9'"],
        ),
        (["scenarios", "show"], ["give a scenario name"]),
        (["scenarios", "show", "paper-7b", "--num-gpus", "many"], ["--num-gpus", "invalid int value"]),
    ],
)
def test_bad_command_lines(argv, fragments, capsys):
    assert_one_line_error(*run_cli(argv, capsys), fragments)


def test_missing_task_file(tmp_path, capsys):
    argv = [
        "scenarios",
        "show",
        "--tasks",
        str(tmp_path / "none.yaml"),
        "--model",
        "tiny",
        "--gpu",
        "cpu",
        "--num-gpus",
        "1",
    ]
    assert_one_line_error(*run_cli(argv, capsys), ["task file", "none.yaml", "does not exist"])


LOBRA = Path(sys.executable).parent / "lobra"


@pytest.mark.skipif(not LOBRA.exists(), reason="the lobra console script is not installed")
@pytest.mark.parametrize("kind", ["bad YAML syntax", "negative lengths in CSV", "unknown key"])
def test_console_script(kind, workdir):
    text, fragments = CASES[kind]
    path = workdir / "tasks.yaml"
    path.write_text(text)
    proc = subprocess.run(
        [
            str(LOBRA),
            "scenarios",
            "show",
            "--tasks",
            str(path),
            "--model",
            "tiny",
            "--gpu",
            "cpu",
            "--num-gpus",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_one_line_error(proc.returncode, proc.stdout, proc.stderr, [str(path), *fragments])
