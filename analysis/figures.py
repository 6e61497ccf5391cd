"""The paper-style figure set, regenerated from simulations (one sweep, analysis/sweep.py, feeds them all).

Each figure function takes its rows of the sweep and writes NAME.png, NAME.pdf and NAME.csv (the numbers drawn).
`make_all` plans the studies, runs every distinct simulation once in one pool of processes (the ablations and the
bucket study reuse the LobRA plans; points shared by two studies are simulated once), draws every figure and writes
`sweep.csv`/`sweep.parquet` (all runs) and `figures.json` (settings, wall time, what was drawn).

Normalised as the paper does: GPU scalability relative to each policy's own smallest cluster; task scalability
relative to Task-Fused with the fewest tasks.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from lobra.analysis import paper  # noqa: E402
from lobra.analysis.studies import FigureSettings, load_validation, studies  # noqa: E402
from lobra.analysis.sweep import progress_total, run_sweep, workload_of  # noqa: E402
from lobra.traces import PAPER_DATASETS  # noqa: E402

LABELS = {
    "task-sequential": "Task-Sequential",
    "task-fused": "Task-Fused",
    "lobra-length": "hetero. replicas\n+ length dispatch",
    "lobra-balanced": "+ balanced\ndispatch",
    "lobra": "LobRA",
    "lobra-plus": "LobRA+ (ours)",
    "lower-bound": "lower bound",
}
ABLATION_LABELS = {
    "task-fused": "Task-Fused",
    "lobra-length": "hetero.\nreplicas +\nlength disp.",
    "lobra-balanced": "+ balanced\ndispatch",
    "lobra": "+ dynamic\nbuckets\n(= LobRA)",
}
COLORS = {
    "task-sequential": "0.45",
    "task-fused": "0.65",
    "lobra": "C0",
    "lobra-plus": "C3",
    "lower-bound": "0.9",
}
COLORS |= {"lobra-length": "C9", "lobra-balanced": "C2"}
# Horizontal boxes: `orientation` from Matplotlib 3.10, `vert` (deprecated since) before.
_MPL = tuple(int(p) for p in matplotlib.__version__.split(".")[:2])
HORIZONTAL = {"orientation": "horizontal"} if _MPL >= (3, 10) else {"vert": False}
DPI = 150
WIDTH_IN = 7.0
FIGURES = [
    "gpu_seconds",
    "ablation",
    "scalability_gpus",
    "scalability_tasks",
    "buckets",
    "planning_time",
    "lengths",
    "sim_vs_real",
]


# -- output helpers -------------------------------------------------------------------------------------------
def _replace_into(path: Path, write: Callable[[Path], None]) -> None:
    """Write to a temporary file beside `path`, then move it into place: never a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; outputs are ordinary files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save(fig, table: pd.DataFrame, out: Path, name: str, layout: bool = True) -> list[Path]:
    """NAME.png (150 dpi), NAME.pdf and NAME.csv under out."""
    out.mkdir(parents=True, exist_ok=True)
    if layout:
        fig.tight_layout()
    for ext in ("png", "pdf"):
        # A fixed creation date keeps the PDF byte-identical from run to run.
        meta = {"CreationDate": None} if ext == "pdf" else {"Software": None}
        _replace_into(
            out / f"{name}.{ext}", lambda p, e=ext, m=meta: fig.savefig(p, format=e, dpi=DPI, metadata=m)
        )
    plt.close(fig)
    _replace_into(out / f"{name}.csv", lambda p: table.to_csv(p, index=False))
    return [out / f"{name}.{ext}" for ext in ("png", "pdf", "csv")]


def _style():
    return plt.rc_context(
        {
            "font.size": 8.5,
            "axes.titlesize": 9,
            "axes.labelsize": 8.5,
            "legend.fontsize": 7.5,
            "xtick.labelsize": 8,
            "ytick.labelsize": 8,
            "axes.grid": True,
            "grid.alpha": 0.3,
        }
    )


def _setting(rows: pd.DataFrame) -> str:
    r = rows.iloc[0]
    return f"{r['model']}, {int(r['num_gpus'])} x {r['gpu']}, {int(r['num_tasks'])} tasks"


