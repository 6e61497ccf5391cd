"""Writing outputs whole or not at all: every file lobra writes goes through here.

A file is written to a fresh temporary name beside its target (never a predictable path, never in /tmp, so the
final rename stays on one file system) and renamed into place, so a reader sees the old file or the new one, never
half of one. Outputs are ordinary files (mode 0644), whatever the process umask makes of mkstemp's private 0600.
A run's several outputs go into a fresh folder beside their destination first (`staged_dir`), then move into place
file by file, so a failure while writing (a full disk) leaves the old outputs as they were, not new tables beside a
stale summary. `check_writable` finds an unwritable destination before the work, and `OutputLock` keeps two runs
out of one folder. This module imports nothing of lobra's: every layer may use it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

FILE_MODE = 0o644
LOCK_NAME = ".lobra.lock"


class OutputError(ValueError):
    """An output folder that cannot be used: the CLI reports it in one line (exit status 2)."""


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


def check_writable(folder: str | Path) -> Path:
    """Before any long work: `folder` is, or can be created as, a folder this process can write in (probed by
    creating a file, since permission bits say nothing on a read-only mount or to root)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"output folder {folder} exists and is not a folder")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"cannot create output folder {folder}: {existing} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".lobra-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OutputError(f"cannot write in output folder {folder}: {err.strerror or err}") from None
    return folder


@contextmanager
def staged_dir(out: str | Path) -> Iterator[Path]:
    """A fresh folder beside `out` to write a run's outputs in; when the block ends well, every file moves into
    `out` (replacing its old version; files of other runs stay), else the stage is removed and `out` is as it was."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staged-"))
    try:
        yield stage
        out.mkdir(exist_ok=True)
        for src in sorted(stage.rglob("*")):
            if src.is_file():
                dst = out / src.relative_to(stage)
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


class OutputLock:
    """An exclusive lock on an output folder: flock on FOLDER/.lobra.lock, which holds the owner's pid and host.

    The lock goes with the process holding it (the kernel releases it), so a crash leaves nothing to clean up; the
    owner's line left in the file tells that the previous run did not end cleanly (`stale`). flock is per host:
    on a shared filesystem, runs on different hosts are not kept apart."""

    def __init__(self, folder: str | Path, what: str = "run") -> None:
        self.path = Path(folder) / LOCK_NAME
        self.what = what
        self.stale: str | None = None  # the owner of a lock left behind by a run that died
        self._fd: int | None = None

    def acquire(self) -> OutputLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise OutputError(
                f"{self.path.parent} is in use by another lobra {self.what} ({owner}); wait for it to end or"
                " choose another --out"
            ) from None
        self.stale = os.read(fd, 200).decode(errors="replace").strip() or None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # a clean end: nothing stale to report next time
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
