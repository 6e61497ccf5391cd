"""Sweeps: a grid of simulations run in parallel processes, one tidy row per run.

A run is one workload (a scenario or a tasks file, optionally cut to or grown to K tasks) on one cluster under one
policy: the planner plans once, then `Simulator(...).run()` simulates `steps` steps on that plan. Runs that share a
planning problem (same workload, hardware, planner, seed) share one plan: the ablations and the bucket study
re-dispatch the LobRA plan instead of planning it again, and their rows carry the same planning time.

`expand_grid(base, [("num-gpus", "16,32"), ("planner", "lobra,task-fused")])` is the cartesian product in the order
given (the last key varies fastest); `run_sweep(specs, workers)` returns the rows in that order whatever the number
of processes, and the simulated numbers depend only on the seed (planning times are wall-clock, and integer
programmes that hit their time limit may stop at a load-dependent incumbent).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from functools import lru_cache

import pandas as pd
from lobra.costmodel import CostModel, parse_plan
from lobra.policies.bucketing import DEFAULT_NUM_BUCKETS
from lobra.policies.dispatchers import DISPATCHERS, DispatcherConfig
from lobra.policies.dispatchers.base import BUCKETINGS
from lobra.policies.planners import (
    PLANNERS,
    PlannerConfig,
    PlanResult,
    WorkloadSample,
    get_planner,
    lower_bound_gpu_seconds,
)
from lobra.policies.planners.base import workload_memory
from lobra.sim import Policy, SimConfig, Simulator
from lobra.traces import StepSampler, Task, Workload, load_scenario, load_workload
from lobra.traces.scenario import SCENARIOS, check_gpu, check_model


class SweepError(ValueError):
    """Bad sweep input: a malformed --vary, an unknown key or value, a run without its model, GPU or GPU count."""


# A scenario whose task list is a prefix of a larger one: --vary num-tasks grows it from there (the paper's 8, 12
# and 16-task points add more of its 12 datasets to the 4 of the scalability study).
TASK_POOLS = {"paper-70b-4task": "paper-70b"}


@dataclass(frozen=True)
class RunSpec:
    """One simulation of a sweep. None: the scenario's (model, gpu, num_gpus) or the planner's (dispatcher,
    bucketing, packing) or the default (num_buckets, num_tasks: all)."""

    scenario: str | None = None
    tasks: str | None = None
    model: str | None = None
    gpu: str | None = None
    num_gpus: int | None = None
    planner: str = "lobra"
    dispatcher: str | None = None
    bucketing: str | None = None
    packing: bool | None = None
    num_buckets: int | None = None
    num_tasks: int | None = None
    steps: int = 5
    seed: int = 0
    ilp_time_limit_s: float = 2.0  # per integer programme, planner and balanced-ilp dispatcher alike
    plan: str | None = None  # a fixed deployment plan instead of planning; dispatched as `planner` would
    # A display name (figures; default planner[+dispatcher]); not part of the run: equal runs are simulated once.
    policy: str = field(default="", compare=False)

    def resolved(self) -> RunSpec:
        """The spec with the scenario's model, GPU and GPU count filled in and every value checked."""
        if (self.scenario is None) == (self.tasks is None):
            raise SweepError("a sweep needs exactly one of --scenario and --tasks")
        spec = self
        if self.scenario is not None:
            if self.scenario not in SCENARIOS:
                raise SweepError(f"unknown scenario {self.scenario!r}; choose from {', '.join(SCENARIOS)}")
            sc = load_scenario(self.scenario, self.num_gpus)  # checks the GPU count against its range
            spec = replace(spec, model=spec.model or sc.model, gpu=spec.gpu or sc.gpu, num_gpus=sc.num_gpus)
        missing = [k for k in ("model", "gpu", "num_gpus") if getattr(spec, k) is None]
        if missing:
            raise SweepError(
                f"a tasks file needs {', '.join('--' + k.replace('_', '-') for k in missing)}"
                " (or --vary them)"
            )
        check_model(spec.model)
        check_gpu(spec.gpu)
        for key in ("num_gpus", "steps", "num_buckets", "num_tasks"):
            value = getattr(spec, key)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise SweepError(f"{key.replace('_', '-')} must be a positive integer, got {value!r}")
        if not isinstance(spec.seed, int) or spec.seed < 0:
            raise SweepError(f"seed must be an integer >= 0, got {spec.seed!r}")
        if spec.ilp_time_limit_s <= 0:
            raise SweepError(f"the ILP time limit must be positive, got {spec.ilp_time_limit_s!r}")
        PLANNERS.get(spec.planner)
        if spec.plan is not None:
            plan = parse_plan(spec.plan)
            cost = cost_of(spec.model, spec.gpu)
            for config, _ in plan.entries:
                cost.check_config(config)
            if plan.num_gpus > spec.num_gpus:
                raise SweepError(f"plan {plan} needs {plan.num_gpus} GPUs, the run has {spec.num_gpus}")
            spec = replace(spec, plan=str(plan))
        if spec.dispatcher is not None:
            DISPATCHERS.get(spec.dispatcher)
        if spec.bucketing is not None and spec.bucketing not in BUCKETINGS:
            raise SweepError(f"unknown bucketing {spec.bucketing!r}; choose from {', '.join(BUCKETINGS)}")
        # Defaults spelled out are the defaults: the same run, the same plan, simulated once.
        if spec.num_buckets == DEFAULT_NUM_BUCKETS:
            spec = replace(spec, num_buckets=None)
        if spec.num_tasks == len(workload_of(spec.scenario, spec.tasks, None)):
            spec = replace(spec, num_tasks=None)
        return spec

    @property
    def plan_key(self) -> tuple:
        """What the plan depends on: runs with the same key share one plan."""
        return (
            self.scenario,
            self.tasks,
            self.num_tasks,
            self.model,
            self.gpu,
            self.num_gpus,
            self.planner,
            self.seed,
            self.ilp_time_limit_s,
            self.plan,
        )


