import json

import matplotlib.image
import pandas as pd
import pytest
from lobra.analysis.figures import (
    FIGURES,
    REGISTRY,
    Figure,
    FigureError,
    FigureRegistry,
    FigureSettings,
    Table,
    make_all,
)
from lobra.analysis.paper import replica_sizes, sizes_str
from lobra.analysis.studies import load_validation, swap_degrees

from .conftest import SMALL


def test_every_figure_as_png_pdf_and_csv(small_figures):
    for name in FIGURES:
        for ext in ("png", "pdf", "csv"):
            path = small_figures / f"{name}.{ext}"
            assert path.is_file() and path.stat().st_size > 0, path
    manifest = json.loads((small_figures / "figures.json").read_text())
    assert manifest["figures"] == FIGURES and manifest["validation"]["found"]
    assert manifest["paper_settings"] is False and manifest["studies"]["task_sets"]["3"] == [
        "short",
        "long",
        "short-2",
    ]


def test_the_registry_is_the_one_list_of_figures(small_figures):
    names = REGISTRY.names()
    assert FIGURES == names and len(names) == len(set(names)) == 8
    for ext in ("png", "pdf"):  # exactly the registered figures, nothing else drawn
        assert sorted(p.stem for p in small_figures.glob(f"*.{ext}")) == sorted(names)
    tables = {t.name for f in REGISTRY for t in f.tables}
    assert {p.stem for p in small_figures.glob("*.csv")} - {"sweep"} - tables == set(names)
    assert json.loads((small_figures / "figures.json").read_text())["figures"] == names
    for figure in REGISTRY:  # each CSV has the columns its record declares, in order
        assert tuple(pd.read_csv(small_figures / f"{figure.name}.csv").columns) == figure.columns


def _figure(name: str, **kw) -> Figure:
    fields = {"draw": lambda inputs, out: None, "columns": ("a", "b"), "title": "T", "caption": "C"}
    return Figure(name=name, **(fields | kw))


def test_the_registry_refuses_duplicate_and_unknown_names():
    registry = FigureRegistry([_figure("one")])
    with pytest.raises(FigureError, match="'one' is already registered"):
        registry.register(_figure("one"))
    table = Table("one", "main", ("a",), "T", "text", ("a",))
    with pytest.raises(FigureError, match="'one' is already registered"):  # a table's CSV would overwrite it
        registry.register(_figure("two", tables=(table,)))
    assert registry.names() == ["one"] and "two" not in registry
    with pytest.raises(FigureError, match="unknown figure 'nope'; choose from one"):
        registry.get("nope")
    with pytest.raises(FigureError, match="already registered"):
        FigureRegistry([*REGISTRY, REGISTRY.get("buckets")])
    assert [REGISTRY.number(n) for n in ("gpu_seconds", "sim_vs_real")] == [1, 8]


def test_a_figure_record_is_checked():
    with pytest.raises(FigureError, match=r"shown columns \['c'\]"):
        _figure("x", shown=("a", "c"))
    with pytest.raises(FigureError, match="names files"):
        _figure("x/y")
    with pytest.raises(FigureError, match="distinct"):
        _figure("x", columns=("a", "a"))
    figure = _figure("x")
    assert figure.check(pd.DataFrame(columns=["a", "b"])) is not None
    with pytest.raises(FigureError, match="wrote the columns"):
        figure.check(pd.DataFrame(columns=["b", "a"]))


def test_pictures_are_page_width_at_150_dpi(small_figures):
    for name in FIGURES:
        height, width = matplotlib.image.imread(small_figures / f"{name}.png").shape[:2]
        assert 700 <= width <= 1100 and 300 <= height <= 1000, (name, width, height)