def _split_label(rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows.copy()
    rows[["setting", "policy"]] = rows["policy"].str.split("|", n=1, expand=True)
    return rows


def _annotate(ax, bar, text: str) -> None:
    ax.annotate(
        text,
        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
        ha="center",
        va="bottom",
        fontsize=7.5,
        xytext=(0, 2),
        textcoords="offset points",
    )


# -- figures --------------------------------------------------------------------------------------------------
def fig_gpu_seconds(rows: pd.DataFrame, out: Path) -> pd.DataFrame:
    """GPU-seconds per step of the baselines, LobRA and ours, per setting, with the reductions labelled."""
    rows = _split_label(rows)
    table = []
    for setting, g in rows.groupby("setting", sort=False):
        by = g.set_index("policy")
        best = min(
            by.loc["task-sequential", "gpu_seconds_per_step"], by.loc["task-fused", "gpu_seconds_per_step"]
        )
        for policy in ("task-sequential", "task-fused", "lobra", "lobra-plus"):
            r = by.loc[policy]
            gs = r["gpu_seconds_per_step"]
            table.append(
                {
                    "setting": setting,
                    "model": r["model"],
                    "gpu": r["gpu"],
                    "num_gpus": r["num_gpus"],
                    "num_tasks": r["num_tasks"],
                    "policy": policy,
                    "plan": r["plan"],
                    "step_time_s": r["step_time_s"],
                    "gpu_seconds_per_step": gs,
                    "vs_task-sequential_pct": 100
                    * (1 - gs / by.loc["task-sequential", "gpu_seconds_per_step"]),
                    "vs_task-fused_pct": 100 * (1 - gs / by.loc["task-fused", "gpu_seconds_per_step"]),
                    "vs_best_baseline_pct": 100 * (1 - gs / best),
                    "truncated_pct": r["truncated_pct"],
                }
            )
        lb = by.loc["lobra", "lower_bound_gpu_seconds"]
        r = by.loc["lobra"]
        table.append(
            {k: r[k] for k in ("model", "gpu", "num_gpus", "num_tasks")}
            | {"setting": setting, "policy": "lower-bound", "plan": "-", "gpu_seconds_per_step": lb}
            | {"vs_best_baseline_pct": 100 * (1 - lb / best)}
        )
    table = pd.DataFrame(table)
    settings = list(dict.fromkeys(table["setting"]))
    with _style():
        fig, axes = plt.subplots(1, len(settings), figsize=(WIDTH_IN, 3.3), squeeze=False)
        for ax, setting in zip(axes[0], settings, strict=True):
            t = table[table["setting"] == setting]
            names = list(t["policy"])
            bars = ax.bar(
                [LABELS[n] for n in names],
                t["gpu_seconds_per_step"],
                color=[COLORS[n] for n in names],
                edgecolor="black",
                linewidth=0.6,
                hatch=None,
            )
            for bar, (_, r) in zip(bars, t.iterrows(), strict=True):
                v = r["gpu_seconds_per_step"]
                text = f"{v:,.0f}" if v >= 100 else f"{v:.3g}"
                if not r["policy"].startswith("task-"):
                    text += f"\n{-r['vs_best_baseline_pct']:+.0f}%"
                _annotate(ax, bar, text)
            src = rows[rows["setting"] == setting]
            ax.set_title(f"{setting}: {_setting(src)}")
            ax.set_ylabel("GPU-seconds per step")
            ax.tick_params(axis="x", labelrotation=30, labelsize=7.5)
            for lab in ax.get_xticklabels():
                lab.set_horizontalalignment("right")
            ax.margins(y=0.22)
            ax.grid(axis="x", visible=False)
        fig.suptitle("GPU-seconds per step (labels: change against the better baseline)", fontsize=9.5)
        save(fig, table, out, "gpu_seconds")
    return table


def fig_ablation(rows: pd.DataFrame, out: Path) -> pd.DataFrame:
    """The paper's ablation: Task-Fused, then heterogeneous replicas with length-based dispatch, + balanced
    dispatch, + dynamic bucketing (= LobRA); GPU-seconds relative to Task-Fused."""
    rows = _split_label(rows)
    order = ["task-fused", "lobra-length", "lobra-balanced", "lobra"]
    table = []
    for setting, g in rows.groupby("setting", sort=False):
        by = g.set_index("policy")
        base = by.loc["task-fused", "gpu_seconds_per_step"]
        for policy in order:
            r = by.loc[policy]
            table.append(
                {
                    "setting": setting,
                    "policy": policy,
                    "plan": r["plan"],
                    "dispatcher": r["dispatcher"],
                    "bucketing": r["bucketing"],
                    "gpu_seconds_per_step": r["gpu_seconds_per_step"],
                    "relative_to_task_fused": r["gpu_seconds_per_step"] / base,
                    "padding_ratio": r["padding_ratio"],
                }
            )
    table = pd.DataFrame(table)
    settings = list(dict.fromkeys(table["setting"]))
    with _style():
        fig, axes = plt.subplots(1, len(settings), figsize=(WIDTH_IN, 3.2), squeeze=False, sharey=True)
        for ax, setting in zip(axes[0], settings, strict=True):
            t = table[table["setting"] == setting]
            bars = ax.bar(
                [ABLATION_LABELS[p] for p in t["policy"]],
                t["relative_to_task_fused"],
                color=[COLORS[p] for p in t["policy"]],
                edgecolor="black",
                linewidth=0.6,
            )
            for bar, v in zip(bars, t["relative_to_task_fused"], strict=True):
                _annotate(ax, bar, f"{v:.2f}x")
            ax.axhline(1.0, color="black", lw=0.8, ls=":")
            ax.set_title(f"{setting}: {_setting(rows[rows['setting'] == setting])}")
            ax.tick_params(axis="x", labelsize=7)
            ax.margins(y=0.15)
            ax.grid(axis="x", visible=False)
        axes[0][0].set_ylabel("GPU-seconds per step\n(relative to Task-Fused)")
        fig.suptitle("Ablation: each of LobRA's parts added in turn", fontsize=9.5)
        save(fig, table, out, "ablation")
    return table


def _scaling(rows: pd.DataFrame, out: Path, key: str, name: str) -> pd.DataFrame:
    """GPU-seconds over `key` (num_gpus or num_tasks) per policy: normalised (left, with the paper's numbers) and
    absolute (right)."""
    rows = rows.sort_values([key]).copy()
    if key == "num_gpus":  # each policy relative to its own smallest cluster
        first = rows.groupby("policy")["gpu_seconds_per_step"].transform("first")
        ref, pub = first, paper.GPU_SCALING
        ylabel = "GPU-seconds per step\n(relative to own smallest cluster)"
        r = rows.iloc[0]
        xlabel = "number of GPUs"
        title = f"GPU scalability: {r['model']} on {r['gpu']}, {int(r['num_tasks'])} tasks"
    else:  # relative to Task-Fused with the fewest tasks
        tf = rows[rows["policy"] == "task-fused"]
        ref, pub = float(tf.iloc[0]["gpu_seconds_per_step"]), paper.TASK_SCALING
        ylabel = "GPU-seconds per step\n(relative to Task-Fused, fewest tasks)"
        xlabel = "number of tasks"
        title = f"Task scalability: {rows.iloc[0]['model']} on {int(rows.iloc[0]['num_gpus'])} x {rows.iloc[0]['gpu']}"
    rows["normalised"] = rows["gpu_seconds_per_step"] / ref
    pub_of = {(p, x): v for p in ("task-fused", "lobra") for x, v in zip(pub[key], pub[p], strict=True)}
    rows["paper_normalised"] = [
        pub_of.get((p, x), np.nan) for p, x in zip(rows["policy"], rows[key], strict=True)
    ]
    table = rows[
        [
            "policy",
            key,
            "num_tasks" if key == "num_gpus" else "num_gpus",
            "plan",
            "step_time_s",
            "gpu_seconds_per_step",
            "normalised",
            "paper_normalised",
            "idle_ratio",
            "truncated_pct",
        ]
    ]
    xs = sorted(rows[key].unique())
    with _style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH_IN, 3.5))
        for policy, g in rows.groupby("policy", sort=False):
            c = COLORS[policy]
            left.plot(g[key], g["normalised"], "o-", color=c, label=f"{LABELS[policy]}, simulated")
            right.plot(g[key], g["gpu_seconds_per_step"], "o-", color=c)
            if g["paper_normalised"].notna().any():
                left.plot(
                    g[key],
                    g["paper_normalised"],
                    "s--",
                    color=c,
                    mfc="none",
                    alpha=0.8,
                    label=f"{LABELS[policy]}, paper",
                )
        for ax in (left, right):
            if key == "num_gpus":  # cluster sizes double; task counts grow by steps of 4
                ax.set_xscale("log", base=2)
            ax.set_xticks(xs, [str(x) for x in xs])
            ax.minorticks_off()
            ax.set_xlabel(xlabel)
        left.set_ylabel(ylabel)
        right.set_ylabel("GPU-seconds per step")
        left.set_title("normalised as in the paper")
        right.set_title("absolute (simulated)")
        fig.suptitle(title, fontsize=9.5)
        # One legend for both panels, below them: inside, it would hide the lines that start at the same point.
        fig.tight_layout(rect=(0, 0.13, 1, 1))
        fig.legend(*left.get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=7.5, frameon=False)
        save(fig, table, out, name, layout=False)
    return table