# --vary KEY -> (RunSpec field, value parser)
def _bool(text: str) -> bool:
    if text.lower() in ("true", "yes", "1", "on"):
        return True
    if text.lower() in ("false", "no", "0", "off"):
        return False
    raise ValueError(text)


VARY_KEYS: dict[str, tuple[str, Callable[[str], object]]] = {
    "num-gpus": ("num_gpus", int),
    "planner": ("planner", str),
    "dispatcher": ("dispatcher", str),
    "model": ("model", str),
    "gpu": ("gpu", str),
    "steps": ("steps", int),
    "seed": ("seed", int),
    "num-buckets": ("num_buckets", int),
    "num-tasks": ("num_tasks", int),
    "bucketing": ("bucketing", str),
    "packing": ("packing", _bool),
}


def parse_vary(text: str) -> tuple[str, list]:
    """`key=v1,v2,...` -> (key, [parsed values]); one-line SweepError on anything else."""
    key, sep, values = text.partition("=")
    key = key.strip()
    items = [v.strip() for v in values.split(",")]
    if not sep or not key or not values.strip() or any(not v for v in items):
        raise SweepError(f"--vary must be KEY=V1,V2,... (e.g. num-gpus=16,32,64), got {text!r}")
    if key not in VARY_KEYS:
        raise SweepError(f"unknown --vary key {key!r}; choose from {', '.join(VARY_KEYS)}")
    parse = VARY_KEYS[key][1]
    try:
        parsed = [parse(v) for v in items]
    except ValueError:
        raise SweepError(f"--vary {key}: bad value in {values!r}") from None
    if len(set(parsed)) != len(parsed):
        raise SweepError(f"--vary {key}: a value is repeated in {values!r}")
    return key, parsed


def expand_grid(base: RunSpec, vary: list[tuple[str, list]]) -> list[RunSpec]:
    """The cartesian product of the varied values over `base`, first key slowest; every spec checked."""
    keys = [k for k, _ in vary]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise SweepError(f"--vary {dup} is given twice")
    specs = []
    for combo in itertools.product(*(values for _, values in vary)):
        changes = {VARY_KEYS[k][0]: v for k, v in zip(keys, combo, strict=True)}
        specs.append(replace(base, **changes).resolved())
    return specs


# -- workloads ------------------------------------------------------------------------------------------------
def select_tasks(workload: Workload, k: int, pool: Workload | None = None) -> Workload:
    """The first k tasks; past the workload's own, the pool's other tasks in order; past those, the same tasks
    again under new names (`dolly-2`, ...: the sampler draws a fresh order for each name)."""
    if k <= len(workload):
        return Workload(workload.tasks[:k], workload.source, workload.description)
    distinct = list(workload.tasks)
    have = set(workload.names)
    distinct += [t for t in (pool or workload) if t.name not in have]
    tasks = distinct[:k]
    for i in range(len(distinct), k):
        src = distinct[i % len(distinct)]
        tasks.append(Task(replace(src.spec, name=f"{src.name}-{i // len(distinct) + 1}"), src.trace))
    return Workload(tuple(tasks), workload.source, f"{workload.description} ({k} tasks)")


