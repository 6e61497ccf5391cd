"""Simulated against measured step times: the step pairs of the last `lobra validate` (read by
analysis/studies.py, load_validation), per step and per plan. Drawn only when that run is found."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from lobra.analysis.figures.figure import Figure, FigureInputs
from lobra.analysis.style import WIDTH_IN, save, style


def per_plan(pairs: pd.DataFrame) -> pd.DataFrame:
    """Mean measured and simulated step time per plan, the MAPE over its steps and the error of the means."""
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
    return table


def fig_sim_vs_real(pairs: pd.DataFrame, out: Path, source: str = "") -> pd.DataFrame:
    """Simulated against measured step times, per step (left) and per plan (right)."""
    pairs = pairs.copy()
    pairs["error_pct"] = 100 * (pairs["sim_step_time_s"] / pairs["real_step_time_s"] - 1)
    table = per_plan(pairs)
    with style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH_IN, 3.1))
        _per_step_panel(left, pairs)
        _per_plan_panel(right, table)
        fig.suptitle(f"Simulated vs measured step times{f', {source}' if source else ''}", fontsize=9.5)
        save(fig, table, out, "sim_vs_real")
    return table


def _per_step_panel(ax, pairs: pd.DataFrame) -> None:
    repeated = {"real_min_s", "real_max_s"} <= set(pairs.columns)  # repeated real runs: min-max bars
    for i, (plan, g) in enumerate(pairs.groupby("plan", sort=False)):
        xerr = (
            [g["real_step_time_s"] - g["real_min_s"], g["real_max_s"] - g["real_step_time_s"]]
            if repeated
            else None
        )
        ax.errorbar(
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
    ax.plot([lo, hi], [lo, hi], "k:", lw=0.9, label="simulated = measured")
    ax.set_xlabel("measured step time (s)" + (", median and range of runs" if repeated else ""))
    ax.set_ylabel("simulated step time (s)")
    ax.set_title("per step")
    ax.legend(fontsize=6.5)


def _per_plan_panel(ax, table: pd.DataFrame) -> None:
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["real_step_time_s"], 0.4, color="0.6", edgecolor="black", lw=0.6, label="measured")
    ax.bar(x + 0.2, table["sim_step_time_s"], 0.4, color="C0", edgecolor="black", lw=0.6, label="simulated")
    for i, (_, r) in enumerate(table.iterrows()):  # above the taller bar of the pair
        ax.annotate(
            f"{r['error_pct']:+.0f}%",
            (x[i], max(r["real_step_time_s"], r["sim_step_time_s"])),
            ha="center",
            va="bottom",
            fontsize=7.5,
            xytext=(0, 2),
            textcoords="offset points",
        )
    ax.set_xticks(x, [p.replace(" ", "\n") for p in table["plan"]], fontsize=7)  # one replica group a line
    ax.set_ylabel("mean step time (s)")
    ax.set_title("per plan (label: simulated vs measured)")
    ax.margins(y=0.15)
    ax.legend(fontsize=7)


def _draw(inputs: FigureInputs, out: Path) -> pd.DataFrame | None:
    if inputs.pairs is None:
        return None
    return fig_sim_vs_real(inputs.pairs, out, inputs.validation)


def validation_text(manifest: dict) -> str:
    """How the pairs were measured and the validation run's headline metrics, from its validation.json when that
    is still there (figures.json says where the run was)."""
    val = manifest.get("validation", {})
    folder = val.get("folder")
    path = Path(folder) / "validation.json" if folder else None
    parts = [
        f"Measured by `lobra validate` (`{folder}`): the executor ran each plan for real on this machine and the"
        " simulator ran the same plan on the same sampled steps; warm-up steps are left out. This checks the"
        " simulator and the cost model on the hardware at hand (CPU ranks), not the paper's GPU clusters."
    ]
    if path is None or not path.is_file():
        return parts[0]
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return parts[0]
    keys = ("mape_step_time", "p95_abs_pct_error", "kendall_tau", "gpu_seconds_error_pct", "step_pairs")
    metrics = [f"{k} {data[k]:.3g}" for k in keys if isinstance(data.get(k), int | float)]
    if metrics:
        parts.append("Overall: " + ", ".join(metrics) + ".")
    noise = data.get("noise") or {}
    if isinstance(noise.get("single_run_vs_median_pct"), int | float):
        parts.append(
            f"Real step times are medians over {noise['repeats']} runs of each plan. Run-to-run noise: a single"
            f" run's step is {noise['single_run_vs_median_pct']:.3g}% from that median on average; against single"
            f" runs the simulator's MAPE is {noise['single_run_mape_pct']:.3g}%."
        )
    return "\n\n".join(parts)


def no_validation(manifest: dict) -> str:
    note = manifest.get("validation", {}).get("note", "")
    return f"No validation run found: run `lobra validate`, then `lobra figures` ({note})."


SIM_VS_REAL = Figure(
    name="sim_vs_real",
    draw=_draw,
    columns=("plan", "steps", "real_step_time_s", "sim_step_time_s", "mape_pct", "error_pct"),
    title="Simulated vs measured",
    caption="Simulated against measured step times",
    notes=validation_text,
    unavailable=no_validation,
)