def fig_scalability_gpus(rows: pd.DataFrame, out: Path) -> pd.DataFrame:
    return _scaling(rows, out, "num_gpus", "scalability_gpus")


def fig_scalability_tasks(rows: pd.DataFrame, out: Path) -> pd.DataFrame:
    return _scaling(rows, out, "num_tasks", "scalability_tasks")


def bucket_knee(table: pd.DataFrame, within: float = 0.01) -> int:
    """The fewest buckets whose step time is within `within` of the best step time over all bucket counts."""
    best = table["step_time_s"].min()
    return int(table.loc[table["step_time_s"] <= best * (1 + within), "num_buckets"].min())


def fig_buckets(rows: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Step time and padding against the dispatcher's number of buckets, on the LobRA plan."""
    table = rows[["num_buckets", "plan", "step_time_s", "gpu_seconds_per_step", "padding_ratio"]].copy()
    table = table.sort_values("num_buckets").reset_index(drop=True)
    table["padding_pct"] = 100 * table["padding_ratio"]
    knee = bucket_knee(table)
    table["knee"] = table["num_buckets"] == knee
    xs = list(table["num_buckets"])
    with _style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH_IN, 2.9))
        left.plot(xs, table["step_time_s"], "o-", color="C0", label="LobRA plan, balanced-ilp dispatch")
        right.plot(xs, table["padding_pct"], "o-", color="C1", label="padded tokens")
        for ax in (left, right):
            ax.axvline(
                paper.BUCKET_KNEE, color="0.4", ls="--", lw=0.9, label=f"paper's knee (~{paper.BUCKET_KNEE})"
            )
            ax.axvline(knee, color="C3", ls=":", lw=1.2, label=f"our knee ({knee}: within 1% of best)")
            ax.set_xticks(xs, [str(x) for x in xs])
            ax.set_xlabel("number of buckets")
            ax.legend(fontsize=6.8)
        left.set_ylabel("step time (s)")
        right.set_ylabel("padding (% of padded tokens)")
        fig.suptitle(f"Buckets: {_setting(rows)}, plan {table['plan'].iloc[0]}", fontsize=9.5)
        save(fig, table, out, "buckets")
    return table


