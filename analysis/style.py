"""The look every figure shares: names and colours of the policies, page width at 150 dpi, the rc settings, and
`save` (NAME.png, NAME.pdf, NAME.csv, each written whole or not at all)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a display: the figures are drawn on headless machines too
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from lobra.io import atomic_write  # noqa: E402

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


def save(fig, table: pd.DataFrame, out: Path, name: str, layout: bool = True) -> list[Path]:
    """NAME.png (150 dpi), NAME.pdf and NAME.csv under out."""
    out.mkdir(parents=True, exist_ok=True)
    if layout:
        fig.tight_layout()
    for ext in ("png", "pdf"):
        # A fixed creation date keeps the PDF byte-identical from run to run.
        meta = {"CreationDate": None} if ext == "pdf" else {"Software": None}
        atomic_write(
            out / f"{name}.{ext}", lambda p, e=ext, m=meta: fig.savefig(p, format=e, dpi=DPI, metadata=m)
        )
    plt.close(fig)
    atomic_write(out / f"{name}.csv", lambda p: table.to_csv(p, index=False))
    return [out / f"{name}.{ext}" for ext in ("png", "pdf", "csv")]


def style():
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


def setting(rows: pd.DataFrame) -> str:
    """'llama2-7b, 16 x a100-40gb, 6 tasks': the setting of a study, for titles."""
    r = rows.iloc[0]
    return f"{r['model']}, {int(r['num_gpus'])} x {r['gpu']}, {int(r['num_tasks'])} tasks"


def split_label(rows: pd.DataFrame) -> pd.DataFrame:
    """'7B|lobra' -> setting '7B', policy 'lobra': the main study runs every setting under one policy column."""
    rows = rows.copy()
    rows[["setting", "policy"]] = rows["policy"].str.split("|", n=1, expand=True)
    return rows


def annotate(ax, bar, text: str) -> None:
    """A label just above a bar."""
    ax.annotate(
        text,
        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
        ha="center",
        va="bottom",
        fontsize=7.5,
        xytext=(0, 2),
        textcoords="offset points",
    )