def test_figure_numbers_are_the_sweep_numbers(small_figures):
    sweep = pd.read_csv(small_figures / "sweep.csv")
    main = sweep[sweep["study"] == "main"].set_index("policy")
    gs = pd.read_csv(small_figures / "gpu_seconds.csv").set_index("policy")
    for policy in ("task-sequential", "task-fused", "lobra", "lobra-plus"):
        assert gs.loc[policy, "gpu_seconds_per_step"] == pytest.approx(
            main.loc[f"tasks2|{policy}", "gpu_seconds_per_step"]
        )
    best = min(
        gs.loc["task-sequential", "gpu_seconds_per_step"], gs.loc["task-fused", "gpu_seconds_per_step"]
    )
    assert gs.loc["lobra", "vs_best_baseline_pct"] == pytest.approx(
        100 * (1 - gs.loc["lobra", "gpu_seconds_per_step"] / best)
    )
    assert gs.loc["lower-bound", "gpu_seconds_per_step"] == pytest.approx(
        main.loc["tasks2|lobra", "lower_bound_gpu_seconds"]
    )
    ablation = pd.read_csv(small_figures / "ablation.csv").set_index("policy")
    assert ablation.loc["task-fused", "relative_to_task_fused"] == 1.0
    assert ablation.loc["lobra-length", "dispatcher"] == "length"

    gpus = pd.read_csv(small_figures / "scalability_gpus.csv")
    for policy, g in gpus.groupby("policy"):
        g = g.sort_values("num_gpus")
        runs = sweep[(sweep["study"] == "scalability_gpus") & (sweep["policy"] == policy)].sort_values(
            "num_gpus"
        )
        assert list(g["gpu_seconds_per_step"]) == pytest.approx(list(runs["gpu_seconds_per_step"]))
        assert list(g["normalised"]) == pytest.approx(
            list(g["gpu_seconds_per_step"] / g["gpu_seconds_per_step"].iloc[0])
        )
    tasks = pd.read_csv(small_figures / "scalability_tasks.csv")
    base = tasks[(tasks["policy"] == "task-fused") & (tasks["num_tasks"] == 1)]["gpu_seconds_per_step"].item()
    assert list(tasks["normalised"]) == pytest.approx(list(tasks["gpu_seconds_per_step"] / base))
    assert sorted(tasks["num_tasks"].unique()) == [1, 2, 3]

    buckets = pd.read_csv(small_figures / "buckets.csv")
    runs = sweep[sweep["study"] == "buckets"]
    assert list(buckets["num_buckets"]) == [4, 8] and list(buckets["step_time_s"]) == pytest.approx(
        list(runs["step_time_s"])
    )
    planning = pd.read_csv(small_figures / "planning_time.csv")
    assert set(planning["planner"]) == {"lobra", "lobra-plus"} and set(planning["num_gpus"]) == {2, 4}
    lengths = pd.read_csv(small_figures / "lengths.csv").set_index("task")
    assert lengths.loc["short", "mean"] == pytest.approx(300, rel=0.01)


def test_sim_vs_real_reads_the_validation_pairs_without_warmup(small_figures):
    table = pd.read_csv(small_figures / "sim_vs_real.csv").set_index("plan")
    assert table.loc["<1,1>x1", "steps"] == 2  # step 0 is a warm-up step
    assert table.loc["<1,1>x1", "real_step_time_s"] == pytest.approx(1.05)
    assert table.loc["<1,1>x1", "error_pct"] == pytest.approx(100 * (0.95 / 1.05 - 1))


def test_deterministic_under_a_seed_and_no_validation_no_comparison(tasks_file, tmp_path):
    settings = FigureSettings.for_tasks(
        str(tasks_file),
        "llama2-7b",
        "a100-40gb",
        2,
        gpus=(2,),
        num_tasks=(1,),
        buckets=(4,),
        steps=2,
        workers=1,
    )
    first = make_all(tmp_path / "a", 0, None, settings, validation=tmp_path / "none")
    make_all(tmp_path / "b", 0, None, settings, validation=None)
    assert "sim_vs_real" not in first["figures"] and "run `lobra validate`" in first["validation"]["note"]
    assert not (tmp_path / "a" / "sim_vs_real.png").exists()
    for name in ("gpu_seconds", "ablation", "scalability_gpus", "scalability_tasks", "buckets", "lengths"):
        a, b = (pd.read_csv(tmp_path / d / f"{name}.csv") for d in "ab")
        pd.testing.assert_frame_equal(a, b)


def test_validation_pairs_need_their_columns(tmp_path):
    (tmp_path / "pairs.csv").write_text("plan,step,real\nx,0,1\n")
    pairs, why = load_validation(tmp_path)
    assert pairs is None and "lacks the columns" in why
    assert load_validation(tmp_path / "missing")[0] is None


def test_paper_plans_in_both_readings():
    assert swap_degrees("<2,4>x4 <16,1>") == "<4,2>x4 <1,16>x1"
    assert replica_sizes("<1,1>x6 <2,1>x1 <8,1>x1") == [8, 2, 1, 1, 1, 1, 1, 1]
    assert sizes_str("<2,4>x4 <4,2>x1 <8,1>x1 <16,1>x1") == "16 + 8x6 GPUs"


