"""A run of a sweep (RunSpec: the workload, the cluster, the policy) and the grid of runs `--vary` spans."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from lobra.analysis.sweep.workloads import cost_of, workload_of
from lobra.costmodel import parse_plan
from lobra.policies.bucketing import DEFAULT_NUM_BUCKETS
from lobra.policies.dispatchers import DISPATCHERS
from lobra.policies.dispatchers.base import BUCKETINGS
from lobra.policies.planners import PLANNERS
from lobra.policies.solver import DEFAULT_NODE_LIMIT, DEFAULT_TIME_LIMIT_S
from lobra.traces import load_scenario
from lobra.traces.scenario import SCENARIOS, check_gpu, check_model


class SweepError(ValueError):
    """Bad sweep input: a malformed --vary, an unknown key or value, a run without its model, GPU or GPU count."""


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
    # per integer programme, planner and balanced-ilp dispatcher alike (policies/solver.py)
    ilp_time_limit_s: float = DEFAULT_TIME_LIMIT_S
    ilp_node_limit: int = DEFAULT_NODE_LIMIT
    plan: str | None = None  # a fixed deployment plan instead of planning; dispatched as `planner` would
    # sequences longer than the plan's largest replica holds: an error, or truncated/dropped and counted (a fixed
    # plan from elsewhere, e.g. the paper's, may hold less than the workload's longest sequences)
    beyond_capacity: str = "error"
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
        if not isinstance(spec.ilp_node_limit, int) or spec.ilp_node_limit < 1:
            raise SweepError(f"the ILP node limit must be a positive integer, got {spec.ilp_node_limit!r}")
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
            self.ilp_node_limit,
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


__all__ = ["VARY_KEYS", "RunSpec", "SweepError", "expand_grid", "parse_vary"]
