"""Length histogram of a trace (matplotlib, Agg backend; imported only when a plot is asked for)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from lobra.traces.trace import Trace  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402


def plot_length_histogram(trace: Trace, path: str | Path, bins: int = 60) -> None:
    """Histogram of total lengths on log-spaced bins (lengths span 2 to 5 decades), with key statistics."""
    s = trace.stats
    lengths = trace.total
    edges = np.geomspace(max(1, s.min) * 0.99, s.max * 1.01, bins + 1) if s.max > s.min else bins
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.hist(lengths, bins=edges, color="C0", alpha=0.8)
    if s.max > s.min:
        ax.set_xscale("log")
        # Plain token counts on the major ticks; matplotlib's minor "3x10^3" labels collide on a log axis.
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    for value, label, style in ((s.mean, "mean", "-"), (s.p50, "p50", "--"), (s.p99, "p99", ":")):
        ax.axvline(value, color="C3", ls=style, lw=1, label=f"{label} {value:,.0f}")
    ax.set_xlabel("sequence length (tokens)")
    ax.set_ylabel("samples")
    ax.set_title(
        f"{trace.name}: {s.count:,} samples, skewness {s.skewness:.2f}, kurtosis {s.kurtosis:.1f}", fontsize=9
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format=Path(path).suffix.lstrip(".") or "png", dpi=120)
    plt.close(fig)
