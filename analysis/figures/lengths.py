"""The tasks' length distributions (after each task's max_len policy), beside the moments the paper publishes."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from lobra.analysis.figures.figure import Figure
from lobra.analysis.studies import FigureSettings
from lobra.analysis.style import HORIZONTAL, WIDTH_IN, save, style
from lobra.analysis.sweep import workload_of
from lobra.traces import PAPER_DATASETS
from matplotlib.lines import Line2D
from matplotlib.patches import Patch


def fig_lengths(tasks: list, out: Path) -> pd.DataFrame:
    """Each task's length distribution (after its max_len policy): box 25-75%, whiskers 1-99%, our mean, and the
    mean the paper publishes for that dataset."""
    table = pd.DataFrame([_row(t) for t in tasks])
    with style():
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
        ax.set_xlabel("sequence length (tokens, log scale)")
        ax.set_title("Length distributions of the tasks (after each task's max_len)")
        # what the boxes mean, as legend entries beside the means
        box = Patch(facecolor="0.9", edgecolor="black", label="25-75% (whiskers 1-99%)")
        median = Line2D([], [], color="C1", label="median")
        handles, _ = ax.get_legend_handles_labels()
        ax.legend(handles=[box, median, *handles], fontsize=7, loc="lower left")
        save(fig, table, out, "lengths")
    return table


def _row(task) -> dict:
    s = task.stats
    pub = PAPER_DATASETS.get(task.name)
    return {
        "task": task.name,
        "samples": s.count,
        **s.summary(),
        "global_batch_size": task.global_batch_size,
        "paper_mean": pub.mean if pub else np.nan,
        "paper_skewness": pub.skewness if pub else np.nan,
        "paper_kurtosis": pub.kurtosis if pub else np.nan,
    }


def main_tasks(settings: FigureSettings) -> list:
    """Every task of the main study's workloads, each once (by name, first seen first)."""
    tasks = {}
    for _, base in settings.main:
        for t in workload_of(base.scenario, base.tasks, None):
            tasks.setdefault(t.name, t)
    return list(tasks.values())


LENGTHS = Figure(
    name="lengths",
    draw=lambda inputs, out: fig_lengths(main_tasks(inputs.settings), out),
    columns=(
        "task",
        "samples",
        "mean",
        "p50",
        "p99",
        "max",
        "skewness",
        "kurtosis",
        "global_batch_size",
        "paper_mean",
        "paper_skewness",
        "paper_kurtosis",
    ),
    title="Length distributions",
    caption="Length distribution of every task (synthetic, moment-matched to the paper's statistics)",
    shown=(
        "task",
        "mean",
        "paper_mean",
        "skewness",
        "paper_skewness",
        "kurtosis",
        "paper_kurtosis",
        "p99",
        "max",
    ),
)
