import json
import re
import shutil

import pandas as pd
from lobra.analysis import paper
from lobra.analysis.figures import REGISTRY
from lobra.analysis.report.checks import bucket_checks, headline_checks, planning_checks, scaling_checks


def _images(text: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)


def test_report_of_a_custom_workload(cli, small_figures, tmp_path):
    out = tmp_path / "sub" / "report.md"
    rc, stdout, err = cli(f"report --figures {small_figures} --out {out}")
    assert rc == 0, err
    text = out.read_text()
    assert "custom workload" in text and "## Summary" not in text
    images = _images(text)
    assert len(images) == 8  # every figure, sim-vs-real included
    assert all((out.parent / p).is_file() for p in images)  # embedded by a path relative to the report
    gs = pd.read_csv(small_figures / "gpu_seconds.csv").set_index("policy")
    assert f"{gs.loc['lobra', 'gpu_seconds_per_step']:.3g}" in text  # our measured numbers
    assert "<1,1>x2" in text and "mape_pct" in text  # the validation pairs' plans and metrics


def test_the_report_shows_only_registered_figures_in_their_order(cli, small_figures, tmp_path):
    out = tmp_path / "report.md"
    assert cli(f"report --figures {small_figures} --out {out}")[0] == 0
    text = out.read_text()
    stems = [p.rsplit("/", 1)[-1].removesuffix(".png") for p in _images(text)]
    assert stems == REGISTRY.names()  # every figure once, in the registry's order
    headings = re.findall(r"^## (\d+)\. (.+)$", text, flags=re.M)
    assert headings == [(str(i), f.title) for i, f in enumerate(REGISTRY, 1)]
    for figure in REGISTRY:
        assert f"*{figure.caption}* (PDF: `{figure.name}.pdf`" in text


def test_report_against_the_paper(cli, small_figures, tmp_path):
    figures = tmp_path / "figures"
    shutil.copytree(small_figures, figures)
    manifest = json.loads((figures / "figures.json").read_text())
    (figures / "figures.json").write_text(json.dumps(manifest | {"paper_settings": True}))
    (figures / "sim_vs_real.csv").unlink()
    manifest["figures"].remove("sim_vs_real")
    (figures / "figures.json").write_text(json.dumps(manifest | {"paper_settings": True}))
    rc, _, _ = cli(f"report --figures {figures} --out {tmp_path / 'r.md'}")
    text = (tmp_path / "r.md").read_text()
    assert rc == 0 and "## Summary: our numbers beside the paper's" in text
    assert "45.03%–60.67%" in text  # the paper's headline
    lobra = pd.read_csv(figures / "gpu_seconds.csv").set_index("policy").loc["lobra"]
    assert f"{lobra['vs_best_baseline_pct']:.1f}% vs the better baseline" in text  # ours beside it
    assert "No validation run found: run `lobra validate`" in text


def _scaling_tables(lobra_gpus, fused_gpus, lobra_tasks, fused_tasks):
    gpus = pd.DataFrame(
        [
            {"policy": p, "num_gpus": n, "plan": "<8,2>x1", "normalised": v, "gpu_seconds_per_step": v}
            for p, series in (("lobra", lobra_gpus), ("task-fused", fused_gpus))
            for n, v in zip((16, 32, 64), series, strict=True)
        ]
    )
    tasks = pd.DataFrame(
        [
            {"policy": p, "num_tasks": n, "plan": "<8,4>x2", "normalised": v, "gpu_seconds_per_step": v}
            for p, series in (("lobra", lobra_tasks), ("task-fused", fused_tasks))
            for n, v in zip((4, 8, 12, 16), series, strict=True)
        ]
    )
    return {"scalability_gpus": gpus, "scalability_tasks": tasks}


def test_scaling_verdicts_hold_the_paper_numbers():
    same = _scaling_tables(
        paper.GPU_SCALING["lobra"],
        paper.GPU_SCALING["task-fused"],
        paper.TASK_SCALING["lobra"],
        paper.TASK_SCALING["task-fused"],
    )
    checks = scaling_checks(same)
    assert all(c.verdict.startswith("agrees") for c in checks)
    assert {"1.00 / 0.65 / 0.59", "1.00 / 1.08 / 1.12", "0.52 / 0.97 / 1.47 / 2.02"} <= {
        c.paper for c in checks
    }
    off = _scaling_tables(
        (1.0, 0.7, 0.8), (1.0, 1.0, 0.9), paper.TASK_SCALING["lobra"], paper.TASK_SCALING["task-fused"]
    )
    verdicts = {c.what: c.verdict for c in scaling_checks(off)}
    lobra = next(v for w, v in verdicts.items() if w.startswith("LobRA, GPU-seconds at 16/32/64"))
    assert lobra.startswith("differs by up to 0.21") and "single replica" in lobra
    assert verdicts["Direction, 16 -> 64 GPUs"].startswith("differs")


