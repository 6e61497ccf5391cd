"""Benchmark: each planner's estimate for its chosen plan beside the simulation of that plan, on every shipped
scenario with every task active (online-7b's tenants arrive and leave, so a plan's steady state is not its run) and
on examples/four_tenants.yaml (llama3-8b, 32 h100-80gb). The simulation runs the planner's own sampled steps (same
sampler, seed and count) with the dispatcher it plans for; a planner that scores plans by a surrogate (lobra) is
also reported with those steps dispatched on its plan as they will run. Writes
bench/results/planned_vs_simulated.csv.

    .venv/bin/python bench/planned_vs_simulated.py [--scenarios paper-7b,tiny-cpu] [--planners lobra-plus]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from lobra.costmodel import CostModel
from lobra.policies.planners.base import SAMPLED_DISPATCH
from lobra.sim import Policy, SimConfig, Simulator
from lobra.traces import load_scenario, load_workload
from tqdm import tqdm

from lobra.io import atomic_write

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ["paper-7b", "real-7b", "paper-70b-4task", "paper-70b", "tiny-cpu"]
PLANNERS = ["task-fused", "task-sequential", "lobra", "lobra-plus"]


@dataclass(frozen=True)
class Case:
    name: str
    workload: object
    model: str
    gpu: str
    num_gpus: int


def cases(names: list[str]) -> list[Case]:
    out = []
    for name in names:
        if name == "four-tenants":
            workload = load_workload(ROOT / "examples" / "four_tenants.yaml")
            out.append(Case(name, workload, "llama3-8b", "h100-80gb", 32))
        else:
            sc = load_scenario(name)
            out.append(Case(name, sc.workload, sc.model, sc.gpu, sc.num_gpus))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join([*SCENARIOS, "four-tenants"]))
    parser.add_argument("--planners", default=",".join(PLANNERS))
    parser.add_argument("--out", default="bench/results/planned_vs_simulated.csv")
    args = parser.parse_args()
    rows = []
    todo = [(c, p) for c in cases(args.scenarios.split(",")) for p in args.planners.split(",")]
    for case, name in tqdm(todo, desc="plan and simulate"):
        cost = CostModel.build(case.model, case.gpu)
        policy = Policy.of_planner(name, workers=1)
        planner = policy.make_planner()
        start = time.perf_counter()
        planned = planner.plan(case.workload, cost, case.num_gpus)
        plan_s = time.perf_counter() - start
        surrogate = planned.estimate != SAMPLED_DISPATCH
        dispatched = planner.dispatched_step_time(planned, case.workload, cost) if surrogate else None
        config = SimConfig(steps=planner.config.sample_steps, seed=planner.config.seed)
        simulated = Simulator(case.workload, cost, case.num_gpus, policy, config).run().summary
        rows.append(
            {
                "scenario": case.name,
                "planner": name,
                "plan": planned.plan_str,
                "estimate": planned.estimate,
                "planned_gpu_s": planned.gpu_seconds_per_step,
                "dispatched_gpu_s": None if dispatched is None else dispatched * case.num_gpus,
                "simulated_gpu_s": simulated["gpu_seconds_per_step"],
                "planned_vs_simulated_pct": 100
                * (planned.gpu_seconds_per_step / simulated["gpu_seconds_per_step"] - 1),
                "planning_s": plan_s,
            }
        )
    df = pd.DataFrame(rows)
    atomic_write(args.out, lambda p: df.to_csv(p, index=False))
    shown = df.drop(columns=["estimate"]).assign(
        plan=df["plan"].map(lambda p: p if len(p) <= 40 else p[:37] + "...")
    )
    print(shown.to_string(index=False, float_format="{:.2f}".format))


if __name__ == "__main__":
    main()
