"""Sim-vs-real validation: run the executor on a few deployment plans here, simulate the same plans on the same
sampled steps, and measure how far the simulator's step times are from the real ones (`lobra validate`).

Repeats: this machine's speed drifts by +-20% in phases of a few seconds (a shared VM: a single-threaded matmul loop
on an idle machine takes anywhere from 90 to 155 ms per block), so one real run of a plan is a noisy sample of what
the plan costs. Every plan therefore runs `repeats` times, in rounds (each round runs every plan once, alternate
rounds in reverse order, so slow phases spread over all plans rather than hitting one), and a step's real time is
its median over the runs. The spread between single runs and that median is reported beside the error (`noise`):
it is the floor no simulator can get under on this machine. The calibration is measured beside the runs: a grid
round before every round of real runs and one after the last, and each round's runs are simulated with the two
grid rounds around them (the host effects, ratios measured within one job, come from the first round); a step's
simulated time is its median over the rounds' simulations. A calibration measured once, minutes before, was 20-27%
off the runs on this machine; one grid round before each round of runs still left single rounds up to 22% off.

Same data: the executor and the simulator both draw every step with StepSampler(workload, seed) in its default
(stratified) mode, and both dispatch it with the same dispatcher over the same layer profile (the executor gets it
with --profile), so they run the same sequences in the same micro-batches. Every step's sequence count and tokens are
checked equal between the two record sets; a mismatch stops the validation.

The cost model is the executor's CPU calibration (executor/calibrate.py): the executor's whole micro-batches per
layer in the profile, and the host effects of R ranks on these cores (costmodel/host.py: compute slowdown, gradient
sync, optimizer), applied per plan by its rank count; every validated plan's compute slowdown is measured on the plan
itself, since a rank's slowdown depends on what its neighbours do (a <1,1> rank beside a TP pair: 1.10x; beside two
<1,1> ranks: 1.44x), and the per-R tables had put <2,1>x1 <1,1>x1 28% over its real steps in one validation.

Warm-up: the first steps of every real run are left out of the metrics (`warmup`), and tensor-parallel replicas need
more of them than the others. Over 12 real runs per plan (four validations, 2026-11-29), real over simulated step
time by step 0..5 was 1.65, 1.45, 1.30, 1.05, 0.96, 1.00 for <2,1>x1 but 0.98, 0.98, 0.93, 0.95, 0.93, 0.94 for
<1,1>x1: a TP step is slow while it still meets micro-batch shapes it has not run before, and fast on shapes it
has (the same step's data run again is at steady speed from its second run; DTensor caches its sharding decisions
per shape, a likely cause). The default run is 10 steps and the first 4 are warm-up. New shapes do not stop there:
29% of a <2,1>x1 step's micro-batches after step 4 had a shape new to the run, each ~43 ms slower than later runs
of its shape, which left <2,1>x1 between +1% and -22% of its real steps (-11% on average over six validations).
The host model now carries that cost (costmodel/host.py, new_shape_s) and the simulator charges it for each shape
a replica meets first.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from lobra.costmodel import CostModel, DeploymentPlan, fit_profile, parse_plan
from lobra.costmodel.errors import CostModelError
from lobra.costmodel.host import SHIPPED_HOSTS, HostCostModel, HostModel
from lobra.costmodel.profile import SHIPPED_PROFILES, shipped_path

# Plans of the tiny model on this 2-core machine, one of each kind: one rank; data, tensor and pipeline parallelism
# on the two cores; and one heterogeneous plan of 3 ranks, more ranks than cores on purpose: the case the host
# model's contention terms are for (2-rank plans never oversubscribe the cores). The scenario's own 4-rank plans
# (`--plans '<2,1>x1 <1,1>x2;<1,1>x4'`) run as well, at twice the contention and a longer run.
DEFAULT_PLANS = ("<1,1>x1", "<1,1>x2", "<2,1>x1", "<1,2>x1", "<2,1>x1 <1,1>x1")
DEFAULT_SCENARIO = "tiny-cpu"
DEFAULT_OUT = "out/validate"
DEFAULT_STEPS = 10
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
    # Measure the calibration now, interleaved with the real runs (see `calibration`); False reuses a cached or
    # the shipped one, which this machine's drift since it was measured can be off by 20% or more.
    calibrate: bool = True
    # The grid measured when calibrating now (None: executor/calibrate.py's defaults).
    calibration_seq_lens: tuple[int, ...] | None = None
    calibration_mbs: tuple[int, ...] | None = None
    calibration_repeats: int = 5
    # Real runs of each plan (module docstring); a step's real time is its median over them.
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


# -- calibration ---------------------------------------------------------------------------------------------------
@dataclass
class Calibration:
    """The calibration a validation uses. `jobs` is set when it is measured now: then its grid is measured again
    before every round of real runs and after the last (`measure_round`), and `finish` pools the rounds into the
    final profile (each round's own is kept beside it, under rounds/). The
    executor dispatches with the profile as it stood before the first round (`dispatch_profile`), and so does the
    simulator, which times with the final one."""

    profile: Path
    host: HostModel
    origin: str  # "shipped", "cached" (a previous validation's under --out) or "measured now, ..."
    dispatch_profile: Path
    jobs: object | None = None  # executor.calibrate.CalibrationJobs
    repeats_per_round: int = 0

    def measure_round(self, progress: bool) -> None:
        if self.jobs is not None:
            self.jobs.run(self.repeats_per_round, host=False, progress=progress, desc="calibration round")

    def finish(self, out: Path) -> None:
        from functools import partial

        from lobra.io import atomic_write

        if self.jobs is not None and self.jobs.rounds > 1:
            written = self.jobs.write(out)
            # the host effects of the first round, with new-shape costs from every round's grid
            self.profile, self.host = written.profile_path.resolve(), written.host
            for r in range(self.jobs.rounds):
                profile = self.jobs.profile({r}).round(6)
                atomic_write(
                    out / "rounds" / f"round{r}_layer_time.csv", partial(profile.to_csv, index=False)
                )

    def round_costs(self, model: str, gpu: str, rounds: int) -> list[CostModel]:
        """The cost model each round of real runs is simulated with: when the grid was measured beside the runs,
        the grid rounds just before and just after them (the machine drifts between rounds: compare runs with what
        the machine did then), else the one calibration for every round."""
        if self.jobs is None or self.jobs.rounds != rounds + 1:
            return [CostModel.build(model, gpu, profile=self.profile)] * rounds
        return [
            CostModel.build(
                model, gpu, fit=fit_profile(self.jobs.profile({r, r + 1}).drop(columns="time_min"))
            )
            for r in range(rounds)
        ]


def calibration(
    cfg: ValidateConfig, model: str, gpu: str, plans: list[DeploymentPlan], progress: bool
) -> Calibration:
    """By default measure now, into OUT/calibration: the host effects and a first grid round before the real runs,
    a grid round before every further round of real runs and one after the last, so the profile samples the machine
    over the same minutes as the runs do. With calibrate=False (--reuse-calibration): the cached one under OUT, else
    the shipped one, else measure now."""
    cache = cfg.out_dir / "calibration"
    stem = f"{model}_{gpu}".replace(".", "_").replace("-", "_")
    cached_profile, cached_host = cache / f"{stem}_layer_time.csv", cache / f"{stem}_host.json"
    if not cfg.calibrate:
        if cached_profile.is_file() and cached_host.is_file():
            path = cached_profile.resolve()
            return Calibration(path, HostModel.from_json(cached_host), "cached", path)
        shipped = SHIPPED_PROFILES.get((model, gpu)), SHIPPED_HOSTS.get((model, gpu))
        if all(shipped) and all(shipped_path(f).is_file() for f in shipped):
            path = shipped_path(shipped[0])
            return Calibration(path, HostModel.from_json(shipped_path(shipped[1])), "shipped", path)
    from lobra.executor.calibrate import DEFAULT_MBS, DEFAULT_SEQ_LENS, CalibrationJobs

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
    shutil.copyfile(first.profile_path, dispatch)
    origin = f"measured now, {cfg.repeats} round(s) interleaved with the real runs"
    return Calibration(first.profile_path.resolve(), first.host, origin, dispatch.resolve(), jobs, per_round)


# -- metrics ---------------------------------------------------------------------------------------------------------
def step_metrics(pairs: pd.DataFrame) -> dict:
    """Over measured (non-warm-up) step pairs with columns real_step_s, sim_step_s, real_gpu_s, sim_gpu_s:
    mean absolute percentage error of step time, the 95th percentile of |error|%, and the GPU-seconds error
    (simulated total over real total, minus one, in %)."""
    if pairs.empty:
        return {"mape_pct": None, "p95_abs_pct_error": None, "gpu_seconds_error_pct": None, "pairs": 0}
    abs_pct = (pairs["sim_step_s"] - pairs["real_step_s"]).abs() / pairs["real_step_s"] * 100
    real_gpu_s = float(pairs["real_gpu_s"].sum())
    return {
        "mape_pct": float(abs_pct.mean()),
        "p95_abs_pct_error": float(np.percentile(abs_pct, 95)),
        "gpu_seconds_error_pct": (float(pairs["sim_gpu_s"].sum()) / real_gpu_s - 1) * 100,
        "pairs": len(pairs),
    }


def kendall_tau(real: list[float], sim: list[float]) -> float | None:
    """Rank agreement of the plans' mean real and simulated step times (scipy's tau-b); None below two plans."""
    from scipy.stats import kendalltau

    if len(real) < 2:
        return None
    tau = kendalltau(real, sim).statistic
    return None if np.isnan(tau) else round(float(tau), 6)  # 0.9999999999999999 is 1


def step_pairs(
    plan: DeploymentPlan, real_runs: list[pd.DataFrame], sim_runs: list[pd.DataFrame], warmup: int
) -> pd.DataFrame:
    """One row per step: its real time, the median over the real runs (their minimum and maximum beside it), and
    its simulated time, the median over the simulations of those runs (one per round). Raises unless every run
    and every simulation made the same steps on the same sequences."""
    sims = [(s[s["status"] == "ok"] if "status" in s else s).set_index("step") for s in sim_runs]
    reals = [r.set_index("step") for r in real_runs]
    sim = sims[0]
    for real in reals + sims[1:]:
        if list(real.index) != list(sim.index):
            raise ValidationError(
                f"plan {plan}: the executor ran steps {list(real.index)}, the simulator {list(sim.index)}"
            )
        for step in real.index:
            got = (int(sim.at[step, "num_sequences"]), int(sim.at[step, "tokens"]))
            want = (int(real.at[step, "num_sequences"]), int(real.at[step, "tokens"]))
            if got != want:
                raise ValidationError(
                    f"plan {plan} step {step}: the simulator saw {got[0]} sequences / {got[1]} tokens, the "
                    f"executor {want[0]} / {want[1]}: they did not sample the same data"
                )
    times = pd.concat([r["step_time_s"].astype(float) for r in reals], axis=1)
    sim_times = pd.concat([s["step_time_s"].astype(float) for s in sims], axis=1)
    real = reals[0]
    out = pd.DataFrame(
        {
            "plan": str(plan),
            "ranks": plan.num_gpus,
            "step": real.index.astype(int),
            "warmup": real.index < warmup,
            "num_sequences": real["num_sequences"].astype(int).values,
            "tokens": real["tokens"].astype(int).values,
            "sim_num_sequences": sim["num_sequences"].astype(int).values,
            "sim_tokens": sim["tokens"].astype(int).values,
            "real_step_s": times.median(axis=1).values,
            "real_min_s": times.min(axis=1).values,
            "real_max_s": times.max(axis=1).values,
            "runs": len(reals),
            "sim_step_s": sim_times.median(axis=1).values,
        }
    )
    out["real_gpu_s"] = out["real_step_s"] * plan.num_gpus
    out["sim_gpu_s"] = out["sim_step_s"] * plan.num_gpus
    out["error_pct"] = (out["sim_step_s"] - out["real_step_s"]) / out["real_step_s"] * 100
    return out


def single_runs(
    real_runs: list[pd.DataFrame], sim_runs: list[pd.DataFrame], pairs: pd.DataFrame
) -> pd.DataFrame:
    """Every real run's own step times beside the median over the runs and that run's own simulated time (one
    row per run and step): what a single real run would have given."""
    rows = []
    for k, (run, sim) in enumerate(zip(real_runs, sim_runs, strict=True)):
        rows.append(
            pairs[["plan", "step", "warmup", "real_step_s"]]
            .rename(columns={"real_step_s": "median_step_s"})
            .assign(
                run=k,
                real_step_s=run.set_index("step").loc[pairs["step"], "step_time_s"].to_numpy(float),
                sim_step_s=sim.set_index("step").loc[pairs["step"], "step_time_s"].to_numpy(float),
            )
        )
    out = pd.concat(rows, ignore_index=True)
    out["error_pct"] = (out["sim_step_s"] - out["real_step_s"]) / out["real_step_s"] * 100
    return out


def noise_metrics(runs: pd.DataFrame) -> dict:
    """Over measured steps of single runs: how far a single run is from the median of its repeats (the machine's
    run-to-run noise; None with one run), and the simulator's MAPE against single runs."""
    measured = runs[~runs["warmup"]]
    repeats = int(runs["run"].nunique())
    off = (measured["real_step_s"] - measured["median_step_s"]).abs() / measured["median_step_s"] * 100
    return {
        "repeats": repeats,
        "single_run_vs_median_pct": float(off.mean()) if repeats > 1 and len(measured) else None,
        "single_run_mape_pct": float(measured["error_pct"].abs().mean()) if len(measured) else None,
    }


