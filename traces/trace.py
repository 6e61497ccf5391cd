"""A length trace: per-sample prompt, response and total token counts, with the summary statistics we report.

Statistics follow traces/data/SOURCES.md: population std (ddof=0), linearly interpolated percentiles (numpy's
default), Fisher-Pearson skewness g1 and Fisher excess kurtosis g2 (scipy.stats, bias=True).
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from lobra.traces.errors import TraceError

DATA_DIR = Path(__file__).resolve().parent / "data"
COLUMNS = ("sample_id", "prompt_tokens", "response_tokens", "total_tokens")


@dataclass(frozen=True)
class TraceStats:
    """Summary of a trace's total lengths (tokens per sample)."""

    count: int
    mean: float
    std: float
    min: int
    p50: float
    p90: float
    p99: float
    max: int
    skewness: float
    kurtosis: float  # Fisher (excess) kurtosis: 0 for a normal distribution
    mean_prompt: float | None = None
    mean_response: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> dict:
        """The columns tables of tasks show: mean, p50, p99, max, skewness, kurtosis."""
        return {k: getattr(self, k) for k in ("mean", "p50", "p99", "max", "skewness", "kurtosis")}


def length_stats(
    total: np.ndarray, prompt: np.ndarray | None = None, response: np.ndarray | None = None
) -> TraceStats:
    from scipy import stats as sps  # scipy.stats takes ~0.5 s to import: only when statistics are asked for

    x = np.asarray(total, dtype=np.float64)
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    std = float(x.std())
    # scipy returns NaN (and warns) for a constant sample; a constant trace has no skew or tail: report 0.
    skew = float(sps.skew(x, bias=True)) if std > 0 else 0.0
    kurt = float(sps.kurtosis(x, fisher=True, bias=True)) if std > 0 else 0.0
    return TraceStats(
        count=int(x.size),
        mean=float(x.mean()),
        std=std,
        min=int(x.min()),
        p50=float(p50),
        p90=float(p90),
        p99=float(p99),
        max=int(x.max()),
        skewness=skew,
        kurtosis=kurt,
        mean_prompt=None if prompt is None else float(np.mean(prompt)),
        mean_response=None if response is None else float(np.mean(response)),
    )


