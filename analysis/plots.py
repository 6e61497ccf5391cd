"""The command-line plots outside the figure set: a profile's layer-time fit (`costmodel fit --plot`), a policy
comparison (`compare --out`) and a trace's length histogram (`traces show --plot`), in the figures' style
(lobra.analysis.style). Each draws to the path it is given, in the format its suffix names; the caller writes it
whole or not at all."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from lobra.analysis.style import DPI, WIDTH_IN, annotate, style  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402


def plot_fit(df: pd.DataFrame, fit, path: str | Path, title: str) -> None:
    """Measured (dots) and fitted (lines) ms per layer against sequence length: a grid of panels, one per tp, one
    colour per micro-batch size (the same colour in every panel), one legend for the figure."""
    tps = sorted(df["tp"].unique())
    cols = min(2, len(tps))
    rows = math.ceil(len(tps) / cols)
    sizes = sorted(df["mbs"].unique())
    colour = {mbs: f"C{i % 10}" for i, mbs in enumerate(sizes)}
    with style():
        fig, axes = plt.subplots(
            rows,
            cols,
            figsize=(WIDTH_IN if cols > 1 else WIDTH_IN / 2 + 0.5, 2.5 * rows + 0.8),
            squeeze=False,
        )
        for ax, tp in zip(axes.flat, tps, strict=False):
            for mbs, group in df[df["tp"] == tp].groupby("mbs"):
                group = group.sort_values("seq_len")
                ax.plot(group["seq_len"], group["time"], "o", ms=3, color=colour[mbs])
                predicted = fit.predict_ms(int(tp), group["mbs"], group["seq_len"])
                ax.plot(group["seq_len"], predicted, "-", color=colour[mbs], lw=1)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.set_title(f"tp={tp} (fit MAPE {fit.mape_pct.get(int(tp), float('nan')):.1f}%)")
            ax.set_xlabel("sequence length (tokens)")
            ax.set_ylabel("ms per layer, fwd+bwd")
        for ax in list(axes.flat)[len(tps) :]:
            ax.set_visible(False)
        handles = [
            plt.Line2D([], [], color=colour[m], marker="o", ms=3, lw=1, label=f"mbs {m}") for m in sizes
        ]
        fig.legend(handles=handles, loc="lower center", ncol=len(sizes), frameon=False)
        fig.suptitle(f"{title}\n(dots: measured; lines: fit)", fontsize=9.5)
        fig.tight_layout(rect=(0, 0.07, 1, 1))
        _save(fig, path)


def plot_compare(rows: list[dict], title: str, path: str | Path) -> None:
    """GPU-seconds per step by policy, each bar labelled with its change against Task-Fused; the bounds are lines
    (no policy runs at them), the exhaustive optimum a hatched bar."""
    with style():
        _draw_compare(rows, title, path)


def _draw_compare(rows: list[dict], title: str, path: str | Path) -> None:
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.6))
    runs = [r for r in rows if r["policy"] not in ("lower-bound", "integer-bound")]
    kinds = {  # colour and legend entry of each kind of run
        "baseline": ("0.6", ""),
        "LobRA and its ablations": ("C0", ""),
        "lobra-plus (ours)": ("C3", ""),
        "best plan, all tried": ("white", "//"),
    }

    def kind(name: str) -> str:
        if name.startswith("task-"):
            return "baseline"
        return {"lobra-plus": "lobra-plus (ours)", "optimum": "best plan, all tried"}.get(
            name, "LobRA and its ablations"
        )

    bars = ax.bar(
        [r["policy"] for r in runs],
        [r["gpu_seconds_per_step"] for r in runs],
        color=[kinds[kind(r["policy"])][0] for r in runs],
        hatch=[kinds[kind(r["policy"])][1] for r in runs],
        edgecolor="black",
        linewidth=0.6,
    )
    for bar, row in zip(bars, runs, strict=True):
        label = f"{-row['vs_task-fused_pct']:+.0f}%" if row["policy"] != "task-fused" else "baseline"
        annotate(ax, bar, label)
    handles = [
        Patch(facecolor=c, hatch=h, edgecolor="black", label=k)
        for k, (c, h) in kinds.items()
        if any(kind(r["policy"]) == k for r in runs)
    ]
    for r in rows:
        if r["policy"] in ("lower-bound", "integer-bound"):
            style = ":" if r["policy"] == "lower-bound" else "--"
            label = "fluid lower bound" if r["policy"] == "lower-bound" else "integer lower bound"
            handles.append(ax.axhline(r["gpu_seconds_per_step"], color="0.3", ls=style, lw=1, label=label))
    ax.legend(handles=handles, loc="upper right", framealpha=0.9)
    ax.set_xlabel("policy")
    ax.set_ylabel("GPU-seconds per step")
    ax.set_title(f"{title}\n(labels: change against Task-Fused)")
    ax.tick_params(axis="x", labelrotation=20)
    ax.set_ylim(0, 1.3 * max(r["gpu_seconds_per_step"] for r in rows))
    ax.grid(axis="x", visible=False)
    fig.tight_layout()
    _save(fig, path)


def plot_length_histogram(trace, path: str | Path, bins: int = 60) -> None:
    """Histogram of a trace's total lengths, with its mean, median and 99th percentile marked and its moments in
    the title."""
    s = trace.stats
    # Log-spaced bins and axis where lengths span more than a decade or so; a narrow trace reads better linear.
    log = s.max > 20 * max(1, s.min)
    edges = np.geomspace(max(1, s.min) * 0.99, s.max * 1.01, bins + 1) if log else bins
    with style():
        fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.7, 3.0))
        ax.hist(trace.total, bins=edges, color="C0", alpha=0.8)
        if log:
            ax.set_xscale("log")
            # Plain token counts at 1, 2 and 5 of every decade; matplotlib's "3x10^3" minor labels collide.
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        for value, label, ls in ((s.mean, "mean", "-"), (s.p50, "median", "--"), (s.p99, "p99", ":")):
            ax.axvline(value, color="C3", ls=ls, lw=1, label=f"{label} {value:,.0f}")
        ax.set_xlabel("sequence length (tokens" + (", log scale)" if log else ")"))
        ax.set_ylabel("samples")
        ax.set_title(
            f"{trace.name}: {s.count:,} samples\nskewness {s.skewness:.2f}, excess kurtosis {s.kurtosis:.1f}"
        )
        ax.legend()
        fig.tight_layout()
        _save(fig, path)


def _save(fig, path: str | Path) -> None:
    """The figure in the format its suffix names (PNG without one)."""
    fig.savefig(path, format=Path(path).suffix.lstrip(".") or "png", dpi=DPI)
    plt.close(fig)