def dispatch_agreement(real_replicas: pd.DataFrame, sim_replicas: pd.DataFrame) -> float:
    """Share of (step, replica) rows where both runs gave the replica the same tokens in as many micro-batches."""
    keys = ["step", "replica"]
    cols = ["tokens", "padded_tokens", "micro_batches"]
    sim = sim_replicas[sim_replicas["attempt"] == 0] if "attempt" in sim_replicas else sim_replicas
    merged = real_replicas[keys + cols].merge(sim[keys + cols], on=keys, suffixes=("_real", "_sim"))
    if merged.empty:
        return 0.0
    same = np.logical_and.reduce([merged[f"{c}_real"] == merged[f"{c}_sim"] for c in cols])
    return float(same.sum() / max(len(real_replicas), len(merged)))


# -- the validation ---------------------------------------------------------------------------------------------
@dataclass
class PlanResult:
    plan: str
    ranks: int
    steps_measured: int
    runs: int
    real_step_s: float
    sim_step_s: float
    error_pct: float
    mape_pct: float | None
    p95_abs_pct_error: float | None
    gpu_seconds_error_pct: float | None
    real_spread_pct: float  # mean over measured steps of (slowest - fastest run) / median
    dispatch_agreement: float
    load_avg_1m: float
    wall_s: float


