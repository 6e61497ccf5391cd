"""Planning time against the cluster size, beside the paper's (which ran on 64 threads)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from lobra.analysis import paper
from lobra.analysis.figures.figure import Figure, FigureInputs
from lobra.analysis.style import COLORS, LABELS, WIDTH_IN, save, style


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
    with style():
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
        ax.set_title(
            f"Planning time: {r['model']} on {r['gpu']}, {int(r['num_tasks'])} tasks\n"
            "(ours: one process on this machine; the paper's: 64 threads)"
        )
        ax.legend(fontsize=7)
        save(fig, table, out, "planning_time")
    return table


def _draw(inputs: FigureInputs, out: Path) -> pd.DataFrame:
    how = f"1 process, ILP limits {inputs.settings.ilp_node_limit} nodes / {inputs.settings.ilp_time_limit_s:g} s"
    return fig_planning_time(inputs.studies["planning_time"], out, how)


PLANNING_TIME = Figure(
    name="planning_time",
    draw=_draw,
    columns=(
        "planner",
        "num_gpus",
        "planning_time_s",
        "plans_considered",
        "plan",
        "planned_step_time_s",
        "planned_gpu_seconds_per_step",
        "paper_planning_time_s",
    ),
    title="Planning time",
    caption="Planning time against the number of GPUs (log scale)",
    shown=("planner", "num_gpus", "planning_time_s", "plans_considered", "plan", "paper_planning_time_s"),
    text="Wall-clock time of one planning call on this machine, shared with other work while it ran: the absolute"
    " numbers are noisy; the trend and the order of magnitude are what we compare.",
)
