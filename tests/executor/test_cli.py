"""`lobra execute` on bad input: exit status 2, one line on stderr, nothing written."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lobra.cli import COMMANDS, main


def test_execute_is_registered():
    assert "execute" in COMMANDS
    out = subprocess.run(
        [sys.executable, "-m", "lobra.cli", "execute", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in ("--scenario", "--tasks", "--plan", "--model", "--steps", "--nproc", "--out", "--resume"):
        assert flag in out


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"--tasks": "missing.yaml"}, "tasks file 'missing.yaml' does not exist"),
        ({"--plan": "<1,1>x2"}, "uses 2 GPUs but the run has 1 ranks"),
        ({"--plan": "<1,3>", "--nproc": "3"}, "pp=3 exceeds the model's 2 layers"),
        ({"--plan": "<4,1>", "--nproc": "4"}, "tp=4 spans nodes"),
        ({"--plan": "<1,1> <<"}, "cannot parse plan"),
        ({"--model": "no-such-model"}, "unknown model 'no-such-model'"),
        ({"--steps": "0"}, "steps must be an integer >= 1"),
        ({"--nproc": "0"}, "--nproc must be a positive integer"),
        ({"--resume": True}, "no intact checkpoint"),
        ({"--dispatcher": "nope"}, "unknown dispatcher 'nope'"),
        ({"--data": "no-such-dir"}, "no alpha.parquet or alpha.jsonl"),
        ({"--tasks": None, "--scenario": "no-such-scenario"}, "unknown scenario 'no-such-scenario'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(changes, message, tmp_path, capsys, ex):
    args = {"--tasks": str(ex.tasks), "--plan": "<1,1>x1", "--steps": "2", "--nproc": "1"}
    args["--out"] = str(tmp_path / "out")
    args.update(changes)
    argv = ["execute"]
    for flag, value in args.items():
        if value is True:
            argv.append(flag)
        elif value is not None:
            argv += [flag, value]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("lobra: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not (tmp_path / "out").exists()


def test_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["execute", "--plan", "<1,1>", "--steps", "1", "--nproc", "1"])  # neither --scenario nor --tasks
    assert exc.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "max_position_embeddings",
            32,
            "task 'alpha': sequences of up to 60 tokens, but model has max_position_embeddings 32",
        ),
        ("num_key_value_heads", -4, "num_key_value_heads must be a positive integer, got -4"),
    ],
)
def test_a_model_config_the_run_cannot_use_is_refused_before_launch(
    field, value, message, tmp_path, capsys, ex
):
    """A 64-token task on a 32-position model trained anyway; a negative KV-head count crashed after launch."""
    import json

    from lobra.costmodel.specs.models import MODEL_CONFIGS

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(MODEL_CONFIGS["tiny"] | {field: value}))
    argv = ["execute", "--tasks", str(ex.tasks), "--model", str(model), "--plan", "<1,1>x1", "--steps", "1"]
    argv += ["--nproc", "1", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()