@dataclass
class Validation:
    scenario: str
    warmup: int
    steps: int
    seed: int
    calibration: dict
    per_plan: list[PlanResult]
    pairs: pd.DataFrame
    runs: pd.DataFrame
    metrics: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "mape_step_time": self.metrics["mape_pct"],
            "p95_abs_pct_error": self.metrics["p95_abs_pct_error"],
            "kendall_tau": self.metrics["kendall_tau"],
            "gpu_seconds_error_pct": self.metrics["gpu_seconds_error_pct"],
            "step_pairs": self.metrics["pairs"],
            "noise": noise_metrics(self.runs),
            "warmup_steps_skipped": self.warmup,
            "scenario": self.scenario,
            "steps": self.steps,
            "seed": self.seed,
            "calibration": self.calibration,
            "per_plan": [asdict(p) for p in self.per_plan],
            "files": {"pairs": "pairs.csv", "plans": "plans.csv", "runs": "runs.csv"},
            "pairs": self.pairs.to_dict("records"),
        }

    def write(self, out: str | Path) -> list[Path]:
        """pairs.csv (every step pair, warm-up ones flagged), runs.csv (every single real run's steps), plans.csv
        and validation.json: each whole or not."""
        from lobra.io import atomic_write

        out = Path(out)
        plans = pd.DataFrame([asdict(p) for p in self.per_plan])
        payload = json.dumps(self.to_dict(), indent=2) + "\n"
        writers = {
            "pairs.csv": lambda p: self.pairs.to_csv(p, index=False),
            "runs.csv": lambda p: self.runs.to_csv(p, index=False),
            "plans.csv": lambda p: plans.to_csv(p, index=False),
            "validation.json": lambda p: p.write_text(payload),
        }
        for name, write in writers.items():
            atomic_write(out / name, write)
        return [out / name for name in writers]


