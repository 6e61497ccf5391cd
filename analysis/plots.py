"""Plots of the cost model (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from lobra.io import atomic_write  # noqa: E402


def plot_fit(df: pd.DataFrame, fit, path: str | Path) -> None:
    """Measured vs fitted ms per layer against sequence length, one panel per tp, one line per micro-batch size."""
    tps = sorted(df["tp"].unique())
    fig, axes = plt.subplots(1, len(tps), figsize=(3.6 * len(tps), 3.4), squeeze=False, sharey=False)
    for ax, tp in zip(axes[0], tps, strict=True):
        rows = df[df["tp"] == tp]
        for i, (mbs, group) in enumerate(rows.groupby("mbs")):
            group = group.sort_values("seq_len")
            color = f"C{i}"
            ax.plot(group["seq_len"], group["time"], "o", ms=3, color=color, label=f"mbs {mbs}")
            ax.plot(
                group["seq_len"],
                fit.predict_ms(int(tp), group["mbs"], group["seq_len"]),
                "-",
                color=color,
                lw=1,
            )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"tp={tp} (fit MAPE {fit.mape_pct.get(int(tp), float('nan')):.1f}%)")
        ax.set_xlabel("sequence length (tokens)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("time per layer, fwd+bwd (ms)")
    axes[0][-1].legend(fontsize=7, title="dots measured, lines fit", title_fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def plot_compare(rows: list[dict], title: str, path: str | Path) -> None:
    """GPU-seconds per step by policy, each bar labelled with its reduction against Task-Fused."""
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    names = [r["policy"] for r in rows]
    values = [r["gpu_seconds_per_step"] for r in rows]
    colors = ["0.55" if n.startswith("task-") else ("0.85" if n == "lower-bound" else "C0") for n in names]
    colors = ["C3" if n == "lobra-plus" else c for n, c in zip(names, colors, strict=True)]
    bars = ax.bar(names, values, color=colors, edgecolor="black", linewidth=0.6)
    for bar, row in zip(bars, rows, strict=True):
        label = f"{-row['vs_task-fused_pct']:+.0f}%" if row["policy"] != "task-fused" else "baseline"
        ax.annotate(
            label,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 2),
            textcoords="offset points",
        )
    ax.set_ylabel("GPU-seconds per step")
    ax.set_title(f"{title}\n(labels: change against Task-Fused)", fontsize=10)
    ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    ax.margins(y=0.12)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path: str | Path) -> None:
    """The figure in the format its suffix names (PNG without one), written whole or not at all."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=150))
    plt.close(fig)
