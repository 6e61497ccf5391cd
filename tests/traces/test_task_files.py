"""Task files: a full example, defaults, relative paths, synthetic traces, the shipped scenario task sets."""

import textwrap
from pathlib import Path

import pytest
import yaml
from lobra.traces import PAPER_DATASETS, SyntheticSpec, TaskSpec, TraceError, load_workload
from lobra.traces.scenario import SCENARIO_DIR
from lobra.traces.tasks import DEFAULT_STEPS, DEFAULT_TARGETS


def _write(tmp_path: Path, text: str, name: str = "tasks.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_full_task_file(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mine.csv").write_text(
        "sample_id,prompt_tokens,response_tokens,total_tokens\n"
        + "".join(f"{i},{i},{i + 1},{2 * i + 1}\n" for i in range(1, 41))
    )
    path = _write(
        tmp_path,
        """\
        description: two tasks
        tasks:
          - name: code
            trace: codealpaca_2k
            global_batch_size: 32
            max_len: 512
            overflow: drop
            rank: 8
            alpha: 16.5
            targets: [q_proj, v_proj]
            epochs: 2
            arrival_s: 12.5
          - name: mine
            trace: data/mine.csv
            global_batch_size: 8
            max_len: 64
            targets: q_proj, gate_proj
          - name: syn
            trace:
              synthetic: {mean: 300, skewness: 2.0, kurtosis: 9.0, cap: 2048, samples: 2000, seed: 4}
            global_batch_size: 16
            max_len: 1024
            steps: 7
        """,
    )
    wl = load_workload(path)
    assert wl.names == ["code", "mine", "syn"] and wl.description == "two tasks"
    assert wl.sequences_per_step == 56
    code, mine, syn = wl.tasks
    assert code.spec.overflow == "drop" and code.spec.rank == 8 and code.spec.alpha == 16.5
    assert code.spec.targets == ("q_proj", "v_proj") and code.spec.arrival_s == 12.5
    assert code.spec.steps is None and code.num_steps == 2 * code.steps_per_epoch
    assert code.lengths.max() <= 512 and len(code.lengths) == 2017 - code.num_overflow
    assert mine.spec.targets == ("q_proj", "gate_proj") and mine.trace.stats.mean == 42.0
    assert mine.lengths.max() == 64 and mine.num_overflow == 9  # totals 65..81 truncated to 64
    assert mine.spec.steps == DEFAULT_STEPS and mine.spec.rank == 16 and mine.spec.alpha == 32
    assert isinstance(syn.spec.trace, SyntheticSpec) and syn.spec.trace.cap == 2048
    assert len(syn.trace) == 2000 and syn.trace.stats.mean == pytest.approx(300, rel=0.01)
    assert syn.trace.prompt is None and syn.num_steps == 7


def test_defaults():
    spec = TaskSpec("a", "gsm8k_train", 4, 128)
    assert (spec.overflow, spec.rank, spec.alpha, spec.targets, spec.steps, spec.epochs, spec.arrival_s) == (
        "truncate",
        16,
        32,
        DEFAULT_TARGETS,
        DEFAULT_STEPS,
        None,
        0.0,
    )


def test_absolute_csv_path(tmp_path):
    csv = tmp_path / "abs.csv"
    csv.write_text("total_tokens\n" + "\n".join(str(10 + i) for i in range(20)) + "\n")
    other = tmp_path / "elsewhere"
    other.mkdir()
    path = _write(other, f"tasks:\n  - {{name: a, trace: '{csv}', global_batch_size: 4, max_len: 100}}\n")
    assert load_workload(path).task("a").trace.stats.count == 20


@pytest.mark.parametrize(
    "scenario, names",
    [
        (
            "paper-7b",
            ["dolly", "Evol-Instruct", "XSum", "CommitPackFT", "MeetingBank", "python_code_instructions"],
        ),
        ("paper-70b", list(PAPER_DATASETS)),
        ("paper-70b-4task", ["Evol-Instruct", "CommitPackFT", "BillSum", "PubMedQA"]),
    ],
)
def test_paper_task_sets_use_the_papers_statistics(scenario, names):
    doc = yaml.safe_load((SCENARIO_DIR / f"{scenario}.yaml").read_text())
    assert [t["name"] for t in doc["tasks"]] == names
    for task in doc["tasks"]:
        d, syn = PAPER_DATASETS[task["name"]], task["trace"]["synthetic"]
        assert (syn["mean"], syn["skewness"], syn["kurtosis"], syn["cap"]) == (
            d.mean,
            d.skewness,
            d.kurtosis,
            16384,
        )
        assert task["global_batch_size"] == d.global_batch_size and task["max_len"] == 16384


def test_scenario_yaml_files_parse_strictly():
    for path in sorted(SCENARIO_DIR.glob("*.yaml")):
        wl = load_workload(path)
        assert len(wl) >= 3, path


def test_errors_name_file_task_and_field(tmp_path):
    path = _write(
        tmp_path,
        """\
        tasks:
          - {name: ok, trace: gsm8k_train, global_batch_size: 4, max_len: 100}
          - {name: bad, trace: gsm8k_train, global_batch_size: 4, max_len: 100, rank: -1}
        """,
    )
    with pytest.raises(TraceError) as err:
        load_workload(path)
    msg = str(err.value)
    assert msg == f"{path}: task 'bad': rank must be a positive integer, got -1"