def fig_planning_time(rows: pd.DataFrame, out: Path, how: str = "") -> pd.DataFrame:
    """Planning time against the cluster size, with the paper's (64 threads); `how` says how ours ran."""
    table = rows[
        ["planner", "num_gpus", "planning_time_s", "plans_considered", "plan", "planned_step_time_s"]
    ]
    table = table.assign(
        planned_gpu_seconds_per_step=rows["planned_step_time_s"] * rows["num_gpus"],
        paper_planning_time_s=[paper.PLANNING_TIME_S.get(int(n), np.nan) for n in rows["num_gpus"]],
    ).sort_values(["planner", "num_gpus"], kind="stable")
    xs = sorted(set(table["num_gpus"]))
    with _style():
        fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.8, 3.2))
        for planner, g in table.groupby("planner", sort=False):
            label = LABELS.get(planner, planner) + (f", {how}" if how else "")
            ax.plot(g["num_gpus"], g["planning_time_s"], "o-", color=COLORS.get(planner, "C2"), label=label)
        if any(n in paper.PLANNING_TIME_S for n in xs):
            pts = sorted(paper.PLANNING_TIME_S.items())
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                "s--",
                color="0.4",
                mfc="none",
                label="LobRA in the paper (64 threads)",
            )
            xs = sorted(set(xs) | set(paper.PLANNING_TIME_S))
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.minorticks_off()
        ax.set_xlabel("number of GPUs")
        ax.set_ylabel("planning time (s, log scale)")
        r = rows.iloc[0]
        ax.set_title(f"Planning time: {r['model']} on {r['gpu']}, {int(r['num_tasks'])} tasks")
        ax.legend(fontsize=7)
        save(fig, table, out, "planning_time")
    return table


