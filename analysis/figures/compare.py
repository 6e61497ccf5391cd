"""The policies side by side on the paper's settings: GPU-seconds per step (with the paper's own plans simulated
beside them) and the ablation that adds LobRA's parts one at a time."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from lobra.analysis.figures.figure import Figure, Table
from lobra.analysis.style import (
    ABLATION_LABELS,
    COLORS,
    LABELS,
    WIDTH_IN,
    annotate,
    save,
    setting,
    split_label,
    style,
)
from matplotlib.patches import Patch

POLICIES = ("task-sequential", "task-fused", "lobra", "lobra-plus")
ABLATION_ORDER = ("task-fused", "lobra-length", "lobra-balanced", "lobra")


def fig_gpu_seconds(rows: pd.DataFrame, out: Path) -> pd.DataFrame:
    """GPU-seconds per step of the baselines, LobRA and ours, per setting, with the reductions labelled."""
    rows = split_label(rows)
    table = gpu_seconds_table(rows)
    settings = list(dict.fromkeys(table["setting"]))
    with style():
        fig, axes = plt.subplots(1, len(settings), figsize=(WIDTH_IN, 3.3), squeeze=False)
        for ax, label in zip(axes[0], settings, strict=True):
            _gpu_seconds_panel(ax, table[table["setting"] == label])
            ax.set_title(f"{label}: {setting(rows[rows['setting'] == label])}")
        fig.suptitle("GPU-seconds per step (labels: change against the better baseline)", fontsize=9.5)
        save(fig, table, out, "gpu_seconds")
    return table


def gpu_seconds_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per setting: each policy's GPU-seconds and its reductions against each baseline, then the lower bound."""
    table = []
    for label, g in rows.groupby("setting", sort=False):
        by = g.set_index("policy")
        # Reductions at equal work: a policy that cuts tokens pays for them at its own rate (sweep rows).
        seq = by.loc["task-sequential", "equal_work_gpu_seconds"]
        fused = by.loc["task-fused", "equal_work_gpu_seconds"]
        best = min(seq, fused)
        for policy in POLICIES:
            r = by.loc[policy]
            gs = r["equal_work_gpu_seconds"]
            table.append(
                {"setting": label}
                | {k: r[k] for k in ("model", "gpu", "num_gpus", "num_tasks")}
                | {"policy": policy, "plan": r["plan"], "step_time_s": r["step_time_s"]}
                | {
                    "gpu_seconds_per_step": r["gpu_seconds_per_step"],
                    "vs_task-sequential_pct": 100 * (1 - gs / seq),
                }
                | {"vs_task-fused_pct": 100 * (1 - gs / fused), "vs_best_baseline_pct": 100 * (1 - gs / best)}
                | {"truncated_pct": r["truncated_pct"]}
            )
        r = by.loc["lobra"]
        lb = r["lower_bound_gpu_seconds"] / (1 - r["lower_bound_cut_pct"] / 100)
        table.append(
            {k: r[k] for k in ("model", "gpu", "num_gpus", "num_tasks")}
            | {"setting": label, "policy": "lower-bound", "plan": "-", "gpu_seconds_per_step": lb}
            | {"vs_best_baseline_pct": 100 * (1 - lb / best)}
        )
    return pd.DataFrame(table)


def _gpu_seconds_panel(ax, t: pd.DataFrame) -> None:
    """The policies as bars; the lower bound, which no policy runs at, as a dashed line across them."""
    runs = t[t["policy"] != "lower-bound"]
    names = list(runs["policy"])
    bars = ax.bar(
        [LABELS[n] for n in names],
        runs["gpu_seconds_per_step"],
        color=[COLORS[n] for n in names],
        edgecolor="black",
        linewidth=0.6,
    )
    for bar, (_, r) in zip(bars, runs.iterrows(), strict=True):
        text = _amount(r["gpu_seconds_per_step"])
        if not r["policy"].startswith("task-"):
            text += f"\n{-r['vs_best_baseline_pct']:+.0f}%"
        annotate(ax, bar, text)
    for _, r in t[t["policy"] == "lower-bound"].iterrows():
        v = r["gpu_seconds_per_step"]
        ax.axhline(
            v,
            color="0.3",
            ls="--",
            lw=1,
            label=f"lower bound {_amount(v)} ({-r['vs_best_baseline_pct']:+.0f}%)",
        )
        ax.legend(loc="upper right")
    ax.set_ylabel("GPU-seconds per step")
    ax.tick_params(axis="x", labelrotation=30, labelsize=7.5)
    for lab in ax.get_xticklabels():
        lab.set_horizontalalignment("right")
    ax.margins(y=0.22)
    ax.grid(axis="x", visible=False)