def check_inputs(cfg: ValidateConfig):
    """Everything checkable before running anything: scenario, plans against the model, ranks and the executor."""
    from lobra.executor.config import ExecutorConfig
    from lobra.executor.errors import ExecutorError
    from lobra.executor.resolve import resolve
    from lobra.traces import load_scenario

    scenario = load_scenario(cfg.scenario)
    if scenario.gpu != "cpu":
        raise ValidationError(
            f"scenario {scenario.name!r} runs on {scenario.gpu}; validate runs the executor on this machine's CPU "
            "(use a scenario on gpu 'cpu', e.g. tiny-cpu)"
        )
    plans = [parse_plans(p)[0] if isinstance(p, str) else str(p) for p in cfg.plans]
    if len(set(plans)) != len(plans):
        raise ValidationError(f"--plans repeats a plan: {'; '.join(plans)}")
    parsed = [parse_plan(p) for p in plans]
    for plan in parsed:
        if plan.num_gpus > cfg.max_ranks:
            raise ValidationError(
                f"plan {plan} needs {plan.num_gpus} ranks, more than --max-ranks {cfg.max_ranks}"
            )
        try:
            resolve(
                ExecutorConfig(
                    plan=str(plan),
                    steps=cfg.steps,
                    scenario=cfg.scenario,
                    device="cpu",
                    seed=cfg.seed,
                    dispatcher=cfg.dispatcher,
                    out=str(cfg.out_dir / "runs" / plan_slug(plan)),
                ),
                plan.num_gpus,
                check_outputs=False,
            )
        except ExecutorError as err:
            raise ValidationError(str(err)) from None
    return scenario, parsed


