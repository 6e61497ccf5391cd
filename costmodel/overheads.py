"""Overheads: what a software stack on a machine adds to the layer model, as a value the cost model is given.

The fitted and analytical layer models describe one decoder layer's forward+backward. A real stack adds costs
they do not see, and which depend on the machine rather than on the model: ranks that share too few cores run
slower, a pipeline's last stage also runs the LM head and the loss, tensor parallelism pays a one-off cost the
first time it meets a micro-batch shape, and the executor's gradient sync and optimizer may not follow the
analytical formulas. `Overheads()` is neutral: a cost model given it computes exactly what it computes without
one. Measured values come from the calibration layer (lobra.calibration), which knows the machine; the cost model
only applies them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lobra.costmodel.errors import CostModelError
from lobra.costmodel.parallel import ParallelConfig


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True)
class Overheads:
    """Per-config and per-plan costs on top of the layer model; every field neutral by default.

    compute_factor[config]: the replica's stage compute over what the layer model gives (contention for shared
      cores); configs not listed run at 1.
    stage_weights[config]: each pipeline stage's compute per micro-batch over the even share (1/pp) of the whole
      model; configs not listed weigh 1 per stage.
    first_run_s[tp]: extra seconds a stage of that tp degree spends the first time it runs a micro-batch shape
      (sequences, padded length); degrees not listed pay none. Scaled by the config's compute factor: it is work
      on the same cores.
    dp_sync_s, optimizer_s: measured seconds of the LoRA-gradient sync and the optimizer step, replacing the
      analytical ones when given.
    """

    compute_factor: dict[ParallelConfig, float] = field(default_factory=dict)
    stage_weights: dict[ParallelConfig, tuple[float, ...]] = field(default_factory=dict)
    first_run_s: dict[int, float] = field(default_factory=dict)
    dp_sync_s: float | None = None
    optimizer_s: float | None = None

    def __post_init__(self) -> None:
        for config, factor in self.compute_factor.items():
            if not isinstance(config, ParallelConfig) or not _positive(factor):
                raise CostModelError(
                    f"Overheads.compute_factor[{config}] must be a positive number for a ParallelConfig, "
                    f"got {factor!r}"
                )
        for config, weights in self.stage_weights.items():
            if (
                not isinstance(config, ParallelConfig)
                or len(weights) != config.pp
                or not all(map(_positive, weights))
            ):
                raise CostModelError(
                    f"Overheads.stage_weights[{config}] needs one positive number per pipeline stage, "
                    f"got {weights!r}"
                )
        for tp, seconds in self.first_run_s.items():
            if not isinstance(tp, int) or tp < 1 or not (_positive(seconds) or seconds == 0):
                raise CostModelError(
                    f"Overheads.first_run_s[{tp!r}] must be seconds >= 0 for a tp degree >= 1, got {seconds!r}"
                )
        for name in ("dp_sync_s", "optimizer_s"):
            value = getattr(self, name)
            if value is not None and not (_positive(value) or value == 0):
                raise CostModelError(f"Overheads.{name} must be seconds >= 0 or None, got {value!r}")

    def factor(self, config: ParallelConfig) -> float:
        return self.compute_factor.get(config, 1.0)
