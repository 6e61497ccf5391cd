"""The studies behind the figures: which runs each figure needs (analysis/sweep.py runs them), and the measured
step pairs of the last `lobra validate` for the sim-vs-real figure.

The defaults are the paper's settings (paper-7b, paper-70b, paper-70b-4task); `FigureSettings.for_tasks` puts every
study on one tasks file instead. The task study grows paper-70b-4task's 4 tasks with paper-70b's other 8 datasets (in
that file's order) up to 12, then repeats the tasks under new names (analysis/sweep.py, select_tasks).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
from lobra.analysis import paper
from lobra.analysis.sweep import RunSpec, cost_of, workload_of
from lobra.costmodel import parse_plan
from lobra.policies.planners.base import workload_memory
from lobra.policies.solver import DEFAULT_NODE_LIMIT, DEFAULT_TIME_LIMIT_S

# (display name, planner, dispatcher, bucketing): the policies of sim/compare.py.
MAIN_POLICIES = [
    ("task-sequential", "task-sequential", None, None),
    ("task-fused", "task-fused", None, None),
    ("lobra-length", "lobra", "length", "pow2"),
    ("lobra-balanced", "lobra", "balanced-ilp", "pow2"),
    ("lobra", "lobra", None, None),
    ("lobra-plus", "lobra-plus", None, None),
]
SCALING_POLICIES = ("task-fused", "lobra", "lobra-plus")


@dataclass(frozen=True)
class FigureSettings:
    """What the figures simulate. The defaults are the paper's settings; `paper=False` marks a custom workload,
    which the report does not hold against the paper's numbers."""

    main: tuple[tuple[str, RunSpec], ...] = (
        ("7B", RunSpec(scenario="paper-7b")),
        ("70B", RunSpec(scenario="paper-70b")),
    )
    scaling: RunSpec = field(default_factory=lambda: RunSpec(scenario="paper-70b-4task"))
    scaling_gpus: tuple[int, ...] = (16, 32, 64)
    num_tasks: tuple[int, ...] = (4, 8, 12, 16)
    tasks_gpus: int = 64
    buckets_base: RunSpec = field(default_factory=lambda: RunSpec(scenario="paper-7b"))
    buckets: tuple[int, ...] = (4, 8, 12, 16, 24, 32)
    planning_gpus: tuple[int, ...] = (16, 32, 64, 128, 256)
    planning_planners: tuple[str, ...] = ("lobra", "lobra-plus")
    steps: int = 4
    seed: int = 0
    ilp_time_limit_s: float = DEFAULT_TIME_LIMIT_S
    ilp_node_limit: int = DEFAULT_NODE_LIMIT
    workers: int = 2
    paper: bool = True

    @classmethod
    def for_tasks(
        cls,
        tasks: str,
        model: str,
        gpu: str,
        num_gpus: int,
        gpus: tuple[int, ...],
        num_tasks: tuple[int, ...],
        buckets: tuple[int, ...],
        **kw,
    ) -> FigureSettings:
        """Every study on one tasks file (what-if figures for your own workload)."""
        base = RunSpec(tasks=tasks, model=model, gpu=gpu, num_gpus=num_gpus)
        return cls(
            main=((Path(tasks).stem, base),),
            scaling=base,
            scaling_gpus=gpus,
            num_tasks=num_tasks,
            tasks_gpus=num_gpus,
            buckets_base=base,
            buckets=buckets,
            planning_gpus=gpus,
            paper=False,
            **kw,
        )

    def spec(self, base: RunSpec, **changes) -> RunSpec:
        common = {"steps": self.steps, "seed": self.seed, "ilp_time_limit_s": self.ilp_time_limit_s}
        common["ilp_node_limit"] = self.ilp_node_limit
        return replace(base, **common, **changes)


