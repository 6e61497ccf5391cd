"""Sim-vs-real validation: run the executor on a few deployment plans here, simulate the same plans on the same
sampled steps, and measure how far the simulator's step times are from the real ones (`lobra validate`).

Repeats: a shared machine's speed drifts in phases of a few seconds, so one real run of a plan is a noisy sample of
what the plan costs. Every plan therefore runs `repeats` times, in rounds (each round runs every plan once,
alternate rounds in reverse order, so slow phases spread over all plans rather than hitting one), and a step's real
time is its median over the runs. The spread between single runs and that median is reported beside the error
(`noise`): it is the floor no simulator can get under on this machine. A step's simulated time is its median over
the simulations of the rounds, each with the calibration measured around it (calibration/validation_calibration.py).

Same data: the executor and the simulator both draw every step with StepSampler(workload, seed) in its default mode,
and both dispatch it with the same dispatcher over the same layer profile (the executor gets it with --profile), so
they run the same sequences in the same micro-batches; calibration/metrics.py checks every step's sequence count and
tokens equal between the two record sets.

The cost model that times the simulation is the executor's CPU calibration (calibration/jobs.py): the executor's
whole micro-batches per layer in the profile, and the host effects of the plan's ranks on these cores as its
Overheads (calibration/host.py), each validated plan's contention measured on the plan itself. What the
validations showed is in docs/calibration.md.
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
from lobra.calibration.metrics import (
    dispatch_agreement,
    kendall_tau,
    noise_metrics,
    single_runs,
    step_metrics,
    step_pairs,
)
from lobra.calibration.validate_config import ValidateConfig, ValidationError, parse_plans
from lobra.calibration.validation_calibration import Calibration, calibration
from lobra.costmodel import CostModel, DeploymentPlan, parse_plan
from lobra.costmodel.errors import CostModelError
from lobra.executor.config import ExecutorConfig
from lobra.executor.errors import ExecutorError
from lobra.executor.launch import launch
from lobra.executor.records import Records
from lobra.executor.resolve import resolve
from lobra.sim import Policy, SimConfig, Simulator
from lobra.traces import DEFAULT_SAMPLING_MODE, load_scenario

from lobra.io import atomic_write, write_text


@dataclass(frozen=True)
class PlanValidation:
    """One plan's real and simulated steps, over its measured (non-warm-up) steps."""

    plan: str
    num_ranks: int
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
    per_plan: list[PlanValidation]
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
        out = Path(out)
        plans = pd.DataFrame([asdict(p) for p in self.per_plan])
        tables = {"pairs.csv": self.pairs, "runs.csv": self.runs, "plans.csv": plans}
        for name, table in tables.items():
            atomic_write(out / name, lambda p, table=table: table.to_csv(p, index=False))
        write_text(out / "validation.json", json.dumps(self.to_dict(), indent=2) + "\n")
        return [out / name for name in (*tables, "validation.json")]


@dataclass
class RealRuns:
    """Every real run of every plan, its records as DataFrames, with the load average and wall time around it."""

    runs: dict[str, list[dict[str, pd.DataFrame]]]
    loads: dict[str, list[float]]
    wall_s: dict[str, float]


def check_inputs(cfg: ValidateConfig):
    """Everything checkable before running anything: scenario, plans against the model, ranks and the executor."""
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
                _executor_config(cfg, plan, cfg.out_dir / "runs" / plan_slug(plan)),
                plan.num_gpus,
                check_outputs=False,
            )
        except ExecutorError as err:
            raise ValidationError(str(err)) from None
    return scenario, parsed


def plan_slug(plan: DeploymentPlan) -> str:
    return "_".join(f"tp{c.tp}pp{c.pp}x{n}" for c, n in plan.entries)


def validate(cfg: ValidateConfig, progress: bool = True) -> Validation:
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
    real = run_rounds(cfg, cal, plans, progress)
    cal.measure_round(progress)  # the grid after the last round of runs
    cal.finish(cfg.out_dir / "calibration")

    costs = cal.round_costs(scenario.model, scenario.gpu, cfg.repeats)
    dispatch_cost = CostModel.build(scenario.model, scenario.gpu, profile=cal.dispatch_profile)
    results, frames, runs = [], [], []
    for plan in plans:
        result, pairs, single = validate_plan(cfg, scenario, plan, cal, costs, dispatch_cost, real)
        results.append(result)
        frames.append(pairs)
        runs.append(single)
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


