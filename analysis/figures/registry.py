"""The figure set: every figure once, in the order `lobra figures` draws them and `lobra report` numbers its
sections. A figure is added here, in its place, and nowhere else."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from lobra.analysis.figures.buckets import BUCKETS
from lobra.analysis.figures.compare import ABLATION, GPU_SECONDS
from lobra.analysis.figures.figure import Figure, FigureError
from lobra.analysis.figures.lengths import LENGTHS
from lobra.analysis.figures.planning import PLANNING_TIME
from lobra.analysis.figures.scalability import SCALABILITY_GPUS, SCALABILITY_TASKS
from lobra.analysis.figures.validation import SIM_VS_REAL


class FigureRegistry:
    """Figures by name, in the order registered; a name registered twice (a figure's or a table's: both name
    files in one folder) or an unknown name is an error."""

    def __init__(self, figures: Iterable[Figure] = ()) -> None:
        self._figures: dict[str, Figure] = {}
        for figure in figures:
            self.register(figure)

    def register(self, figure: Figure) -> Figure:
        taken = set(self._figures) | {t.name for f in self for t in f.tables}
        for name in (figure.name, *(t.name for t in figure.tables)):
            if name in taken:
                raise FigureError(f"figure {name!r} is already registered")
            taken.add(name)
        self._figures[figure.name] = figure
        return figure

    def get(self, name: str) -> Figure:
        if name not in self._figures:
            raise FigureError(f"unknown figure {name!r}; choose from {', '.join(self._figures)}")
        return self._figures[name]

    def names(self) -> list[str]:
        return list(self._figures)

    def number(self, name: str) -> int:
        """The figure's place in the set, from 1: its section number in the report."""
        return self.names().index(self.get(name).name) + 1

    def __iter__(self) -> Iterator[Figure]:
        return iter(self._figures.values())

    def __len__(self) -> int:
        return len(self._figures)

    def __contains__(self, name: object) -> bool:
        return name in self._figures


REGISTRY = FigureRegistry(
    [
        GPU_SECONDS,
        ABLATION,
        SCALABILITY_GPUS,
        SCALABILITY_TASKS,
        BUCKETS,
        PLANNING_TIME,
        LENGTHS,
        SIM_VS_REAL,
    ]
)
