"""The paper-style figure set, regenerated from simulations (one sweep, analysis/sweep/, feeds them all).

Each figure draws its rows of the sweep as NAME.png, NAME.pdf and NAME.csv (the numbers drawn). The parts:
figure.py (what a figure is), registry.py (the set, in order: the one list `lobra figures` and `lobra report`
read), one module per family (compare.py, scalability.py, buckets.py, planning.py, lengths.py, validation.py),
lobra.analysis.style (the look every plot shares) and make.py (`make_all`: the sweep, every figure, figures.json).

Normalised as the paper does: GPU scalability relative to each policy's own smallest cluster; task scalability
relative to Task-Fused with the fewest tasks.
"""

from lobra.analysis.figures.figure import Figure, FigureError, FigureInputs, Table
from lobra.analysis.figures.make import make_all, progress_steps
from lobra.analysis.figures.registry import REGISTRY, FigureRegistry
from lobra.analysis.studies import FigureSettings

FIGURES = REGISTRY.names()

__all__ = [
    "FIGURES",
    "REGISTRY",
    "Figure",
    "FigureError",
    "FigureInputs",
    "FigureRegistry",
    "FigureSettings",
    "Table",
    "make_all",
    "progress_steps",
]
