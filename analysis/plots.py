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
    """GPU-seconds per step by policy, each bar labelled with its change against Task-Fused; the bounds are lines
    (no policy runs at them), the exhaustive optimum a hatched bar."""
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(7.5, 3.8))
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
        ax.annotate(
            label,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 2),
            textcoords="offset points",
        )
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
    ax.legend(handles=handles, fontsize=7, loc="upper right", framealpha=0.9)
    ax.set_xlabel("policy")
    ax.set_ylabel("GPU-seconds per step")
    ax.set_title(f"{title}\n(labels: change against Task-Fused)", fontsize=10)
    ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    ax.set_ylim(0, 1.3 * max(r["gpu_seconds_per_step"] for r in rows))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path: str | Path) -> None:
    """The figure in the format its suffix names (PNG without one), written whole or not at all."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=150))
    plt.close(fig)