def fig_lengths(tasks: list, out: Path) -> pd.DataFrame:
    """Each task's length distribution (after its max_len policy): box 25-75%, whiskers 1-99%, our mean, and the
    mean the paper publishes for that dataset."""
    table = []
    for t in tasks:
        s = t.stats
        pub = PAPER_DATASETS.get(t.name)
        table.append(
            {
                "task": t.name,
                "samples": s.count,
                **s.summary(),
                "global_batch_size": t.global_batch_size,
                "paper_mean": pub.mean if pub else np.nan,
                "paper_skewness": pub.skewness if pub else np.nan,
                "paper_kurtosis": pub.kurtosis if pub else np.nan,
            }
        )
    table = pd.DataFrame(table)
    with _style():
        fig, ax = plt.subplots(figsize=(WIDTH_IN, max(2.6, 1.2 + 0.3 * len(tasks))))
        data = [np.maximum(t.lengths, 1) for t in tasks]
        ax.boxplot(
            data,
            **HORIZONTAL,
            whis=(1, 99),
            showfliers=False,
            widths=0.6,
            medianprops={"color": "C1"},
            patch_artist=True,
            boxprops={"facecolor": "0.9"},
        )
        y = np.arange(1, len(tasks) + 1)
        ax.plot(table["mean"], y, "o", color="C0", ms=4, label="mean (our trace)")
        if table["paper_mean"].notna().any():
            ax.plot(table["paper_mean"], y, "x", color="C3", ms=6, label="mean (paper)")
        ax.set_yticks(y, [f"{t.name} (batch {t.global_batch_size})" for t in tasks])
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel(
            "sequence length (tokens, log scale)\nbox: 25-75%, whiskers: 1-99%, orange line: median"
        )
        ax.set_title("Length distributions of the tasks")
        ax.legend(fontsize=7, loc="lower left")
        save(fig, table, out, "lengths")
    return table


def fig_sim_vs_real(pairs: pd.DataFrame, out: Path, source: str = "") -> pd.DataFrame:
    """Simulated against measured step times, per step (left) and per plan (right)."""
    pairs = pairs.copy()
    pairs["error_pct"] = 100 * (pairs["sim_step_time_s"] / pairs["real_step_time_s"] - 1)
    table = (
        pairs.groupby("plan", sort=False)
        .agg(
            steps=("step", "count"),
            real_step_time_s=("real_step_time_s", "mean"),
            sim_step_time_s=("sim_step_time_s", "mean"),
            mape_pct=("error_pct", lambda e: float(np.mean(np.abs(e)))),
        )
        .reset_index()
    )
    table["error_pct"] = 100 * (table["sim_step_time_s"] / table["real_step_time_s"] - 1)
    with _style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH_IN, 3.1))
        repeated = {"real_min_s", "real_max_s"} <= set(pairs.columns)  # repeated real runs: min-max bars
        for i, (plan, g) in enumerate(pairs.groupby("plan", sort=False)):
            xerr = (
                [g["real_step_time_s"] - g["real_min_s"], g["real_max_s"] - g["real_step_time_s"]]
                if repeated
                else None
            )
            left.errorbar(
                g["real_step_time_s"],
                g["sim_step_time_s"],
                xerr=xerr,
                fmt="o",
                ms=3.5,
                elinewidth=0.6,
                capsize=1.5,
                color=f"C{i}",
                label=plan,
            )
        lo = float(min(pairs["real_step_time_s"].min(), pairs["sim_step_time_s"].min()))
        hi = float(max(pairs["real_step_time_s"].max(), pairs["sim_step_time_s"].max()))
        left.plot([lo, hi], [lo, hi], "k:", lw=0.9, label="simulated = measured")
        left.set_xlabel("measured step time (s)" + (", median and range of runs" if repeated else ""))
        left.set_ylabel("simulated step time (s)")
        left.set_title("per step")
        left.legend(fontsize=6.5)
        x = np.arange(len(table))
        right.bar(
            x - 0.2, table["real_step_time_s"], 0.4, color="0.6", edgecolor="black", lw=0.6, label="measured"
        )
        right.bar(
            x + 0.2, table["sim_step_time_s"], 0.4, color="C0", edgecolor="black", lw=0.6, label="simulated"
        )
        for i, (_, r) in enumerate(table.iterrows()):  # above the taller bar of the pair
            right.annotate(
                f"{r['error_pct']:+.0f}%",
                (x[i], max(r["real_step_time_s"], r["sim_step_time_s"])),
                ha="center",
                va="bottom",
                fontsize=7.5,
                xytext=(0, 2),
                textcoords="offset points",
            )
        right.set_xticks(x, list(table["plan"]), rotation=20, ha="right", fontsize=7)
        right.set_ylabel("mean step time (s)")
        right.set_title("per plan (label: simulated vs measured)")
        right.margins(y=0.15)
        right.legend(fontsize=7)
        fig.suptitle(f"Simulated vs measured step times{f' ({source})' if source else ''}", fontsize=9.5)
        save(fig, table, out, "sim_vs_real")
    return table


