"""Writing outputs whole or not at all: every file lobra writes goes through here.

A file is written to a fresh temporary name beside its target (never a predictable path, never in /tmp, so the
final rename stays on one file system) and renamed into place, so a reader sees the old file or the new one, never
half of one. Outputs are ordinary files (mode 0644), whatever the process umask makes of mkstemp's private 0600.
This module imports nothing of lobra's: every layer may use it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

FILE_MODE = 0o644


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """write(tmp) to a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: str | Path, payload, indent: int | None = 2) -> Path:
    return write_text(path, json.dumps(payload, indent=indent) + "\n")


def write_table(df, stem: str | Path, formats: tuple[str, ...] = ("csv", "parquet")) -> list[Path]:
    """A pandas DataFrame as STEM.csv and STEM.parquet (or the formats given), each whole or not at all."""
    stem = Path(stem)
    writers = {
        "csv": lambda tmp: df.to_csv(tmp, index=False),
        "parquet": lambda tmp: df.to_parquet(tmp, index=False),
    }
    return [atomic_write(stem.with_name(f"{stem.name}.{fmt}"), writers[fmt]) for fmt in formats]
