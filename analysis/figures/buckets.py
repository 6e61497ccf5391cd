"""The bucket study: step time and padding against the dispatcher's number of buckets, on a fixed LobRA plan, and
the knee beyond which more buckets stop paying."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from lobra.analysis import paper
from lobra.analysis.figures.figure import Figure
from lobra.analysis.style import WIDTH_IN, save, setting, style


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
    with style():
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
        left.set_ylim(bottom=0)
        right.set_ylim(bottom=0)
        fig.suptitle(f"Buckets: {setting(rows)}, plan {table['plan'].iloc[0]}", fontsize=9.5)
        save(fig, table, out, "buckets")
    return table


BUCKETS = Figure(
    name="buckets",
    draw=lambda inputs, out: fig_buckets(inputs.studies["buckets"], out),
    columns=(
        "num_buckets",
        "plan",
        "step_time_s",
        "gpu_seconds_per_step",
        "padding_ratio",
        "padding_pct",
        "knee",
    ),
    title="Number of buckets",
    caption="Step time and padding against the dispatcher's number of buckets, on the LobRA plan",
    shown=("num_buckets", "plan", "step_time_s", "padding_pct", "knee"),
    text="The plan is fixed (LobRA's, planned with the default 16 buckets); only the per-step bucketing changes.",
)