@lru_cache(maxsize=32)
def workload_of(scenario: str | None, tasks: str | None, num_tasks: int | None) -> Workload:
    if scenario is not None:
        workload = load_scenario(scenario).workload
        pool = load_scenario(TASK_POOLS[scenario]).workload if scenario in TASK_POOLS else None
    else:
        workload, pool = load_workload(tasks), None
    return workload if num_tasks is None else select_tasks(workload, num_tasks, pool)


@lru_cache(maxsize=8)
def cost_of(model: str, gpu: str) -> CostModel:
    return CostModel.build(model, gpu)


# -- one run --------------------------------------------------------------------------------------------------
def plan_run(spec: RunSpec) -> PlanResult:
    workload = workload_of(spec.scenario, spec.tasks, spec.num_tasks)
    if spec.plan is not None:
        return fixed_plan(spec, workload)
    # One process per run: the planner's own pool would only oversubscribe the cores.
    planner = get_planner(spec.planner, seed=spec.seed, time_limit_s=spec.ilp_time_limit_s, workers=1)
    return planner.plan(workload, cost_of(spec.model, spec.gpu), spec.num_gpus)


def fixed_plan(spec: RunSpec, workload: Workload) -> PlanResult:
    """A given plan as a PlanResult: no planning, the planner's dispatcher, the workload's lower bound."""
    cls = PLANNERS.get(spec.planner)
    cost = cost_of(spec.model, spec.gpu)
    cost = cost.with_memory(workload_memory(workload, cost.memory))
    config = PlannerConfig(seed=spec.seed)
    sample = WorkloadSample.draw(workload, config.sample_steps, config.seed)
    return PlanResult(
        planner=spec.planner,
        plan=parse_plan(spec.plan),
        step_time_s=float("nan"),
        num_gpus=spec.num_gpus,
        planning_time_s=0.0,
        lower_bound_gpu_seconds=lower_bound_gpu_seconds(sample, cost, spec.num_gpus),
        dispatcher=cls.dispatcher,
        dispatcher_config=cls.dispatcher_config,
        plans_considered=0,
    )


def display_name(spec: RunSpec) -> str:
    return spec.policy or (spec.planner if spec.dispatcher is None else f"{spec.planner}+{spec.dispatcher}")


def policy_of(spec: RunSpec, plan: PlanResult, static: bool) -> Policy:
    base = plan.dispatcher_config if spec.dispatcher is None else DispatcherConfig()
    changes = {"time_limit_s": spec.ilp_time_limit_s}
    for key in ("bucketing", "packing", "num_buckets"):
        if getattr(spec, key) is not None:
            changes[key] = getattr(spec, key)
    config = replace(base, **changes)
    dispatcher = spec.dispatcher or plan.dispatcher
    name = display_name(spec)
    if static and plan.plan is not None:
        return Policy(name, dispatcher, config, plan=plan.plan)
    # Task-Sequential (a plan per task) and workloads whose task set changes: the simulator plans as it goes.
    return Policy.of_planner(
        spec.planner,
        name=name,
        dispatcher=dispatcher,
        dispatcher_config=config,
        seed=spec.seed,
        time_limit_s=spec.ilp_time_limit_s,
        workers=1,
    )


def simulate_run(spec: RunSpec, plan: PlanResult) -> dict:
    start = time.perf_counter()
    workload = workload_of(spec.scenario, spec.tasks, spec.num_tasks)
    # The plan holds for the whole run only if every task is there from the start and none finishes.
    static = all(t.spec.arrival_s == 0 and t.num_steps >= spec.steps for t in workload)
    policy = policy_of(spec, plan, static)
    config = SimConfig(steps=spec.steps, seed=spec.seed)
    result = Simulator(workload, cost_of(spec.model, spec.gpu), spec.num_gpus, policy, config).run()
    s = result.summary
    ok = result.steps[result.steps["status"] == "ok"]
    truncated = float("nan")
    if static:
        # The same steps again, straight from the sampler: what the replicas did not run was cut off (or dropped)
        # because no replica of the plan holds that many tokens.
        sampler = StepSampler(workload, seed=spec.seed, mode=config.sampling)
        sampled = sum(n for _ in range(len(ok)) for _, n in sampler.next_step())
        truncated = 100 * (1 - float(ok["tokens"].sum()) / sampled) if sampled else 0.0
    dispatch = policy.dispatcher_config
    gpu_s = s["gpu_seconds_per_step"]
    return {
        "policy": policy.name,
        "scenario": spec.scenario or spec.tasks,
        "model": spec.model,
        "gpu": spec.gpu,
        "num_gpus": spec.num_gpus,
        "num_tasks": len(workload),
        "planner": spec.planner,
        "dispatcher": policy.dispatcher,
        "bucketing": dispatch.bucketing,
        "num_buckets": dispatch.num_buckets,
        "packing": dispatch.packing,
        "steps": s["steps"],
        "seed": spec.seed,
        "plan": s["plan"],
        "planned_step_time_s": plan.step_time_s,
        "step_time_s": s["step_time_s"],
        "gpu_seconds_per_step": gpu_s,
        "lower_bound_gpu_seconds": plan.lower_bound_gpu_seconds,
        "above_lower_bound_pct": 100 * (gpu_s / plan.lower_bound_gpu_seconds - 1),
        "padding_ratio": s["padding_ratio"],
        "tokens_per_step": float(ok["tokens"].mean()),
        "truncated_pct": truncated,
        "idle_ratio": s["idle_ratio"],
        "tokens_per_s": s["tokens_per_s"],
        "plans_considered": plan.plans_considered,
        "planning_time_s": plan.planning_time_s,
        "sim_wall_s": time.perf_counter() - start,
    }


