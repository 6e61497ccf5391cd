"""`lobra tasks check|fields`, the documented task-file format, and the input errors a new user meets first."""

import json
from pathlib import Path

import pytest
from lobra.costmodel.specs.gpus import GPUS
from lobra.traces.tasks import FIELD_DOCS, SYNTHETIC_DOCS, SYNTHETIC_KEYS, TASK_KEYS

ROOT = Path(__file__).resolve().parents[2]
HARDWARE = "--model llama3-8b --gpu h100-80gb --num-gpus 16"


def test_every_field_is_documented_in_the_code_and_in_docs():
    assert tuple(FIELD_DOCS) == TASK_KEYS and tuple(SYNTHETIC_DOCS) == SYNTHETIC_KEYS
    doc = (ROOT / "docs" / "tasks.md").read_text()
    for key in (*TASK_KEYS, *SYNTHETIC_KEYS):
        assert f"| `{key}` |" in doc, key


def test_the_shipped_examples_check_and_resolve(cli):
    for name in ("my_tasks.yaml", "four_tenants.yaml"):
        rc, out, err = cli(f"tasks check {ROOT / 'examples' / name} {HARDWARE} --json")
        assert rc == 0, err
        tasks = {t["task"]: t for t in json.loads(out)["tasks"]}
        assert all(t["held"] and t["longest"] <= t["max_len"] for t in tasks.values())
    # the commented example spells out the defaults it changes: they resolve as written
    assert tasks.keys() == {"math", "code", "longdoc", "chat"}
    rc, out, _ = cli(f"tasks check {ROOT / 'examples' / 'my_tasks.yaml'} --json")
    summaries = {t["task"]: t for t in json.loads(out)["tasks"]}["summaries"]
    assert (summaries["rank"], summaries["alpha"], summaries["overflow"]) == (32, 64, "drop")
    assert summaries["steps"] == 2 * summaries["steps_per_epoch"]  # epochs: 2


def test_check_flags_a_task_no_replica_can_hold(cli, tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text(
        "tasks:\n  - {name: huge, trace: {synthetic: {mean: 30000, skewness: 1, kurtosis: 2,"
        " cap: 60000}}, global_batch_size: 4, max_len: 60000}\n"
    )
    rc, out, _ = cli(f"tasks check {f} {HARDWARE}")
    assert rc == 0 and "beyond capacity: huge" in out
    rc, _, err = cli(f"tasks check {f} --model llama3-8b")
    assert rc == 2 and "--model needs --gpu and --num-gpus" in err


@pytest.mark.parametrize(
    "body,needle",
    [
        ("{name: a, trace: gsm8k_train, max_len: 100, batch_size: 3}", "did you mean 'global_batch_size'"),
        ("{name: a, trace: gsm8k, max_len: 100, global_batch_size: 3}", "did you mean 'gsm8k_train'"),
    ],
)
def test_a_typo_gets_the_closest_name(cli, tmp_path, body, needle):
    f = tmp_path / "t.yaml"
    f.write_text(f"tasks:\n  - {body}\n")
    rc, _, err = cli(f"tasks check {f}")
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_fields_lists_every_key(cli):
    rc, out, _ = cli("tasks fields")
    assert rc == 0
    assert all(f"  {key} " in out for key in (*TASK_KEYS, *SYNTHETIC_KEYS))


def test_model_config_errors_name_the_file(cli, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text('{"hidden_size": 64}')
    base = f"plan --tasks {ROOT / 'examples' / 'four_tenants.yaml'} --gpu h100-80gb --num-gpus 8 --model"
    rc, _, err = cli(f"{base} {tmp_path / 'm'}")
    assert rc == 2 and f"{tmp_path / 'm' / 'config.json'}" in err and "lacks" in err
    rc, _, err = cli(f"{base} {tmp_path / 'absent' / 'config.json'}")
    assert rc == 2 and "does not exist" in err and "unknown model" not in err


def test_a_head_count_problem_is_not_called_memory(cli):
    base = "simulate --model llama2-7b --gpu a100-40gb --workload fixed:512 --global-batch 8 --plan"
    rc, _, err = cli(f"{base} '<3,1>x2'")
    assert rc == 2 and "tp=3 does not divide the model's 32 attention heads" in err
    rc, _, err = cli(
        "simulate --model llama2-70b --gpu a100-40gb --workload fixed:512 --global-batch 8 --plan '<1,1>x2'"
    )
    assert rc == 2 and "cannot hold llama2-70b" in err and "40 GiB" in err


def test_gpu_counts_partial_nodes_and_scenario_ranges(cli):
    assert GPUS["a100-40gb"].node_layout(12) == "1 node of 8 + 1 node of 4"
    assert GPUS["a100-40gb"].node_layout(16) == "2 nodes of 8"
    rc, _, err = cli("plan --scenario paper-70b-4task --num-gpus 12")
    assert rc == 2 and "scalability study" in err and "--tasks" in err and "paper-70b-4task.yaml" in err