def plan_slug(plan: DeploymentPlan) -> str:
    return "_".join(f"tp{c.tp}pp{c.pp}x{n}" for c, n in plan.entries)


def validate(cfg: ValidateConfig, progress: bool = True) -> Validation:
    from tqdm import tqdm

    scenario, plans = check_inputs(cfg)
    cal = calibration(cfg, scenario.model, scenario.gpu, plans, progress)
    for plan in plans:
        try:
            cal.host.check_plan(plan.replicas, plan.num_gpus, str(plan))
        except CostModelError as err:
            raise ValidationError(f"plan {plan}: {err}") from None
    shutil.rmtree(
        cfg.out_dir / "runs", ignore_errors=True
    )  # our own previous runs: the executor refuses them
    real: dict[str, list[dict[str, pd.DataFrame]]] = {str(p): [] for p in plans}
    loads: dict[str, list[float]] = {str(p): [] for p in plans}
    wall = dict.fromkeys(real, 0.0)
    with tqdm(total=len(plans) * cfg.repeats, desc="validate", unit="run", disable=not progress) as bar:
        for r in range(cfg.repeats):
            if r:
                cal.measure_round(progress)
            for plan in plans if r % 2 == 0 else plans[::-1]:
                start, load = time.perf_counter(), os.getloadavg()[0]
                real[str(plan)].append(run_executor(cfg, plan, cal.dispatch_profile, run=r))
                loads[str(plan)].append((load + os.getloadavg()[0]) / 2)
                wall[str(plan)] += time.perf_counter() - start
                bar.update()
    cal.measure_round(progress)  # the grid after the last round of runs
    cal.finish(cfg.out_dir / "calibration")

    costs = cal.round_costs(scenario.model, scenario.gpu, cfg.repeats)
    dispatch_cost = CostModel.build(scenario.model, scenario.gpu, profile=cal.dispatch_profile)
    results, frames, runs = [], [], []
    for plan in plans:
        runs_of_plan = real[str(plan)]
        by_cost: dict[int, object] = {}  # one simulation per distinct cost model
        for cost in costs:
            if id(cost) not in by_cost:
                host_cost = HostCostModel.for_plan(cost, cal.host, plan)
                by_cost[id(cost)] = simulate(cfg, scenario, plan, host_cost, dispatch_cost)
        sims = [by_cost[id(cost)] for cost in costs]
        steps, sim_steps = [run["steps"] for run in runs_of_plan], [sim.steps for sim in sims]
        pairs = step_pairs(plan, steps, sim_steps, cfg.warmup)
        frames.append(pairs)
        runs.append(single_runs(steps, sim_steps, pairs))
        measured = pairs[~pairs["warmup"]]
        m = step_metrics(measured)
        spread = (measured["real_max_s"] - measured["real_min_s"]) / measured["real_step_s"] * 100
        results.append(
            PlanResult(
                plan=str(plan),
                ranks=plan.num_gpus,
                steps_measured=len(measured),
                runs=len(runs_of_plan),
                real_step_s=float(measured["real_step_s"].mean()),
                sim_step_s=float(measured["sim_step_s"].mean()),
                error_pct=float((measured["sim_step_s"].mean() / measured["real_step_s"].mean() - 1) * 100),
                mape_pct=m["mape_pct"],
                p95_abs_pct_error=m["p95_abs_pct_error"],
                gpu_seconds_error_pct=m["gpu_seconds_error_pct"],
                real_spread_pct=float(spread.mean()),
                dispatch_agreement=min(
                    dispatch_agreement(run["replicas"], sim.replicas)
                    for run, sim in zip(runs_of_plan, sims, strict=True)
                ),
                load_avg_1m=round(float(np.mean(loads[str(plan)])), 2),
                wall_s=round(wall[str(plan)], 1),
            )
        )
    pairs = pd.concat(frames, ignore_index=True)
    metrics = step_metrics(pairs[~pairs["warmup"]])
    metrics["kendall_tau"] = kendall_tau([r.real_step_s for r in results], [r.sim_step_s for r in results])
    cal_info = {
        "origin": cal.origin,
        "profile": str(cal.profile),
        "dispatch_profile": str(cal.dispatch_profile),
        "host": cal.host.source,
    }
    return Validation(
        cfg.scenario,
        cfg.warmup,
        cfg.steps,
        cfg.seed,
        cal_info,
        results,
        pairs,
        pd.concat(runs, ignore_index=True),
        metrics,
    )


