"""The calibration a validation compares real runs against: reused (cached under OUT or shipped) or measured now,
interleaved with the real runs.

Measured now, a grid round runs before every round of real runs and one after the last, and each round's runs are
simulated with the two grid rounds around them: the machine drifts between rounds, so runs are compared with what
the machine did at the time. The host effects are ratios measured within one job, so the first round's serve all.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from lobra.calibration.host import SHIPPED_HOSTS, HostModel
from lobra.calibration.jobs import DEFAULT_MBS, DEFAULT_SEQ_LENS, CalibrationJobs
from lobra.calibration.validate_config import ValidateConfig
from lobra.costmodel import CostModel, DeploymentPlan, OuterTimeFit, fit_profile
from lobra.costmodel.profile import SHIPPED_PROFILES, shipped_path

from lobra.io import atomic_write


@dataclass
class Calibration:
    """The calibration a validation uses. `jobs` is set when it is measured now: then its grid is measured again
    before every round of real runs and after the last (`measure_round`), and `finish` pools the rounds into the
    final profile (each round's own is kept beside it, under rounds/). The executor dispatches with the profile as
    it stood before the first round (`dispatch_profile`), and so does the simulator, which times with the final
    one."""

    profile: Path
    host: HostModel
    origin: str  # "shipped", "cached" (a previous validation's under --out) or "measured now, ..."
    dispatch_profile: Path
    jobs: CalibrationJobs | None = None
    repeats_per_round: int = 0

    def measure_round(self, progress: bool) -> None:
        if self.jobs is not None:
            self.jobs.run(self.repeats_per_round, host=False, progress=progress, desc="calibration round")

    def finish(self, out: Path) -> None:
        if self.jobs is not None and self.jobs.rounds > 1:
            written = self.jobs.write(out)
            # the host effects of the first round, with first-run costs from every round's grid
            self.profile, self.host = written.profile_path.resolve(), written.host
            for r in range(self.jobs.rounds):
                profile = self.jobs.profile({r}).round(6)
                atomic_write(
                    out / "rounds" / f"round{r}_layer_time.csv", partial(profile.to_csv, index=False)
                )

    def round_costs(self, model: str, gpu: str, rounds: int) -> list[CostModel]:
        """The cost model each round of real runs is simulated with: when the grid was measured beside the runs,
        the grid rounds just before and just after them, else the one calibration for every round."""
        if self.jobs is None or self.jobs.rounds != rounds + 1:
            return [CostModel.build(model, gpu, profile=self.profile)] * rounds
        return [
            CostModel.build(
                model,
                gpu,
                fit=fit_profile(self.jobs.profile({r, r + 1}).drop(columns="time_min")),
                outer=OuterTimeFit.of_included(),  # whole-model times / layers: the head is in them
            )
            for r in range(rounds)
        ]


def reused_calibration(cfg: ValidateConfig, model: str, gpu: str) -> Calibration | None:
    """The cached calibration under OUT/calibration, else the shipped one; None if neither is on disk."""
    cache = cfg.out_dir / "calibration"
    stem = f"{model}_{gpu}".replace(".", "_").replace("-", "_")
    cached_profile, cached_host = cache / f"{stem}_layer_time.csv", cache / f"{stem}_host.json"
    if cached_profile.is_file() and cached_host.is_file():
        path = cached_profile.resolve()
        return Calibration(path, HostModel.from_json(cached_host), "cached", path)
    shipped = SHIPPED_PROFILES.get((model, gpu)), SHIPPED_HOSTS.get((model, gpu))
    if all(shipped) and all(shipped_path(f).is_file() for f in shipped):
        path = shipped_path(shipped[0])
        return Calibration(path, HostModel.from_json(shipped_path(shipped[1])), "shipped", path)
    return None


def calibration(
    cfg: ValidateConfig, model: str, gpu: str, plans: list[DeploymentPlan], progress: bool
) -> Calibration:
    """By default measure now, into OUT/calibration: the host effects and a first grid round before the real runs,
    a grid round before every further round of real runs and one after the last, so the profile samples the machine
    over the same minutes as the runs do. With calibrate=False (--reuse-calibration): the cached one under OUT, else
    the shipped one, else measure now."""
    if not cfg.calibrate and (reused := reused_calibration(cfg, model, gpu)) is not None:
        return reused
    cache = cfg.out_dir / "calibration"
    jobs = CalibrationJobs(
        scenario=cfg.scenario,
        seq_lens=cfg.calibration_seq_lens or DEFAULT_SEQ_LENS,
        mbs=cfg.calibration_mbs or DEFAULT_MBS,
        max_ranks=cfg.max_ranks,  # check_inputs refused plans of more ranks
        # the grids of the plans' tp degrees, and tp=1's (the rows every fit needs)
        tps=tuple(sorted({1} | {c.tp for p in plans for c in p.replicas})),
        plans=tuple(str(p) for p in plans),  # each plan's contention measured as itself
    )
    # The calibration's samples are spread over the rounds of real runs (at least one sample per round).
    per_round = -(-cfg.calibration_repeats // cfg.repeats)
    jobs.run(per_round, host=True, host_repeats=cfg.calibration_repeats, progress=progress)
    first = jobs.write(cache)
    # A copy: the pooled profile replaces the first round's under OUT/calibration at the end.
    dispatch = cache / "dispatch_layer_time.csv"
    atomic_write(dispatch, lambda p: shutil.copyfile(first.profile_path, p))
    origin = f"measured now, {cfg.repeats} round(s) interleaved with the real runs"
    return Calibration(first.profile_path.resolve(), first.host, origin, dispatch.resolve(), jobs, per_round)
