"""Helpers shared by the subcommands: JSON and table output, atomic file writes."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


def print_table(df: pd.DataFrame, floatfmt: str = "{:.4g}") -> None:
    print(df.to_string(index=False, float_format=lambda x: floatfmt.format(x)))


def atomic_write(path: str | Path, write) -> Path:
    """Call write(tmp_path), then move it into place: a failure never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
