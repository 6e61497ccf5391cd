"""Scalability, normalised as the paper does: GPU-seconds over the cluster size (each policy relative to its own
smallest cluster) and over the number of tasks (relative to Task-Fused with the fewest tasks), beside the paper's
published series."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from lobra.analysis import paper
from lobra.analysis.figures.figure import Figure
from lobra.analysis.style import COLORS, LABELS, WIDTH_IN, save, style

TAIL_COLUMNS = (
    "plan",
    "step_time_s",
    "gpu_seconds_per_step",
    "normalised",
    "paper_normalised",
    "idle_ratio",
    "truncated_pct",
)


@dataclass(frozen=True)
class Axis:
    """What one scalability figure varies (`key`) and how it normalises and labels it."""

    key: str
    other: str  # the column held fixed, shown beside the key
    published: dict
    xlabel: str
    ylabel: str

    @property
    def columns(self) -> tuple[str, ...]:
        return ("policy", self.key, self.other, *TAIL_COLUMNS)


GPUS = Axis(
    "num_gpus",
    "num_tasks",
    paper.GPU_SCALING,
    "number of GPUs",
    "GPU-seconds per step\n(relative to own smallest cluster)",
)
TASKS = Axis(
    "num_tasks",
    "num_gpus",
    paper.TASK_SCALING,
    "number of tasks",
    "GPU-seconds per step\n(relative to Task-Fused, fewest tasks)",
)


def normalised(rows: pd.DataFrame, axis: Axis) -> pd.DataFrame:
    """The rows sorted along the axis, with `normalised` (ours) and `paper_normalised` (where the paper has it)."""
    rows = rows.sort_values([axis.key]).copy()
    if axis.key == "num_gpus":  # each policy relative to its own smallest cluster
        ref = rows.groupby("policy")["gpu_seconds_per_step"].transform("first")
    else:  # relative to Task-Fused with the fewest tasks
        ref = float(rows[rows["policy"] == "task-fused"].iloc[0]["gpu_seconds_per_step"])
    rows["normalised"] = rows["gpu_seconds_per_step"] / ref
    pub, key = axis.published, axis.key
    pub_of = {(p, x): v for p in ("task-fused", "lobra") for x, v in zip(pub[key], pub[p], strict=True)}
    rows["paper_normalised"] = [
        pub_of.get((p, x), np.nan) for p, x in zip(rows["policy"], rows[key], strict=True)
    ]
    return rows


def _title(rows: pd.DataFrame, axis: Axis) -> str:
    r = rows.iloc[0]
    if axis.key == "num_gpus":
        return f"GPU scalability: {r['model']} on {r['gpu']}, {int(r['num_tasks'])} tasks"
    return f"Task scalability: {r['model']} on {int(r['num_gpus'])} x {r['gpu']}"


def fig_scaling(rows: pd.DataFrame, out: Path, axis: Axis, name: str) -> pd.DataFrame:
    """GPU-seconds over the axis per policy: normalised (left, with the paper's numbers) and absolute (right)."""
    rows = normalised(rows, axis)
    table = rows[list(axis.columns)]
    key = axis.key
    xs = sorted(rows[key].unique())
    with style():
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
            if axis.key == "num_gpus":  # cluster sizes double; task counts grow by steps of 4
                ax.set_xscale("log", base=2)
            ax.set_xticks(xs, [str(x) for x in xs])
            ax.minorticks_off()
            ax.set_xlabel(axis.xlabel)
        left.set_ylabel(axis.ylabel)
        right.set_ylabel("GPU-seconds per step")
        left.set_title("normalised as in the paper")
        right.set_title("absolute (simulated)")
        fig.suptitle(_title(rows, axis), fontsize=9.5)
        # One legend for both panels, below them: inside, it would hide the lines that start at the same point.
        fig.tight_layout(rect=(0, 0.13, 1, 1))
        fig.legend(*left.get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=7.5, frameon=False)
        save(fig, table, out, name, layout=False)
    return table


def fig_scalability_gpus(rows: pd.DataFrame, out: Path) -> pd.DataFrame:
    return fig_scaling(rows, out, GPUS, "scalability_gpus")


def fig_scalability_tasks(rows: pd.DataFrame, out: Path) -> pd.DataFrame:
    return fig_scaling(rows, out, TASKS, "scalability_tasks")


def task_sets_text(manifest: dict) -> str:
    """The task study's workloads, from figures.json: which tasks each point of it trains."""
    studies = manifest.get("studies", {})
    sets = studies.get("task_sets", {})
    if not sets:
        return ""
    lines = [f"- {k} tasks: {', '.join(v)}" for k, v in sets.items()]
    return (
        f"Workloads on {studies.get('tasks_gpus')} GPUs. Past the 4 tasks of `paper-70b-4task` we add the other"
        " datasets of `paper-70b` (the paper's 12) in that file's order; the 16-task point repeats the first 4"
        " under new names (the sampler draws a different order for each name):\n\n" + "\n".join(lines)
    )


SCALABILITY_GPUS = Figure(
    name="scalability_gpus",
    draw=lambda inputs, out: fig_scalability_gpus(inputs.studies["scalability_gpus"], out),
    columns=GPUS.columns,
    title="Scalability over GPUs",
    caption="GPU-seconds per step against the cluster size, normalised to each policy's smallest cluster (left)",
    shown=(
        "policy",
        "num_gpus",
        "plan",
        "gpu_seconds_per_step",
        "normalised",
        "paper_normalised",
        "idle_ratio",
    ),
    text="The global batch is the same at every cluster size, as in the paper's study.",
)

SCALABILITY_TASKS = Figure(
    name="scalability_tasks",
    draw=lambda inputs, out: fig_scalability_tasks(inputs.studies["scalability_tasks"], out),
    columns=TASKS.columns,
    title="Scalability over tasks",
    caption="GPU-seconds per step against the number of tasks, relative to Task-Fused with 4 tasks",
    shown=("policy", "num_tasks", "plan", "gpu_seconds_per_step", "normalised", "paper_normalised"),
    notes=task_sets_text,
)