def studies(s: FigureSettings) -> dict[str, list[RunSpec]]:
    """The runs behind each figure (some shared: run_sweep simulates equal runs once)."""
    main = [
        s.spec(base, planner=planner, dispatcher=disp, bucketing=buck, policy=f"{label}|{name}")
        for label, base in s.main
        for name, planner, disp, buck in MAIN_POLICIES
    ]
    return {
        "main": main,
        "paper_plans": paper_plan_specs(s) if s.paper else [],
        "scalability_gpus": [
            s.spec(s.scaling, num_gpus=n, planner=p) for n in s.scaling_gpus for p in SCALING_POLICIES
        ],
        "scalability_tasks": [
            s.spec(s.scaling, num_gpus=s.tasks_gpus, num_tasks=k, planner=p)
            for k in s.num_tasks
            for p in SCALING_POLICIES
        ],
        "buckets": [s.spec(s.buckets_base, planner="lobra", num_buckets=b) for b in s.buckets],
        "planning_time": [
            s.spec(s.scaling, num_gpus=n, planner=p) for n in s.planning_gpus for p in s.planning_planners
        ],
    }


def swap_degrees(plan: str) -> str:
    """'<2,4>x4 <16,1>x1' -> '<4,2>x4 <1,16>x1': the other reading of the paper's notation."""
    return " ".join(f"<{b},{a}{',ckpt' if c else ''}>x{n or 1}" for a, b, c, n in paper.ENTRY.findall(plan))


def paper_plan_specs(s: FigureSettings) -> list[RunSpec]:
    """The paper's published plans, simulated here with the dispatch of the policy that found them. The paper's
    `<a,b>` may be (tp, pp) or (pp, tp): every reading our cost model can run is simulated (`<16,1>` has tp 16
    in the first reading, which would span two 8-GPU nodes)."""
    specs = []
    for label, base in s.main:
        for policy, text in paper.PLANS.get(label, {}).items():
            for reading, plan in (("as (tp,pp)", text), ("as (pp,tp)", swap_degrees(text))):
                # the paper's plan may hold less than our traces' longest sequences: cut them, and say how much
                spec = s.spec(
                    base,
                    planner=policy,
                    plan=plan,
                    policy=f"{label}|{policy} {reading}",
                    beyond_capacity="truncate",
                )
                try:
                    spec = spec.resolved()
                    memory = workload_memory(
                        workload_of(spec.scenario, spec.tasks, None), cost_of(spec.model, spec.gpu).memory
                    )
                    cost = cost_of(spec.model, spec.gpu).with_memory(memory)
                    if any(cost.max_tokens(c) == 0 for c, _ in parse_plan(spec.plan).entries):
                        continue  # a replica too small to hold the model and its adapters
                except ValueError:
                    continue  # not a config of this model on this GPU
                if spec not in specs:
                    specs.append(spec)
    return specs


PAIR_COLUMNS = ("plan", "step", "real_step_time_s", "sim_step_time_s")
# `lobra validate` (calibration/validate.py) names them real_step_s and sim_step_s.
PAIR_ALIASES = {"real_step_s": "real_step_time_s", "sim_step_s": "sim_step_time_s"}


def load_validation(folder: str | Path) -> tuple[pd.DataFrame | None, str]:
    """The measured per-step (real, simulated) pairs of the last `lobra validate` run (warm-up steps left out), or
    None and why not."""
    path = Path(folder) / "pairs.csv"
    if not path.is_file():
        return None, f"no validation run found under {folder}: run `lobra validate`"
    pairs = pd.read_csv(path)
    pairs = pairs.rename(columns={k: v for k, v in PAIR_ALIASES.items() if v not in pairs.columns})
    missing = [c for c in PAIR_COLUMNS if c not in pairs.columns]
    if missing:
        return None, f"{path} lacks the columns {', '.join(missing)}: run `lobra validate` again"
    if "warmup" in pairs.columns:
        pairs = pairs[~pairs["warmup"].astype(bool)]
    if pairs.empty:
        return None, f"{path} holds no measured steps: run `lobra validate` again"
    return pairs.reset_index(drop=True), _validated(Path(folder), len(pairs))


def _validated(folder: Path, pairs: int) -> str:
    """'tiny-cpu: tiny model, executor ranks on this machine's CPUs, 40 step pairs': what a validation measured."""
    try:
        name = json.loads((folder / "validation.json").read_text())["scenario"]
        from lobra.traces import load_scenario

        model = load_scenario(name).model
    except (OSError, ValueError, KeyError):
        return f"{pairs} measured step pairs"
    return f"{name}: {model} model, executor ranks on this machine's CPUs, {pairs} step pairs"  # validate is CPU only
