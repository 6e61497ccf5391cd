"""Calibrating the analytical model on measurements: hardware efficiencies and the stack's fixed cost, apart.

`calibrate(model, gpu, profile)` fits Efficiency (what transfers with the GPU) and Stack (what transfers with the
software) to a profile's rows of one model on one GPU: decoder-layer times (`time`) and, where the profile has
them, the times outside the layers (`pre_post_time`: embedding, head, loss). The result predicts any other model on
that GPU and stack (`AnalyticalLayerTime(other_model, gpu, cal.eff, cal.stack)`).

Least squares on log(predicted / measured), plus a weak prior (PRIOR_WEIGHT per parameter, in log space) that pulls
each parameter toward the generic defaults: a handful of rows (as few as MIN_ROWS) does not constrain every
parameter (one sequence length says nothing of attention; tp = 1 nothing of the links), and those then stay at the
prior instead of wandering off. With a full profile (hundreds of rows) the prior changes nothing measurable.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from lobra.costmodel.analytical import AnalyticalLayerTime, Efficiency, Stack
from lobra.costmodel.errors import CostModelError
from lobra.costmodel.memory import DEFAULT_LORA_RANK, DEFAULT_LORA_TARGETS
from lobra.costmodel.profile import PRE_POST_COLUMN
from lobra.costmodel.specs import GPUSpec, ModelSpec
from scipy.optimize import least_squares

MIN_ROWS = 3
PRIOR_WEIGHT = 0.1
FORM = "analytical"
_HARDWARE = tuple(asdict(Efficiency()))
_STACK = ("layer_ms",)
# eta_max and eta_attn at or below 1 (peak), eta_comm at or below 1 (link bandwidth).
_UPPER = {"eta_max": 1.0, "w_half_gflop": 1e3, "eta_attn": 1.0, "eta_comm": 1.0, "layer_ms": 1e2}
_LOWER = {"eta_max": 1e-3, "w_half_gflop": 1e-4, "eta_attn": 1e-3, "eta_comm": 1e-3, "layer_ms": 1e-4}


@dataclass(frozen=True)
class AnalyticalCalibration:
    """Efficiencies of a GPU and fixed costs of a stack, fitted on one model's measurements."""

    eff: Efficiency
    stack: Stack
    model: str  # the measured model
    gpu: str  # the measured GPU
    source: str = ""
    rows: int = 0
    mape_pct: dict[str, float] = field(default_factory=dict)  # in-sample, per measured column
    lora_rank: int = DEFAULT_LORA_RANK  # the adapters the measurements ran with
    lora_targets: tuple[str, ...] = DEFAULT_LORA_TARGETS

    def layer_time(self, model: ModelSpec, gpu: GPUSpec, **lora) -> AnalyticalLayerTime:
        return AnalyticalLayerTime(model, gpu, self.eff, self.stack, **lora)

    def describe_stack(self) -> str:
        return (
            f"stack of {self.source or 'the calibration'} ({self.model} on {self.gpu}): "
            f"{self.stack.layer_ms:.3g} ms per layer and micro-batch, {self.stack.step_s:.3g} s per step"
        )

    def to_json(self, path: str | Path) -> None:
        payload = {
            "form": FORM,
            "model": self.model,
            "gpu": self.gpu,
            "source": self.source,
            "rows": self.rows,
            "hardware": asdict(self.eff),
            "stack": asdict(self.stack),
            "mape_pct": self.mape_pct,
            "lora": {"rank": self.lora_rank, "targets": list(self.lora_targets)},
        }
        Path(path).write_text(json.dumps(payload, indent=2) + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> AnalyticalCalibration:
        path = Path(path)
        if not path.is_file():
            raise CostModelError(f"calibration file {str(path)!r} does not exist")
        try:
            payload = json.loads(path.read_text())
            if payload.get("form") != FORM:
                raise CostModelError(
                    f"{str(path)!r} is not an analytical calibration (form {payload.get('form')!r})"
                )
            return cls(
                Efficiency(**payload["hardware"]),
                Stack(**payload["stack"]),
                str(payload["model"]),
                str(payload["gpu"]),
                str(payload.get("source", path.name)),
                int(payload.get("rows", 0)),
                {k: float(v) for k, v in payload.get("mape_pct", {}).items()},
                int(payload.get("lora", {}).get("rank", DEFAULT_LORA_RANK)),
                tuple(payload.get("lora", {}).get("targets", DEFAULT_LORA_TARGETS)),
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
            raise CostModelError(f"calibration file {str(path)!r} is malformed: {err!r}") from None


def is_calibration_file(path: str | Path) -> bool:
    """A profile argument that names an analytical calibration (JSON) rather than a profile (CSV)."""
    return Path(path).suffix == ".json"


def is_analytical_fit(path: str | Path) -> bool:
    """A fit JSON written by `costmodel fit --analytical` (not the quadratic LayerTimeFit)."""
    try:
        return json.loads(Path(path).read_text()).get("form") == FORM
    except (OSError, json.JSONDecodeError, AttributeError):
        return False


def _unpack(log_x: np.ndarray) -> tuple[Efficiency, Stack]:
    x = dict(zip(_HARDWARE + _STACK, np.exp(log_x).tolist(), strict=True))
    return Efficiency(**{k: x[k] for k in _HARDWARE}), Stack(layer_ms=x["layer_ms"])


def _predict(
    model: ModelSpec, gpu: GPUSpec, eff: Efficiency, stack: Stack, profile: pd.DataFrame, lora: dict
):
    """(layer ms, outer ms) per row, in the profile's row order (vectorised per tp: this is the solver's loop)."""
    lt = AnalyticalLayerTime(model, gpu, eff, stack, **lora)
    layer, outer = np.empty(len(profile)), np.empty(len(profile))
    mbs, seq = profile["mbs"].to_numpy(dtype=float), profile["seq_len"].to_numpy(dtype=float)
    for tp, idx in profile.groupby("tp").indices.items():
        tokens = mbs[idx] * seq[idx]
        layer[idx] = lt.predict_ms(int(tp), mbs[idx], seq[idx])
        outer[idx] = lt.head_ms(int(tp), tokens) + lt.embedding_ms(int(tp), tokens)
    return layer, outer


def calibrate(
    model: ModelSpec,
    gpu: GPUSpec,
    profile: pd.DataFrame,
    source: str = "",
    lora_rank: int = DEFAULT_LORA_RANK,
    lora_targets: tuple[str, ...] = DEFAULT_LORA_TARGETS,
) -> AnalyticalCalibration:
    """Fit the efficiencies and the stack's fixed cost to a validated profile (columns tp, seq_len, mbs, time,
    optional pre_post_time) of `model` on `gpu`, measured with LoRA adapters of this rank on these targets."""
    lora = {"lora_rank": lora_rank, "lora_targets": tuple(lora_targets)}
    if len(profile) < MIN_ROWS:
        raise CostModelError(
            f"the analytical model needs at least {MIN_ROWS} profile rows, got {len(profile)}"
        )
    measured = profile["time"].to_numpy(dtype=float)
    outer = profile[PRE_POST_COLUMN].to_numpy(dtype=float) if PRE_POST_COLUMN in profile else np.zeros(0)
    use_outer = outer > 0  # 0: included in the layer times, nothing to fit
    prior = np.log([*asdict(Efficiency()).values(), Stack().layer_ms])

    def residuals(log_x):
        eff, stack = _unpack(log_x)
        layer, out = _predict(model, gpu, eff, stack, profile, lora)
        parts = [np.log(layer / measured), PRIOR_WEIGHT * (log_x - prior)]
        if use_outer.any():
            parts.insert(1, np.log(out[use_outer] / outer[use_outer]))
        return np.concatenate(parts)

    names = _HARDWARE + _STACK
    lower, upper = np.log([_LOWER[n] for n in names]), np.log([_UPPER[n] for n in names])
    fit = least_squares(residuals, np.clip(prior, lower, upper), bounds=(lower, upper))
    eff, stack = _unpack(fit.x)
    layer, out = _predict(model, gpu, eff, stack, profile, lora)
    mape = {"time": float(np.mean(np.abs(layer / measured - 1)) * 100)}
    if use_outer.any():
        mape[PRE_POST_COLUMN] = float(np.mean(np.abs(out[use_outer] / outer[use_outer] - 1)) * 100)
    return AnalyticalCalibration(
        eff, stack, model.name, gpu.name, source, len(profile), mape, lora_rank, tuple(lora_targets)
    )


@functools.cache
def reference_calibration() -> AnalyticalCalibration:
    """The shipped calibration: the A100-40GB Llama-2-7B profile (the Hetu trainer's stack), cached per process."""
    from lobra.costmodel.profile import load_profile, shipped_profile
    from lobra.costmodel.specs import load_gpu_spec, load_model_spec

    path = shipped_profile("llama2-7b", "a100-40gb")
    if path is None:  # pragma: no cover - the profile ships with the package
        return AnalyticalCalibration(Efficiency(), Stack(), "llama2-7b", "a100-40gb", "defaults")
    model, gpu = load_model_spec("llama2-7b"), load_gpu_spec("a100-40gb")
    return calibrate(model, gpu, load_profile(path), source=f"shipped {path.name}")