def test_a_paper_plan_too_small_for_our_traces_is_simulated_with_its_cut_counted():
    """The 7B plan read as (pp,tp) holds 4,096 tokens, less than paper-7b's longest sequences: it runs with them
    truncated (and says how much) instead of failing the whole `lobra figures`."""
    from dataclasses import replace

    from lobra.analysis.studies import FigureSettings, paper_plan_specs
    from lobra.analysis.sweep import run_sweep

    specs = paper_plan_specs(FigureSettings())
    assert specs and all(s.beyond_capacity == "truncate" for s in specs)
    small = next(s for s in specs if s.policy == "7B|lobra as (pp,tp)")
    row = run_sweep([replace(small, steps=1)]).iloc[0]
    assert row["truncated_pct"] > 0 and row["gpu_seconds_per_step"] > 0


@pytest.mark.parametrize(
    "args, message",
    [
        ("--gpus 2,4", "go with --tasks FILE"),
        ("--model llama2-7b", "go with --tasks FILE"),
        ("--tasks {tasks} --model llama2-7b", "--tasks needs --model, --gpu, --num-gpus"),
        ("--tasks {tasks} " + SMALL.replace("--gpus 2,4", "--gpus 2,x"), "--gpus must be comma-separated"),
        ("--tasks {tasks} " + SMALL.replace("--steps 2", "--steps 0"), "--steps must be a positive integer"),
        ("--tasks {tasks} " + SMALL.replace("--gpu a100-40gb", "--gpu h900"), "unknown GPU 'h900'"),
    ],
)
def test_bad_input_is_one_line_and_status_2(cli, tasks_file, tmp_path, args, message):
    rc, _, err = cli(f"figures {args.format(tasks=tasks_file)} --out {tmp_path}")
    assert rc == 2 and err.count("\n") == 1 and err.startswith("lobra: error: ") and message in err
    assert not (tmp_path / "figures.json").exists()


def test_the_gpu_seconds_figure_compares_at_equal_work():
    """A policy that cuts a quarter of its tokens pays for them before its reduction is computed."""
    import pandas as pd
    from lobra.analysis.figures.compare import gpu_seconds_table

    base = {"setting": "7B|", "model": "m", "gpu": "g", "num_gpus": 8, "num_tasks": 2, "step_time_s": 1.0}
    rows = []
    for policy, gs, cut in (
        ("task-sequential", 200.0, 0.0),
        ("task-fused", 160.0, 0.0),
        ("lobra", 90.0, 25.0),
        ("lobra-plus", 100.0, 0.0),
    ):
        rows.append(
            base
            | {"policy": policy, "plan": "p", "gpu_seconds_per_step": gs, "truncated_pct": cut}
            | {"equal_work_gpu_seconds": gs / (1 - cut / 100)}
            | {"lower_bound_gpu_seconds": 60.0, "lower_bound_cut_pct": 0.0}
        )
    table = gpu_seconds_table(pd.DataFrame(rows)).set_index("policy")
    assert table.loc["lobra", "gpu_seconds_per_step"] == 90.0
    assert table.loc["lobra", "vs_task-fused_pct"] == pytest.approx(25.0)  # 120 against 160, not 90
    assert table.loc["lobra-plus", "vs_best_baseline_pct"] == pytest.approx(37.5)


def test_an_interrupted_figures_run_leaves_the_previous_outputs(tasks_file, tmp_path, monkeypatch):
    """Ctrl-C while the figures are being drawn: one line, exit status 130, the last run's files untouched."""
    from lobra.analysis.figures import make as make_module

    from lobra.cli import main

    settings = dict(gpus=(2,), num_tasks=(1,), buckets=(4,), steps=2, workers=1)
    settings = FigureSettings.for_tasks(str(tasks_file), "llama2-7b", "a100-40gb", 2, **settings)
    out = tmp_path / "figs"
    make_all(out, 0, None, settings, validation=None)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    drawn = make_module.draw_all

    def draw_then_interrupt(inputs, stage, note):
        drawn(inputs, stage, note)  # every new file written in the stage, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(make_module, "draw_all", draw_then_interrupt)
    monkeypatch.setattr("lobra.commands.figures.settings_from_args", lambda args: settings)
    rc = main(["figures", "--out", str(out), "--seed", "1"])
    assert rc == 130
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".figs.staged-")]


def test_an_outlier_bar_is_cut_at_the_axis_not_stretching_it():
    from lobra.analysis.figures.compare import axis_top

    assert axis_top(pd.Series([1.0, 0.8, 3.87, 0.6])) == 1.0  # 3.87x would squash the others: cut at 1.0
    assert axis_top(pd.Series([1.0, 0.8, 1.9])) == 1.9  # within 2x of the next: the axis holds it