def run_rounds(
    cfg: ValidateConfig, cal: Calibration, plans: list[DeploymentPlan], progress: bool
) -> RealRuns:
    """`repeats` rounds of real runs, every plan once per round (alternate rounds in reverse order), a grid round
    of the calibration before every round but the first (which the calibration itself measured just before)."""
    from tqdm import tqdm

    real = RealRuns({str(p): [] for p in plans}, {str(p): [] for p in plans}, {str(p): 0.0 for p in plans})
    with tqdm(total=len(plans) * cfg.repeats, desc="validate", unit="run", disable=not progress) as bar:
        for r in range(cfg.repeats):
            if r:
                cal.measure_round(progress)
            for plan in plans if r % 2 == 0 else plans[::-1]:
                start, load = time.perf_counter(), os.getloadavg()[0]
                real.runs[str(plan)].append(run_executor(cfg, plan, cal.dispatch_profile, run=r))
                real.loads[str(plan)].append((load + os.getloadavg()[0]) / 2)
                real.wall_s[str(plan)] += time.perf_counter() - start
                bar.update()
    return real


def validate_plan(
    cfg: ValidateConfig,
    scenario,
    plan: DeploymentPlan,
    cal: Calibration,
    costs: list[CostModel],
    dispatch_cost: CostModel,
    real: RealRuns,
) -> tuple[PlanValidation, pd.DataFrame, pd.DataFrame]:
    """One plan's real runs against its simulations (one per distinct round cost model): its summary, its step
    pairs and its single runs."""
    runs_of_plan = real.runs[str(plan)]
    overheads = cal.host.overheads(plan)
    by_cost: dict[int, object] = {}
    for cost in costs:
        if id(cost) not in by_cost:
            by_cost[id(cost)] = simulate(cfg, scenario, plan, cost.with_overheads(overheads), dispatch_cost)
    sims = [by_cost[id(cost)] for cost in costs]
    steps, sim_steps = [run["steps"] for run in runs_of_plan], [sim.steps for sim in sims]
    pairs = step_pairs(plan, steps, sim_steps, cfg.warmup)
    measured = pairs[~pairs["warmup"]]
    m = step_metrics(measured)
    spread = (measured["real_max_s"] - measured["real_min_s"]) / measured["real_step_s"] * 100
    result = PlanValidation(
        plan=str(plan),
        num_ranks=plan.num_gpus,
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
        load_avg_1m=round(float(np.mean(real.loads[str(plan)])), 2),
        wall_s=round(real.wall_s[str(plan)], 1),
    )
    return result, pairs, single_runs(steps, sim_steps, pairs)


def _executor_config(cfg: ValidateConfig, plan: DeploymentPlan, out: Path, **extra) -> ExecutorConfig:
    return ExecutorConfig(
        plan=str(plan),
        steps=cfg.steps,
        scenario=cfg.scenario,
        out=str(out),
        seed=cfg.seed,
        dispatcher=cfg.dispatcher,
        device="cpu",
        **extra,
    )


def run_executor(
    cfg: ValidateConfig, plan: DeploymentPlan, profile: Path, run: int
) -> dict[str, pd.DataFrame]:
    """`lobra execute` of this plan into OUT/runs/<plan>/run<k>, its records as DataFrames."""
    run_dir = cfg.out_dir / "runs" / plan_slug(plan) / f"run{run}"
    run_dir.mkdir(parents=True)
    ex = _executor_config(
        cfg,
        plan,
        run_dir,
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


def simulate(cfg: ValidateConfig, scenario, plan: DeploymentPlan, cost: CostModel, dispatch_cost: CostModel):
    """The simulator on the same plan, steps, seed and sampler mode as the executor. It dispatches as the executor
    did, with `dispatch_cost` (the executor's profile, without host effects: its dispatcher knows nothing of the
    cores it shares), and times what was dispatched with `cost` (with the plan's overheads). Scaling replicas of
    different configs by different contention would otherwise move sequences between them."""
    policy = Policy("validate", cfg.dispatcher, plan=plan)
    sim = SimConfig(steps=cfg.steps, seed=cfg.seed, sampling=DEFAULT_SAMPLING_MODE, replan=False)
    return Simulator(scenario.workload, cost, plan.num_gpus, policy, sim, dispatch_cost=dispatch_cost).run()