def _frozen_ints(values, what: str, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise TraceError(f"trace {name!r}: {what} lengths must be a 1-D sequence, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if (
            not np.issubdtype(arr.dtype, np.floating)
            or not np.all(np.isfinite(arr))
            or np.any(arr != np.rint(arr))
        ):
            raise TraceError(f"trace {name!r}: {what} lengths must be integers")
    # A private read-only copy: traces are cached and shared, nobody may edit one in place.
    arr = arr.astype(np.int64, copy=True)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Trace:
    """Per-sample lengths of one dataset; prompt/response are None when only totals are known (synthetic)."""

    name: str
    total: np.ndarray = field(repr=False)
    prompt: np.ndarray | None = field(default=None, repr=False)
    response: np.ndarray | None = field(default=None, repr=False)
    source: str = ""  # where the lengths came from: a file path or a synthetic spec

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TraceError(f"trace name must be a non-empty string, got {self.name!r}")
        total = _frozen_ints(self.total, "total", self.name)
        if total.size == 0:
            raise TraceError(f"trace {self.name!r} has no samples")
        if total.min() < 1:
            raise TraceError(f"trace {self.name!r}: total lengths must be >= 1, found {int(total.min())}")
        object.__setattr__(self, "total", total)
        if (self.prompt is None) != (self.response is None):
            raise TraceError(f"trace {self.name!r}: give both prompt and response lengths or neither")
        if self.prompt is not None:
            prompt = _frozen_ints(self.prompt, "prompt", self.name)
            response = _frozen_ints(self.response, "response", self.name)
            if prompt.shape != total.shape or response.shape != total.shape:
                raise TraceError(f"trace {self.name!r}: prompt, response and total lengths differ in count")
            if prompt.min() < 0 or response.min() < 0:
                raise TraceError(f"trace {self.name!r}: prompt and response lengths must be >= 0")
            bad = np.flatnonzero(prompt + response != total)
            if bad.size:
                i = int(bad[0])
                raise TraceError(
                    f"trace {self.name!r}: sample {i} has prompt {prompt[i]} + response {response[i]}"
                    f" != total {total[i]}"
                )
            object.__setattr__(self, "prompt", prompt)
            object.__setattr__(self, "response", response)

    def __len__(self) -> int:
        return int(self.total.size)

    @cached_property
    def stats(self) -> TraceStats:
        return length_stats(self.total, self.prompt, self.response)


def shipped_traces() -> list[str]:
    """Names of the traces shipped in traces/data (file stems)."""
    return sorted(p.stem for p in DATA_DIR.glob("*.csv"))


def trace_path(ref: str | Path, base_dir: str | Path | None = None) -> Path:
    """The CSV a trace reference points to: a shipped trace name, or a path (relative ones from base_dir)."""
    ref_s = str(ref)
    if ref_s in shipped_traces():
        return DATA_DIR / f"{ref_s}.csv"
    path = Path(ref_s).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if path.is_file():
        return path
    if path.suffix == ".csv" or "/" in ref_s or path.exists():
        raise TraceError(f"trace file {str(path)!r} does not exist or is not a file")
    raise TraceError(
        f"unknown trace {ref_s!r}{did_you_mean(ref_s, shipped_traces())}: not a shipped trace"
        f" ({', '.join(shipped_traces())}) nor a CSV path"
    )


def did_you_mean(word: str, choices) -> str:
    """' (did you mean X?)' for the closest of choices to a mistyped word, or ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def load_trace(ref: str | Path, base_dir: str | Path | None = None) -> Trace:
    """Read a trace CSV (total_tokens, optionally prompt_tokens and response_tokens); cached per file."""
    path = trace_path(ref, base_dir).resolve()
    st = path.stat()
    return _read_csv(str(path), st.st_mtime_ns, st.st_size)


def _column(df: pd.DataFrame, col: str, path: str, minimum: int) -> np.ndarray:
    raw = df[col]
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        shown = "an empty cell" if pd.isna(raw.iloc[i]) else f"non-numeric value {str(raw.iloc[i])!r}"
        raise TraceError(f"trace file {path!r}: column {col!r} has {shown} on line {i + 2}")
    arr = values.to_numpy(dtype=np.float64)
    frac = np.flatnonzero(arr != np.rint(arr))
    if frac.size:
        i = int(frac[0])
        raise TraceError(
            f"trace file {path!r}: column {col!r} has non-integer value {arr[i]:g} on line {i + 2}"
        )
    low = np.flatnonzero(arr < minimum)
    if low.size:
        i = int(low[0])
        raise TraceError(
            f"trace file {path!r}: column {col!r} has value {arr[i]:g} < {minimum} on line {i + 2}"
        )
    return arr.astype(np.int64)


@lru_cache(maxsize=64)
def _read_csv(path: str, mtime_ns: int, size: int) -> Trace:
    del mtime_ns, size  # only part of the cache key: an edited file is read again
    try:
        df = pd.read_csv(
            path, usecols=lambda c: c in COLUMNS, dtype=str, keep_default_na=False, na_values=[""]
        )
    except pd.errors.EmptyDataError:
        raise TraceError(f"trace file {path!r} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TraceError(f"trace file {path!r} is not a valid CSV: {first}") from None
    if "total_tokens" not in df.columns:
        raise TraceError(
            f"trace file {path!r} lacks the column 'total_tokens' (it has {', '.join(map(str, df.columns))};"
            " a trace has sample_id, prompt_tokens, response_tokens, total_tokens)"
        )
    if df.empty:
        raise TraceError(f"trace file {path!r} has a header but no rows")
    has_prompt, has_response = "prompt_tokens" in df.columns, "response_tokens" in df.columns
    if has_prompt != has_response:
        missing = "response_tokens" if has_prompt else "prompt_tokens"
        raise TraceError(
            f"trace file {path!r} has only one of prompt_tokens/response_tokens (lacks {missing!r})"
        )
    total = _column(df, "total_tokens", path, 1)
    prompt = response = None
    if has_prompt:
        prompt = _column(df, "prompt_tokens", path, 0)
        response = _column(df, "response_tokens", path, 0)
        bad = np.flatnonzero(prompt + response != total)
        if bad.size:
            i = int(bad[0])
            raise TraceError(
                f"trace file {path!r}: prompt_tokens + response_tokens != total_tokens on line {i + 2}"
            )
    return Trace(Path(path).stem, total, prompt, response, source=path)
