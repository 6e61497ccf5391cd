"""What a figure is, for both commands that use it: `lobra figures` draws it (NAME.png, NAME.pdf, NAME.csv) and
`lobra report` shows it (a numbered section: its picture, a paragraph, some of its CSV's columns).

A Figure is a record, not a class to subclass: its drawing function reads what it needs from FigureInputs (the
sweep's rows by study, the settings, the validation pairs) and returns the table it wrote, or None when its inputs
are missing (then nothing of it is left in the folder).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from lobra.analysis.studies import FigureSettings


class FigureError(ValueError):
    """A figure registered twice, asked for by an unknown name, or whose table lost its declared columns."""


@dataclass(frozen=True)
class FigureInputs:
    """What the figures are drawn from: the rows of each study of the sweep, the settings that planned them, and
    the measured step pairs of the last `lobra validate` (None: none found)."""

    studies: Mapping[str, pd.DataFrame]
    settings: FigureSettings
    pairs: pd.DataFrame | None = None
    validation: str = ""  # what the pairs measured (scenario, model, where), for the sim-vs-real title


@dataclass(frozen=True)
class Table:
    """A table written beside a figure (NAME.csv, the study's rows, these columns) when its study has rows, and
    shown under the figure's section of the report (a subsection: title, text, the `shown` columns)."""

    name: str
    study: str
    columns: tuple[str, ...]
    title: str
    text: str
    shown: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_names(f"table {self.name!r}", self.name, self.columns, self.shown)


@dataclass(frozen=True)
class Figure:
    """One figure. `columns` are NAME.csv's, in order (make_all refuses a table that drifts from them); the
    report's section is numbered by the figure's place in the registry and titled `title`, shows the picture with
    `caption`, then `text` (or `notes(manifest)`, where the paragraph depends on the run), then the `shown`
    columns (all when empty). A figure that was not drawn has no section, or the line `unavailable(manifest)`."""

    name: str
    draw: Callable[[FigureInputs, Path], pd.DataFrame | None]
    columns: tuple[str, ...]
    title: str
    caption: str
    shown: tuple[str, ...] = ()
    text: str = ""
    notes: Callable[[dict], str] | None = None
    unavailable: Callable[[dict], str] | None = None
    tables: tuple[Table, ...] = field(default=())

    def __post_init__(self) -> None:
        _check_names(f"figure {self.name!r}", self.name, self.columns, self.shown)
        if not self.title or not self.caption:
            raise FigureError(f"figure {self.name!r}: title and caption must be non-empty")

    def paragraph(self, manifest: dict) -> str:
        return self.notes(manifest) if self.notes is not None else self.text

    def check(self, table: pd.DataFrame) -> pd.DataFrame:
        """The table, if its columns are the declared ones: the CSV's columns are part of the output's contract."""
        if tuple(table.columns) != self.columns:
            raise FigureError(
                f"figure {self.name!r} wrote the columns {list(table.columns)}, declared {list(self.columns)}"
            )
        return table


def _check_names(what: str, name: str, columns: tuple[str, ...], shown: tuple[str, ...]) -> None:
    if not name or not name.replace("_", "").isalnum():
        raise FigureError(f"{what}: the name must be letters, digits and underscores (it names files)")
    if not columns or len(set(columns)) != len(columns):
        raise FigureError(f"{what}: columns must be non-empty and distinct, got {list(columns)}")
    unknown = [c for c in shown if c not in columns]
    if unknown:
        raise FigureError(f"{what}: shown columns {unknown} are not among its columns")
