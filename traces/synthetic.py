"""Synthetic length traces whose mean, skewness and kurtosis match published statistics, capped at a length.

The paper (LobRA) publishes only mean, skewness and kurtosis of its 12 datasets. We stand each in with a
Johnson distribution (SU, unbounded, above the lognormal line of the skewness-kurtosis plane; SB, bounded,
below it), which together cover every attainable (skewness, kurtosis) pair:

    length = clip(round(xi + lam * f((z - gamma) / delta)), 1, cap),  z ~ N(0, 1),
    f = sinh (SU) or expit (SB)

Three targets leave one degree of freedom of the four parameters; we pin the lower end (the 0.01% quantile
sits at length 1), which fixes the scale. The rest is fitted numerically *after* clipping to the cap, so the
capped trace, not the uncapped distribution, hits the targets (at a 16K cap a heavy tail loses much of its
kurtosis).

Sample i of n is the quantile (i + 0.5) / n of the fitted distribution (quasi-random "midpoint" sampling):
the trace's moments are the ones the fit targeted whatever n, instead of wandering with the seed as i.i.d.
draws of a kurtosis-300 distribution do. The seed shuffles the order. Shapes are only as good as three
moments allow: a high-kurtosis, moderate-skew target (XSum) comes out as a narrow core with thin, long tails
on both sides.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from lobra.traces.errors import TraceError
from lobra.traces.trace import DATA_DIR, Trace, length_stats
from scipy import special

FITS_PATH = DATA_DIR / "synthetic_fits.json"
DEFAULT_CAP = 16384
DEFAULT_SAMPLES = 100_000
MAX_SAMPLES = 10_000_000
_FLOOR = 1.0  # shortest length; the pinned 0.01% quantile sits here
_Z_FLOOR = float(special.ndtri(1e-4))
# Achieved-vs-target tolerances a fit must meet (relative, with absolute floors for near-zero targets).
TOL_MEAN, TOL_SKEW, TOL_KURT = 0.01, 0.05, 0.10


@dataclass(frozen=True)
class PaperDataset:
    """Published statistics of one of the paper's datasets (GPT-2 tokens, truncated at 16K)."""

    mean: float
    skewness: float
    kurtosis: float
    global_batch_size: int


# LobRA (PVLDB 18(8), 2025): mean length / skewness / kurtosis and global batch size of the 12 datasets.
PAPER_DATASETS: dict[str, PaperDataset] = {
    "dolly": PaperDataset(207, 7.11, 95.4, 256),
    "python_code_instructions": PaperDataset(269, 10.01, 121.6, 128),
    "Evol-Instruct": PaperDataset(702, 6.59, 80.3, 128),
    "CommitPackFT": PaperDataset(663, 0.79, 1.68, 128),
    "MathInstruct": PaperDataset(252, 3.03, 12.7, 128),
    "MetaMathQA": PaperDataset(236, 2.56, 14.6, 128),
    "NuminaMath-CoT": PaperDataset(543, 1.52, 3.51, 256),
    "PubMedQA": PaperDataset(371, 0.73, 3.29, 64),
    "XSum": PaperDataset(526, 7.49, 371.8, 128),
    "BillSum": PaperDataset(3903, 0.85, 0.30, 32),
    "cnn_dailymail": PaperDataset(947, 0.89, 0.64, 256),
    "MeetingBank": PaperDataset(3622, 4.35, 26.5, 64),
}


def _is_int(v) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return (
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) and math.isfinite(v)
    )


@dataclass(frozen=True)
class SyntheticSpec:
    """Targets of a synthetic trace: moments of the capped integer lengths (skewness g1, excess kurtosis g2).

    The seed orders the samples; the values depend on the other fields only.
    """

    mean: float
    skewness: float
    kurtosis: float
    cap: int = DEFAULT_CAP
    samples: int = DEFAULT_SAMPLES
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("mean", "skewness", "kurtosis"):
            if not _is_num(getattr(self, key)):
                raise TraceError(f"synthetic {key} must be a finite number, got {getattr(self, key)!r}")
        for key, low in (("cap", 2), ("samples", 10), ("seed", 0)):
            value = getattr(self, key)
            if not _is_int(value) or value < low:
                raise TraceError(f"synthetic {key} must be an integer >= {low}, got {value!r}")
        if self.samples > MAX_SAMPLES:
            raise TraceError(f"synthetic samples must be <= {MAX_SAMPLES}, got {self.samples}")
        if not 1 < self.mean < self.cap:
            raise TraceError(f"synthetic mean must lie between 1 and the cap {self.cap}, got {self.mean!r}")
        # Any distribution has kurtosis >= skewness^2 - 2, with equality only for two-point distributions.
        if self.kurtosis <= self.skewness**2 - 2:
            raise TraceError(
                f"synthetic kurtosis {self.kurtosis!r} is impossible with skewness {self.skewness!r}"
                f" (every distribution has kurtosis > skewness^2 - 2 = {self.skewness**2 - 2:.4g})"
            )

    @property
    def key(self) -> str:
        """What the fit depends on (not the seed, which only orders the samples)."""
        # repr, not a rounded format: two different targets must never share a cached fit.
        m, s, k = (repr(float(v)) for v in (self.mean, self.skewness, self.kurtosis))
        return f"mean={m},skewness={s},kurtosis={k},cap={self.cap},samples={self.samples}"