def _amount(v: float) -> str:
    """7,540 or 4.26: thousands separated, three significant digits below 100."""
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def fig_ablation(rows: pd.DataFrame, out: Path) -> pd.DataFrame:
    """The paper's ablation: Task-Fused, then heterogeneous replicas with length-based dispatch, + balanced
    dispatch, + dynamic bucketing (= LobRA); GPU-seconds relative to Task-Fused."""
    rows = split_label(rows)
    table = []
    for label, g in rows.groupby("setting", sort=False):
        by = g.set_index("policy")
        base = by.loc["task-fused", "gpu_seconds_per_step"]
        for policy in ABLATION_ORDER:
            r = by.loc[policy]
            table.append(
                {"setting": label, "policy": policy}
                | {k: r[k] for k in ("plan", "dispatcher", "bucketing", "gpu_seconds_per_step")}
                | {
                    "relative_to_task_fused": r["gpu_seconds_per_step"] / base,
                    "padding_ratio": r["padding_ratio"],
                }
            )
    table = pd.DataFrame(table)
    settings = list(dict.fromkeys(table["setting"]))
    top = axis_top(table["relative_to_task_fused"])
    with style():
        fig, axes = plt.subplots(1, len(settings), figsize=(WIDTH_IN, 3.4), squeeze=False, sharey=True)
        for ax, label in zip(axes[0], settings, strict=True):
            t = table[table["setting"] == label]
            bars = ax.bar(
                [ABLATION_LABELS[p] for p in t["policy"]],
                t["relative_to_task_fused"].clip(upper=top),
                color=[COLORS[p] for p in t["policy"]],
                edgecolor="black",
                linewidth=0.6,
            )
            for bar, v in zip(bars, t["relative_to_task_fused"], strict=True):
                # a bar past the axis is cut at its top, its value written on it
                annotate(ax, bar, f"{v:.2f}x" + (" (off scale)" if v > top else ""))
                if v > top:
                    bar.set_hatch("//")
            ax.axhline(1.0, color="black", lw=0.8, ls=":")
            ax.set_title(f"{label}: {setting(rows[rows['setting'] == label])}")
            ax.tick_params(axis="x", labelsize=7)
            ax.set_ylim(0, 1.18 * top)
            ax.grid(axis="x", visible=False)
        axes[0][0].set_ylabel("GPU-seconds per step\n(relative to Task-Fused)")
        handles = [
            Patch(facecolor=COLORS[p], edgecolor="black", label=LABELS[p].replace("\n", " "))
            for p in ABLATION_ORDER
        ]
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
        fig.suptitle("Ablation: each of LobRA's parts added in turn (dotted: Task-Fused)", fontsize=9.5)
        fig.tight_layout(rect=(0, 0.07, 1, 1))
        save(fig, table, out, "ablation", layout=False)
    return table


def axis_top(values: pd.Series, outlier: float = 2.0) -> float:
    """The top of a bar axis: the largest value, unless it exceeds `outlier` x the next one (it would squash every
    other bar), then the next one; the outlier is drawn cut at the top."""
    ordered = sorted(values, reverse=True)
    if len(ordered) > 1 and ordered[0] > outlier * ordered[1]:
        return ordered[1]
    return ordered[0]


PAPER_PLANS = Table(
    name="paper_plans",
    study="paper_plans",
    columns=(
        "study",
        "policy",
        "plan",
        "dispatcher",
        "step_time_s",
        "gpu_seconds_per_step",
        "padding_ratio",
        "tokens_per_step",
        "truncated_pct",
    ),
    title="The paper's plans, simulated here",
    text="The paper writes plans as `<a,b>xN` without saying here which degree comes first; we simulate every"
    " reading our cost model can run, each with the dispatch of the policy that found it. A plan whose"
    " largest replica holds fewer tokens than the others truncates more (`truncated_pct`) and is then not"
    " comparable: it trains on less data.",
    shown=("policy", "plan", "dispatcher", "gpu_seconds_per_step", "truncated_pct"),
)

GPU_SECONDS = Figure(
    name="gpu_seconds",
    draw=lambda inputs, out: fig_gpu_seconds(inputs.studies["main"], out),
    columns=(
        "setting",
        "model",
        "gpu",
        "num_gpus",
        "num_tasks",
        "policy",
        "plan",
        "step_time_s",
        "gpu_seconds_per_step",
        "vs_task-sequential_pct",
        "vs_task-fused_pct",
        "vs_best_baseline_pct",
        "truncated_pct",
    ),
    title="GPU-seconds per policy",
    caption="GPU-seconds per step of each policy; labels: change against the better baseline",
    shown=(
        "setting",
        "policy",
        "plan",
        "gpu_seconds_per_step",
        "vs_task-sequential_pct",
        "vs_task-fused_pct",
        "truncated_pct",
    ),
    text="Task-Sequential runs each task alone on its best homogeneous plan, one after another; Task-Fused runs all"
    " tasks on identical replicas sized for the longest sequence; LobRA is the paper's method as we implement"
    " it; LobRA+ is ours (plans scored by the dispatch that will run, packing instead of padding). The lower"
    " bound is every sequence on its cheapest config, perfectly packed and balanced.",
    tables=(PAPER_PLANS,),
)

ABLATION = Figure(
    name="ablation",
    draw=lambda inputs, out: fig_ablation(inputs.studies["main"], out),
    columns=(
        "setting",
        "policy",
        "plan",
        "dispatcher",
        "bucketing",
        "gpu_seconds_per_step",
        "relative_to_task_fused",
        "padding_ratio",
    ),
    title="Ablation",
    caption="GPU-seconds relative to Task-Fused as each part of LobRA is added",
    shown=("setting", "policy", "plan", "dispatcher", "bucketing", "relative_to_task_fused", "padding_ratio"),
    text="Heterogeneous replicas with length-based dispatch (each sequence to the cheapest replica that holds it) and"
    " the baselines' power-of-two buckets; then balanced dispatch (the per-step integer programme); then dynamic"
    " bucketing (= LobRA). The paper publishes this ablation as a figure whose numbers were not"
    " recorded here, so it is not in the summary table.",
)