# -- all of them ----------------------------------------------------------------------------------------------
def progress_steps(settings: FigureSettings) -> int:
    """How many times make_all calls progress."""
    return progress_total([s for specs in studies(settings).values() for s in specs]) + len(FIGURES)


def make_all(
    out: str | Path,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    settings: FigureSettings | None = None,
    validation: str | Path | None = "out/validate",
) -> dict:
    """Simulate every study, draw every figure under `out`; returns the manifest (also written as figures.json)."""
    start = time.perf_counter()
    out = Path(out)
    settings = replace(settings or FigureSettings(), seed=seed)
    note = progress or (lambda _label: None)
    plan = studies(settings)
    specs = [s for group in plan.values() for s in group]
    df = run_sweep(specs, settings.workers, note)
    df.insert(1, "study", [name for name, group in plan.items() for _ in group])
    out.mkdir(parents=True, exist_ok=True)
    _replace_into(out / "sweep.csv", lambda p: df.to_csv(p, index=False))
    _replace_into(out / "sweep.parquet", lambda p: df.to_parquet(p, index=False))
    parts, at = {}, 0
    for name, group in plan.items():
        parts[name] = df.iloc[at : at + len(group)].reset_index(drop=True)
        at += len(group)
    if len(parts["paper_plans"]):
        cols = [
            "study",
            "policy",
            "plan",
            "dispatcher",
            "step_time_s",
            "gpu_seconds_per_step",
            "padding_ratio",
            "tokens_per_step",
            "truncated_pct",
        ]
        table = parts["paper_plans"][cols]
        _replace_into(out / "paper_plans.csv", lambda p: table.to_csv(p, index=False))
    note("figure gpu_seconds")
    fig_gpu_seconds(parts["main"], out)
    note("figure ablation")
    fig_ablation(parts["main"], out)
    note("figure scalability_gpus")
    fig_scalability_gpus(parts["scalability_gpus"], out)
    note("figure scalability_tasks")
    fig_scalability_tasks(parts["scalability_tasks"], out)
    note("figure buckets")
    fig_buckets(parts["buckets"], out)
    note("figure planning_time")
    fig_planning_time(parts["planning_time"], out, f"1 process, ILP limit {settings.ilp_time_limit_s:g} s")
    note("figure lengths")
    tasks = {}
    for _, base in settings.main:
        for t in workload_of(base.scenario, base.tasks, None):
            tasks.setdefault(t.name, t)
    fig_lengths(list(tasks.values()), out)
    note("figure sim_vs_real")
    drawn = FIGURES[:-1]
    pairs, why = (None, "no validation folder given") if validation is None else load_validation(validation)
    if pairs is not None:
        fig_sim_vs_real(pairs, out, str(validation))
        drawn = FIGURES
    else:
        for ext in ("png", "pdf", "csv"):  # never leave an old comparison beside new figures
            (out / f"sim_vs_real.{ext}").unlink(missing_ok=True)
    base = settings.scaling
    manifest = {
        "figures": drawn,
        "paper_settings": settings.paper,
        "studies": {
            "main": {label: b.scenario or b.tasks for label, b in settings.main},
            "scaling": base.scenario or base.tasks,
            "scaling_gpus": list(settings.scaling_gpus),
            "tasks_gpus": settings.tasks_gpus,
            "task_sets": {
                str(k): workload_of(base.scenario, base.tasks, k).names for k in settings.num_tasks
            },
            "buckets": list(settings.buckets),
            "buckets_on": settings.buckets_base.scenario or settings.buckets_base.tasks,
            "planning_gpus": list(settings.planning_gpus),
            "planning_planners": list(settings.planning_planners),
        },
        "seed": settings.seed,
        "steps": settings.steps,
        "ilp_time_limit_s": settings.ilp_time_limit_s,
        "workers": settings.workers,
        "runs": len(df),
        "validation": {
            "folder": None if validation is None else str(validation),
            "found": pairs is not None,
            "note": why,
        },
        "wall_s": round(time.perf_counter() - start, 1),
    }
    _replace_into(out / "figures.json", lambda p: p.write_text(json.dumps(manifest, indent=2) + "\n"))
    return manifest


__all__ = ["FIGURES", "FigureSettings", "make_all", "progress_steps"]