def _label(s: RunSpec) -> str:
    return f"{s.scenario or s.tasks} on {s.num_gpus} GPUs, {s.policy or s.planner}"


def _checked(fn, s: RunSpec, *args):
    """fn(s, *args), its error prefixed with the run it belongs to (module level: it runs in the workers)."""
    try:
        return fn(s, *args)
    except ValueError as err:
        raise SweepError(f"run {_label(s)}: {str(err).splitlines()[0]}") from None


# Columns that measure this machine's wall clock, not the simulated cluster: they differ between identical runs.
WALL_CLOCK_COLUMNS = ("planning_time_s", "sim_wall_s")


def progress_total(specs: list[RunSpec]) -> int:
    """How many times run_sweep calls progress: once per distinct plan and once per distinct run."""
    unique = {s.resolved() for s in specs}
    return len(unique) + len({s.plan_key for s in unique})


def run_sweep(
    specs: list[RunSpec],
    workers: int = 1,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Every run, one row each, in the order of `specs`. Plans first (one per plan key), then simulations, all in
    one pool of `workers` processes; progress(label) after each plan and each simulation."""
    if not specs:
        raise SweepError("a sweep needs at least one run")
    if not isinstance(workers, int) or workers < 1:
        raise SweepError(f"--workers must be a positive integer, got {workers!r}")
    specs = [s.resolved() for s in specs]
    unique = list(dict.fromkeys(specs))  # equal runs (whatever their display names) are simulated once
    keys = list(dict.fromkeys(s.plan_key for s in unique))
    first = {}
    for s in unique:
        first.setdefault(s.plan_key, s)
    results: list[dict | None] = [None] * len(unique)
    note = progress or (lambda _label: None)
    # Load every workload and fit every cost model here, once: a bad tasks file fails before any work, and
    # forked workers inherit the caches instead of each rebuilding them.
    for s in specs:
        workload_of(s.scenario, s.tasks, s.num_tasks)
        cost_of(s.model, s.gpu)

    if workers == 1:
        plans = {}
        for key in keys:
            plans[key] = _checked(plan_run, first[key])
            note(f"plan {_label(first[key])}")
        for i, s in enumerate(unique):
            results[i] = _checked(simulate_run, s, plans[s.plan_key])
            note(f"sim {_label(s)}")
    else:
        pool = ProcessPoolExecutor(workers)
        try:
            pending: dict[Future, tuple[str, object]] = {
                pool.submit(_checked, plan_run, first[k]): ("plan", k) for k in keys
            }
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    kind, what = pending.pop(fut)
                    result = fut.result()  # a failed run fails the sweep with its own one-line error
                    if kind == "plan":
                        note(f"plan {_label(first[what])}")
                        for i, s in enumerate(unique):
                            if s.plan_key == what:
                                pending[pool.submit(_checked, simulate_run, s, result)] = ("sim", i)
                    else:
                        results[what] = result
                        note(f"sim {_label(unique[what])}")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    index = {s: i for i, s in enumerate(unique)}
    rows = []
    for s in specs:
        rows.append(results[index[s]] | {"policy": display_name(s)})
    df = pd.DataFrame(rows)
    df.insert(0, "run", range(len(df)))
    return df


__all__ = [
    "DEFAULT_NUM_BUCKETS",
    "RunSpec",
    "SweepError",
    "VARY_KEYS",
    "expand_grid",
    "parse_vary",
    "run_sweep",
    "select_tasks",
]
