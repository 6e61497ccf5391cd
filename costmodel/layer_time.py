"""The fitted per-layer time model (the LobRA paper's cost model, Sec. 4).

    t(b, s) = (c1 b + c2) s^2 + (c3 b + c4) s + (c5 b + c6)      [ms, forward+backward of one decoder layer with LoRA]

b is the micro-batch size and s the (padded) sequence length. c1 b s^2 is the attention work per sequence, c3 b s the
per-token GEMMs, c5 b per-sequence overhead; c2, c4, c6 are per-micro-batch costs (kernel launches, weight reads,
low GEMM efficiency on small inputs). One set of coefficients per TP degree.

The fit minimises relative error (each row divided by its measured time) with all coefficients non-negative: the
profile is noisy, and unconstrained fits pick negative terms that extrapolate to negative times outside the grid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from lobra.costmodel.errors import CostModelError
from scipy.optimize import lsq_linear

NUM_COEFFS = 6


def design_matrix(mbs, seq_len) -> np.ndarray:
    b = np.asarray(mbs, dtype=float)
    s = np.asarray(seq_len, dtype=float)
    return np.stack([b * s * s, s * s, b * s, s, b, np.ones_like(s)], axis=-1)


@dataclass(frozen=True)
class LayerTimeFit:
    """Coefficients c1..c6 per tp, and where they came from."""

    coeffs: dict[int, tuple[float, ...]]
    source: str = ""
    # In-sample mean absolute percentage error per tp, for the record.
    mape_pct: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.coeffs:
            raise CostModelError("a layer-time fit needs coefficients for at least one tp")
        for tp, c in self.coeffs.items():
            if len(c) != NUM_COEFFS or not all(np.isfinite(c)):
                raise CostModelError(
                    f"layer-time fit for tp={tp} needs {NUM_COEFFS} finite coefficients, got {c!r}"
                )

    @property
    def tps(self) -> list[int]:
        return sorted(self.coeffs)

    def predict_ms(self, tp: int, mbs, seq_len) -> np.ndarray | float:
        """Forward+backward ms of one layer for micro-batches of `mbs` sequences padded to `seq_len`."""
        out = design_matrix(mbs, seq_len) @ np.asarray(self._coeffs(tp))
        return float(out) if np.ndim(out) == 0 else out

    def predict_packed_ms(self, tp: int, lengths) -> float:
        """A packed micro-batch (variable-length attention, no padding): the per-sequence terms summed over its
        sequences, the per-micro-batch terms at its longest sequence. Equal lengths give exactly t(b, s)."""
        c1, c2, c3, c4, c5, c6 = self._coeffs(tp)
        lens = np.asarray(lengths, dtype=float)
        s_max = float(lens.max())
        return float(
            c1 * (lens**2).sum() + c3 * lens.sum() + c5 * len(lens) + c2 * s_max**2 + c4 * s_max + c6
        )

    def _coeffs(self, tp: int) -> tuple[float, ...]:
        if tp not in self.coeffs:
            raise CostModelError(f"the layer-time fit has no tp={tp} (fitted: {self.tps})")
        return self.coeffs[tp]

    def to_json(self, path: str | Path) -> None:
        payload = {
            "form": "t(b,s) = (c1 b + c2) s^2 + (c3 b + c4) s + (c5 b + c6)  [ms per layer, fwd+bwd]",
            "source": self.source,
            "coeffs": {str(tp): list(c) for tp, c in sorted(self.coeffs.items())},
            "mape_pct": {str(tp): m for tp, m in sorted(self.mape_pct.items())},
        }
        Path(path).write_text(json.dumps(payload, indent=2) + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> LayerTimeFit:
        path = Path(path)
        if not path.is_file():
            raise CostModelError(f"fit file {str(path)!r} does not exist")
        try:
            payload = json.loads(path.read_text())
            coeffs = {int(tp): tuple(float(x) for x in c) for tp, c in payload["coeffs"].items()}
            mape = {int(tp): float(m) for tp, m in payload.get("mape_pct", {}).items()}
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
            raise CostModelError(f"fit file {str(path)!r} is malformed: {err!r}") from None
        return cls(coeffs, payload.get("source", str(path)), mape)


def fit_coefficients(mbs, seq_len, time_ms) -> np.ndarray:
    """Non-negative least squares on relative error for one tp."""
    t = np.asarray(time_ms, dtype=float)
    if len(t) < NUM_COEFFS:
        raise CostModelError(f"need at least {NUM_COEFFS} profile rows per tp to fit, got {len(t)}")
    a = design_matrix(mbs, seq_len) / t[:, None]
    # Columns span ~12 orders of magnitude (s^2 b vs 1): scale them so the solver's tolerance means something.
    scale = np.abs(a).max(axis=0)
    scale[scale == 0] = 1.0
    result = lsq_linear(a / scale, np.ones_like(t), bounds=(0.0, np.inf), method="bvls")
    return result.x / scale


def fit_profile(df: pd.DataFrame, source: str = "") -> LayerTimeFit:
    """Fit c1..c6 per tp of a validated profile DataFrame (columns tp, seq_len, mbs, time)."""
    coeffs, mape = {}, {}
    for tp, rows in df.groupby("tp"):
        c = fit_coefficients(rows["mbs"], rows["seq_len"], rows["time"])
        pred = design_matrix(rows["mbs"], rows["seq_len"]) @ c
        coeffs[int(tp)] = tuple(float(x) for x in c)
        mape[int(tp)] = float(np.mean(np.abs(pred - rows["time"]) / rows["time"]) * 100)
    return LayerTimeFit(coeffs, source, mape)


def holdout_split(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Leave out every third distinct seq_len of each tp (sorted lengths, positions 1, 4, 7, ...)."""
    held = np.zeros(len(df), dtype=bool)
    for _, rows in df.groupby("tp"):
        lengths = sorted(rows["seq_len"].unique())[1::3]
        held[df.index.get_indexer(rows.index[rows["seq_len"].isin(lengths)])] = True
    return df[~held], df[held]