def run_executor(
    cfg: ValidateConfig, plan: DeploymentPlan, profile: Path, run: int
) -> dict[str, pd.DataFrame]:
    """`lobra execute` of this plan into OUT/runs/<plan>/run<k>, its records as DataFrames."""
    from lobra.executor.config import ExecutorConfig
    from lobra.executor.launch import launch
    from lobra.executor.records import Records

    run_dir = cfg.out_dir / "runs" / plan_slug(plan) / f"run{run}"
    run_dir.mkdir(parents=True)
    ex = ExecutorConfig(
        plan=str(plan),
        steps=cfg.steps,
        scenario=cfg.scenario,
        out=str(run_dir),
        seed=cfg.seed,
        dispatcher=cfg.dispatcher,
        device="cpu",
        profile=str(profile),
        checkpoint_every=cfg.steps,  # one checkpoint, after the last step: nothing between timed steps
        keep_checkpoints=1,
    )
    log = run_dir.parent / f"{run_dir.name}.log"
    rc = launch(ex, plan.num_gpus, log=log)
    if rc:
        raise ValidationError(
            f"the executor failed on plan {plan} (exit status {rc}); its output is in {log}"
        )
    records = Records.read(run_dir)
    return {name: records.frame(name) for name in ("steps", "replicas", "micro_batches")}


def simulate(
    cfg: ValidateConfig, scenario, plan: DeploymentPlan, cost: HostCostModel, dispatch_cost: CostModel
):
    """The simulator on the same plan, steps, seed and sampler mode as the executor. It dispatches as the executor
    did, with `dispatch_cost` (the executor's profile, without host effects: its dispatcher knows nothing of the
    cores it shares), and times what was dispatched with `cost`. Scaling replicas of different configs by
    different contention would otherwise move sequences between them."""
    from dataclasses import replace

    from lobra.sim import Policy, SimConfig, Simulator

    class ExecutorSimulator(Simulator):
        def _dispatch(self, items, phase):  # Simulator's per-step dispatch, given the executor's cost model
            return super()._dispatch(items, replace(phase, cost=dispatch_cost))

    policy = Policy("validate", cfg.dispatcher, plan=plan)
    sim = SimConfig(steps=cfg.steps, seed=cfg.seed, sampling=executor_sampling_mode(), replan=False)
    return ExecutorSimulator(scenario.workload, cost, plan.num_gpus, policy, sim).run()


def executor_sampling_mode() -> str:
    """The mode the executor samples in: it builds StepSampler(workload, seed=...) with the default mode."""
    import inspect

    from lobra.traces import StepSampler

    return inspect.signature(StepSampler).parameters["mode"].default