@dataclass(frozen=True)
class JohnsonFit:
    family: str  # "su" or "sb"
    gamma: float
    delta: float
    lam: float
    xi: float

    def __post_init__(self) -> None:
        if self.family not in ("su", "sb"):
            raise TraceError(f"Johnson family must be 'su' or 'sb', got {self.family!r}")
        if not (self.delta > 0 and self.lam > 0):
            raise TraceError(f"Johnson delta and lam must be positive, got {self.delta!r}, {self.lam!r}")

    def lengths(self, z: np.ndarray) -> np.ndarray:
        """Real-valued (unrounded, uncapped) lengths at standard-normal points z."""
        return self.xi + self.lam * _shape(self.family, z, self.gamma, self.delta)


def _shape(family: str, z, gamma: float, delta: float):
    # Clipping the argument keeps sinh finite; anything that large is capped anyway.
    t = np.clip((np.asarray(z) - gamma) / delta, -700.0, 700.0)
    return np.sinh(t) if family == "su" else special.expit(t)


def _pinned(family: str, gamma: float, delta: float, lam: float) -> JohnsonFit:
    xi = _FLOOR - lam * float(_shape(family, _Z_FLOOR, gamma, delta))
    return JohnsonFit(family, float(gamma), float(delta), float(lam), float(xi))


def _midpoint_z(n: int) -> np.ndarray:
    return special.ndtri((np.arange(n) + 0.5) / n)