def test_headline_planning_and_bucket_verdicts():
    def gs(saved):
        rows = [
            ("task-sequential", 100.0),
            ("task-fused", 110.0),
            ("lobra", 100 - saved),
            ("lobra-plus", 40.0),
        ]
        df = pd.DataFrame(
            [
                {
                    "setting": "7B",
                    "policy": p,
                    "plan": "-",
                    "gpu_seconds_per_step": v,
                    "num_gpus": 16,
                    "gpu": "a100-40gb",
                    "num_tasks": 6,
                    "truncated_pct": 0.0,
                    "vs_task-sequential_pct": 100 * (1 - v / 100),
                    "vs_task-fused_pct": 100 * (1 - v / 110),
                    "vs_best_baseline_pct": 100 * (1 - v / 100),
                }
                for p, v in rows
            ]
        )
        lb = {"setting": "7B", "policy": "lower-bound", "plan": "-", "gpu_seconds_per_step": 30.0}
        return {"gpu_seconds": pd.concat([df, pd.DataFrame([lb])], ignore_index=True)}

    assert headline_checks(gs(50))[0].verdict == "agrees"
    low = headline_checks(gs(30))[0]
    assert low.verdict.startswith("differs: LobRA saves less") and low.paper == "45.03%–60.67%"
    assert "30.0% vs the better baseline (Task-Sequential)" in low.ours

    planning = pd.DataFrame(
        {"planner": "lobra", "num_gpus": [32, 64, 128, 256], "planning_time_s": [1.5, 10.0, 20.0, 30.0]}
    )
    (check,) = planning_checks({"planning_time": planning}, 2.0)
    assert check.paper.startswith("1.7 / 149 / 240 / 428") and check.ours.startswith(
        "1.5 / 10.0 / 20.0 / 30.0"
    )
    assert check.verdict.startswith("differs: ours is") and "same order of magnitude at 32" in check.verdict

    buckets = pd.DataFrame({"num_buckets": [4, 8, 12, 16], "step_time_s": [20.0, 12.0, 10.05, 10.0]})
    (check,) = bucket_checks({"buckets": buckets})
    assert check.verdict == "agrees" and check.ours.startswith("12 (within 1% of the best)")
    buckets["num_buckets"] = [4, 8, 12, 32]
    buckets["step_time_s"] = [20.0, 15.0, 14.0, 10.0]
    assert bucket_checks({"buckets": buckets})[0].verdict.startswith("differs")


def test_no_figures_is_one_line_and_status_2(cli, tmp_path):
    rc, _, err = cli(f"report --figures {tmp_path / 'none'} --out {tmp_path / 'r.md'}")
    assert rc == 2 and err.count("\n") == 1 and "run `lobra figures" in err
    assert not (tmp_path / "r.md").exists()


def test_a_trend_in_the_same_direction_is_not_agreement_unless_every_point_is_close():
    """1.00 / 0.77 / 0.88 falls like the paper's 1.00 / 0.65 / 0.59 but is 0.29 off at 64 GPUs: 'differs'."""
    near = _scaling_tables(
        (1.0, 0.77, 0.88),
        paper.GPU_SCALING["task-fused"],
        paper.TASK_SCALING["lobra"],
        paper.TASK_SCALING["task-fused"],
    )
    verdict = {c.what: c.verdict for c in scaling_checks(near)}["Direction, 16 -> 64 GPUs"]
    assert verdict.startswith("differs: the same direction, points up to 0.29 apart")
    close = _scaling_tables(
        (1.0, 0.68, 0.62), (1.0, 1.05, 1.15), paper.TASK_SCALING["lobra"], paper.TASK_SCALING["task-fused"]
    )
    assert {c.what: c.verdict for c in scaling_checks(close)}["Direction, 16 -> 64 GPUs"].startswith("agrees")


def test_a_plan_agrees_only_with_the_same_configs_under_one_reading():
    from lobra.analysis.report.checks import plan_checks

    def table(lobra_plan):
        rows = [
            ("70B", "lobra", lobra_plan),
            ("70B", "task-fused", "<16,1>x4"),
        ]
        return {"gpu_seconds": pd.DataFrame(rows, columns=["setting", "policy", "plan"])}

    published = paper.PLANS["70B"]["lobra"]  # <2,4>x4 <4,2>x1 <8,1>x1 <16,1>x1
    assert paper.same_configs("<4,2>x4 <2,4>x1 <1,8>x1 <1,16>x1", published) == "(pp,tp)"
    verdicts = {c.what: c.verdict for c in plan_checks(table("<16,1>x1 <2,4>x4 <4,2>x1 <8,1>x1"))}
    assert verdicts["LobRA plan, 70B"].startswith("agrees (the same configs, the paper's read as (tp,pp))")
    # the same replica sizes (8, 8, 8, 8, 8, 8, 8, 16) with every (tp, pp) other: not agreement
    verdicts = {c.what: c.verdict for c in plan_checks(table("<8,1>x4 <1,8>x2 <4,4>x1"))}
    assert verdicts["LobRA plan, 70B"].startswith("differs: the same replica sizes but other (tp, pp)")
    assert verdicts["Task-Fused plan, 70B"].startswith("agrees")
    # checkpointing replicas are other configs, and they count (the old parser skipped them)
    assert paper.replica_sizes("<4,1,ckpt>x16") == [4] * 16
    assert paper.same_configs("<16,1,ckpt>x4", "<16,1>x4") is None


def test_report_finds_the_figures_where_lobra_figures_wrote_them(cli, small_figures, tmp_path, monkeypatch):
    """No --figures: out/figures, else the newest figures.json up to two levels down; else where it looked."""
    monkeypatch.chdir(tmp_path)
    rc, _, err = cli("report --out r.md")
    assert rc == 2 and "no figures.json in out/figures nor in any folder up to two levels below" in err
    shutil.copytree(small_figures, tmp_path / "runs" / "mine")
    rc, stdout, err = cli("report --out r.md")
    assert rc == 0, err
    assert "figures from runs/mine" in stdout
    shutil.copytree(small_figures, tmp_path / "out" / "figures")  # the default wins when it holds figures
    rc, stdout, _ = cli("report --out r.md")
    assert rc == 0 and "figures from out/figures" in stdout
