"""What `lobra validate` is asked to do: its settings, their defaults, and the error it raises on bad input."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lobra.costmodel import parse_plan
from lobra.costmodel.errors import CostModelError

# Plans of the tiny model on a 2-core machine, one of each kind: one rank; data, tensor and pipeline parallelism on
# the two cores; and one heterogeneous plan of 3 ranks, more ranks than cores on purpose: the case the host model's
# contention terms are for (2-rank plans never oversubscribe the cores). The scenario's own 4-rank plans
# (`--plans '<2,1>x1 <1,1>x2;<1,1>x4'`) run as well, at twice the contention and a longer run.
DEFAULT_PLANS = ("<1,1>x1", "<1,1>x2", "<2,1>x1", "<1,2>x1", "<2,1>x1 <1,1>x1")
DEFAULT_SCENARIO = "tiny-cpu"
DEFAULT_OUT = "out/validate"
DEFAULT_STEPS = 10
# Tensor-parallel replicas run slow while they still meet micro-batch shapes they have not run before: the first
# steps of every real run are left out of the metrics (docs/calibration.md).
DEFAULT_WARMUP = 4
DEFAULT_MAX_RANKS = 4
DEFAULT_REPEATS = 3


class ValidationError(ValueError):
    """Bad input to the validation (a plan, a scenario, a step count), or real and simulated runs that did not see
    the same data."""


@dataclass(frozen=True)
class ValidateConfig:
    scenario: str = DEFAULT_SCENARIO
    plans: tuple[str, ...] = DEFAULT_PLANS
    steps: int = DEFAULT_STEPS
    warmup: int = DEFAULT_WARMUP
    seed: int = 0
    max_ranks: int = DEFAULT_MAX_RANKS
    dispatcher: str = "balanced"
    out: str = DEFAULT_OUT
    # Measure the calibration now, interleaved with the real runs (calibration/validation_calibration.py); False
    # reuses a cached or the shipped one, which this machine's drift since it was measured can put far off.
    calibrate: bool = True
    # The grid measured when calibrating now (None: calibration/jobs.py's defaults).
    calibration_seq_lens: tuple[int, ...] | None = None
    calibration_mbs: tuple[int, ...] | None = None
    calibration_repeats: int = 5
    # Real runs of each plan, in rounds; a step's real time is its median over them (calibration/validate.py).
    repeats: int = DEFAULT_REPEATS

    def __post_init__(self) -> None:
        if not self.plans:
            raise ValidationError("--plans needs at least one plan")
        for name, low in (
            ("steps", 1),
            ("warmup", 0),
            ("seed", 0),
            ("max_ranks", 1),
            ("repeats", 1),
            ("calibration_repeats", 1),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValidationError(
                    f"--{name.replace('_', '-')} must be an integer >= {low}, got {value!r}"
                )
        if self.steps <= self.warmup:
            raise ValidationError(
                f"--steps {self.steps} leaves no step after the {self.warmup} warm-up step(s); use more steps"
            )

    @property
    def out_dir(self) -> Path:
        return Path(self.out)


def parse_plans(text: str) -> tuple[str, ...]:
    """'PLAN;PLAN;...' -> canonical plan strings (each checked)."""
    plans = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        try:
            plans.append(str(parse_plan(part)))
        except CostModelError as err:
            raise ValidationError(f"bad plan {part!r} in --plans: {err}") from None
    if not plans:
        raise ValidationError(f"--plans {text!r} holds no plan; expected e.g. '<1,1>x2;<2,1>x1'")
    return tuple(plans)