def _fit_grid(n: int, tail: int = 400, body: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Points and weights whose weighted sums approximate the mean over the n midpoint quantiles.

    The tails, where heavy-tailed moments live, keep their exact points; the smooth body is merged in blocks.
    """
    if n <= 2 * tail + body:
        return _midpoint_z(n), np.full(n, 1.0 / n)
    edges = np.linspace(tail, n - tail, body + 1)
    u_body = (edges[:-1] + edges[1:]) / 2 / n
    u = np.concatenate([(np.arange(tail) + 0.5) / n, u_body, (np.arange(n - tail, n) + 0.5) / n])
    w = np.concatenate([np.full(tail, 1.0 / n), np.diff(edges) / n, np.full(tail, 1.0 / n)])
    return special.ndtri(u), w


def _moments(x: np.ndarray, w: np.ndarray) -> tuple[float, float, float]:
    m = float(w @ x)
    c = x - m
    c2 = c * c
    var = float(w @ c2)
    if not var > 0:
        return m, 0.0, 0.0
    return m, float(w @ (c2 * c)) / var**1.5, float(w @ (c2 * c2)) / var**2 - 3.0


def _unpack(theta) -> tuple[float, float, float]:
    # The optimiser works on log(delta) and log(lam); clamped so that a wild step stays finite and positive.
    return (
        float(theta[0]),
        math.exp(float(np.clip(theta[1], -30, 30))),
        math.exp(float(np.clip(theta[2], -30, 30))),
    )


def _residuals(theta, family: str, spec: SyntheticSpec, z: np.ndarray, w: np.ndarray) -> np.ndarray:
    gamma, delta, lam = _unpack(theta)
    xi = _FLOOR - lam * float(_shape(family, _Z_FLOOR, gamma, delta))
    m, s, k = _moments(np.clip(xi + lam * _shape(family, z, gamma, delta), _FLOOR, spec.cap), w)
    res = np.array(
        [
            (m - spec.mean) / spec.mean,
            (s - spec.skewness) / max(abs(spec.skewness), 0.1),
            (k - spec.kurtosis) / max(abs(spec.kurtosis), 1.0),
        ]
    )
    return np.where(np.isfinite(res), res, 1e6)


def _solve(
    spec: SyntheticSpec, z: np.ndarray, w: np.ndarray, family: str, starts: list
) -> tuple[float, list]:
    from scipy import optimize  # only fits need it (shipped fits are cached)

    best = (math.inf, None)
    for theta0 in starts:
        with np.errstate(all="ignore"):
            r = optimize.least_squares(
                _residuals,
                theta0,
                args=(family, spec, z, w),
                method="lm",
                xtol=1e-12,
                ftol=1e-12,
                max_nfev=400,
            )
        cost = float(np.sum(r.fun**2))
        if cost < best[0]:
            best = (cost, list(r.x))
    return best


@lru_cache(maxsize=256)
def _fit_uncached(spec: SyntheticSpec) -> JohnsonFit:
    z, w = _fit_grid(spec.samples)
    best = (math.inf, "", None)
    for family in ("su", "sb"):
        # Coarse grid of shapes, scale set so the uncapped mean is right; refine the few best.
        starts = []
        for gamma in np.linspace(-6.0, 6.0, 9):
            for log_delta in np.linspace(math.log(0.2), math.log(5.0), 8):
                delta = math.exp(log_delta)
                spread = float(w @ _shape(family, z, gamma, delta)) - float(
                    _shape(family, _Z_FLOOR, gamma, delta)
                )
                if spread <= 0:
                    continue
                theta = [gamma, log_delta, math.log(max((spec.mean - _FLOOR) / spread, 1e-9))]
                with np.errstate(all="ignore"):
                    starts.append((float(np.sum(_residuals(theta, family, spec, z, w) ** 2)), theta))
        starts.sort(key=lambda t: t[0])
        cost, theta = _solve(spec, z, w, family, [t for _, t in starts[:3]])
        if cost < best[0]:
            best = (cost, family, theta)
    _, family, theta = best
    if len(z) < spec.samples and spec.samples <= 400_000:
        # Polish on the exact midpoint sample (the compressed grid is only an approximation of it).
        z_full = _midpoint_z(spec.samples)
        _, theta = _solve(spec, z_full, np.full(spec.samples, 1.0 / spec.samples), family, [theta])
    return _pinned(family, *_unpack(theta))


@lru_cache(maxsize=1)
def cached_fits() -> dict[str, JohnsonFit]:
    """Fits shipped in traces/data/synthetic_fits.json (written by bench/synthetic_traces.py), by spec key."""
    if not FITS_PATH.is_file():
        return {}
    raw = json.loads(FITS_PATH.read_text())
    return {key: JohnsonFit(**params) for key, params in raw.get("fits", {}).items()}


def fit_synthetic(spec: SyntheticSpec, use_cache: bool = True) -> JohnsonFit:
    """Johnson parameters whose midpoint sample of spec.samples lengths hits spec's moments."""
    if use_cache and spec.key in cached_fits():
        return cached_fits()[spec.key]
    # The seed only orders the samples: one fit serves every seed.
    return _fit_uncached(replace(spec, seed=0))


def write_fits(specs: list[SyntheticSpec], path: Path = FITS_PATH) -> dict[str, JohnsonFit]:
    fits = {spec.key: _fit_uncached(replace(spec, seed=0)) for spec in specs}
    payload = {
        "note": "Johnson fits of synthetic traces (traces/synthetic.py), by bench/synthetic_traces.py",
        "fits": {key: asdict(fit) for key, fit in fits.items()},
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    tmp.replace(path)  # never a half-written cache
    cached_fits.cache_clear()
    return fits


def synthetic_lengths(spec: SyntheticSpec, fit: JohnsonFit | None = None) -> np.ndarray:
    """The spec.samples integer lengths, shuffled by spec.seed."""
    fit = fit or fit_synthetic(spec)
    with np.errstate(all="ignore"):
        x = np.clip(np.rint(fit.lengths(_midpoint_z(spec.samples))), _FLOOR, spec.cap).astype(np.int64)
    return np.random.default_rng(spec.seed).permutation(x)


def check_reached(spec: SyntheticSpec, lengths: np.ndarray) -> None:
    """Raise if the lengths miss the spec's targets (unreachable, e.g. a skew the cap cannot hold)."""
    got = length_stats(lengths)
    misses = [
        (got.mean, spec.mean, TOL_MEAN, 0.0),
        (got.skewness, spec.skewness, TOL_SKEW, 0.05),
        (got.kurtosis, spec.kurtosis, TOL_KURT, 0.2),
    ]
    if any(abs(a - t) > max(tol * abs(t), floor) for a, t, tol, floor in misses):
        raise TraceError(
            f"synthetic trace cannot reach mean {spec.mean:g}, skewness {spec.skewness:g}, kurtosis "
            f"{spec.kurtosis:g} under cap {spec.cap} (closest: mean {got.mean:.4g}, "
            f"skewness {got.skewness:.4g},"
            f" kurtosis {got.kurtosis:.4g})"
        )


def synthetic_trace(spec: SyntheticSpec, name: str = "synthetic") -> Trace:
    """A Trace of total lengths only (synthetic traces have no prompt/response split)."""
    lengths = synthetic_lengths(spec)
    check_reached(spec, lengths)
    return Trace(name, lengths, source=f"synthetic({spec.key},seed={spec.seed})")
