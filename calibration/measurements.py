"""Typed results of the executor calibration: the jobs, what one job's ranks measured, and its JSON form (the file
rank 0 writes for the orchestrator, calibration/rank.py -> calibration/jobs.py)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lobra.executor.errors import ExecutorError


@dataclass(frozen=True)
class Job:
    """One torchrun launch: a plan of `nproc` ranks; `grid`: it times the profile grid on its replica alone;
    `host`: it measures host effects; `target`: the config whose per-R contention table it fills (None for a plan
    measured only as itself)."""

    plan: str
    nproc: int
    grid: bool = False
    host: bool = False
    target: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.nproc, int) or self.nproc < 1:
            raise ExecutorError(f"Job.nproc must be a positive integer, got {self.nproc!r}")


@dataclass(frozen=True)
class GridPoint:
    """One profile shape timed on one replica: `samples` (ms of the whole micro-batch), and from a pass before them
    the shape's first run in the process and the run straight after it (ms; None where not measured)."""

    tp: int
    seq_len: int
    mbs: int
    samples: tuple[float, ...]
    first_ms: float | None = None
    second_ms: float | None = None

    def __post_init__(self) -> None:
        if not self.samples:
            raise ExecutorError(f"GridPoint.samples of ({self.seq_len}, {self.mbs}) is empty")

    @property
    def first_run_ms(self) -> float | None:
        """The shape's first run over its second, back to back."""
        return None if self.first_ms is None or self.second_ms is None else self.first_ms - self.second_ms


@dataclass(frozen=True)
class BlockTime:
    """The reference block on one config's first replica: alone, and with every rank of the job busy (mean seconds
    per block), and how many copies of it that replica ran per sample together."""

    alone_s: float
    together_s: float
    copies: int = 1


@dataclass(frozen=True)
class HostMeasurement:
    """The host effects one job measured on its plan of `num_ranks` ranks (calibration/host.py says what each is)."""

    num_ranks: int
    contention: dict[str, float]
    sync_s: float
    optimizer_s: float
    block_s: dict[str, BlockTime] = field(default_factory=dict)
    stage_weights: dict[str, tuple[float, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.num_ranks, int) or self.num_ranks < 1:
            raise ExecutorError(
                f"HostMeasurement.num_ranks must be a positive integer, got {self.num_ranks!r}"
            )
        if any(not v > 0 for v in self.contention.values()):
            raise ExecutorError(f"HostMeasurement.contention must be positive, got {self.contention!r}")

    def to_dict(self) -> dict:
        return asdict(self) | {"stage_weights": {c: list(w) for c, w in self.stage_weights.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> HostMeasurement:
        return cls(
            num_ranks=int(d["num_ranks"]),
            contention={c: float(v) for c, v in d["contention"].items()},
            sync_s=float(d["sync_s"]),
            optimizer_s=float(d["optimizer_s"]),
            block_s={c: BlockTime(**b) for c, b in d.get("block_s", {}).items()},
            stage_weights={c: tuple(map(float, w)) for c, w in d.get("stage_weights", {}).items()},
        )


@dataclass(frozen=True)
class RankResult:
    """What one job's ranks measured, as rank 0 writes it."""

    grid: tuple[GridPoint, ...] = ()
    host: HostMeasurement | None = None
    load_avg_1m: float = 0.0

    def write(self, path: str | Path) -> None:
        from lobra.io import write_json

        payload = {
            "grid": [asdict(p) for p in self.grid],
            "host": self.host.to_dict() if self.host else None,
            "load_avg_1m": self.load_avg_1m,
        }
        write_json(path, payload, indent=None)

    @classmethod
    def read(cls, path: str | Path) -> RankResult:
        payload = json.loads(Path(path).read_text())
        grid = tuple(GridPoint(**p | {"samples": tuple(p["samples"])}) for p in payload["grid"])
        host = HostMeasurement.from_dict(payload["host"]) if payload["host"] else None
        return cls(grid, host, float(payload["load_avg_1m"]))


@dataclass(frozen=True)
class JobResult:
    """One job of one round, with what its ranks measured."""

    job: Job
    repeats: int
    round: int
    measured: RankResult

    @property
    def grid(self) -> tuple[GridPoint, ...]:
        return self.measured.grid

    @property
    def host(self) -> HostMeasurement | None:
        return self.measured.host
