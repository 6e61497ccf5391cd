"""Benchmark: how far lobra-plus's plan is from the best plan under its own dispatcher, and what certifies it.

On a cluster small enough to enumerate (paper-7b: 16 GPUs; the plans of the feasible configs that hold the longest
sequence, 44 there), every plan is scored
the way lobra-plus scores its candidates (the sampled steps dispatched with balanced + packing, as they will run):
the minimum is the exhaustive optimum under that dispatcher. Beside it, two lower bounds of GPU-seconds per step:
the fluid bound every planner reports (each sequence on its cheapest config, no integrality, no bubble, no sync) and
an integrality-aware one, the minimum over every plan of its linear relaxation (policies/lp.py: each replica count
fixed, sequences fractional, each pipelined config's least bubble, plus the plan's gradient sync and optimizer), on
the sampled lengths rounded down to 64 tokens. Both bounds hold under the planners' cost tables, the model every
estimate here shares (a replica left idle would pay no bubble: the bound assumes each pipelined one runs). Writes
bench/results/certified_gap.json.

    .venv/bin/python bench/certified_gap.py [--scenario paper-7b]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from lobra.costmodel import CostModel
from lobra.policies.costs import CostTable, min_bubble_s
from lobra.policies.lp import split_lp
from lobra.policies.planners import get_planner
from lobra.policies.planners.base import (
    WorkloadSample,
    evaluate_plan,
    lower_bound_gpu_seconds,
    workload_memory,
)
from lobra.policies.planners.lobra import step_overhead_s
from lobra.policies.planners.search import enumerate_plans
from lobra.traces import load_scenario
from tqdm import tqdm

from lobra.io import write_json

GRANULE = 64


def lp_min_bound(sample: WorkloadSample, cost: CostModel, plans, num_gpus: int) -> tuple[float, str]:
    table = CostTable(cost, packing=True)
    largest = max(table.max_tokens(c) for p in plans for c, _ in p.entries)
    lengths = np.maximum(np.minimum(sample.lengths(), largest) // GRANULE * GRANULE, GRANULE)
    values, counts = np.unique(lengths, return_counts=True)
    per_step = {int(s): n / len(sample.steps) for s, n in zip(values, counts, strict=True)}
    best, best_plan = np.inf, ""
    for plan in tqdm(plans, desc="LP bound per plan"):
        if any(table.length_cost(c, int(values[-1])) is not None for c, _ in plan.entries):
            bubbles = {c: min_bubble_s(c, list(per_step), table) for c, _ in plan.entries}
            step = split_lp(per_step, dict(plan.entries), table, bubbles)[0] + step_overhead_s(plan, cost)
            if step < best:
                best, best_plan = step, str(plan)
    return best * num_gpus, best_plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="paper-7b")
    parser.add_argument("--out", default="bench/results/certified_gap.json")
    args = parser.parse_args()
    sc = load_scenario(args.scenario)
    base = CostModel.build(sc.model, sc.gpu)
    planner = get_planner("lobra-plus", workers=1)
    start = time.perf_counter()
    chosen = planner.plan(sc.workload, base, sc.num_gpus)
    planning_s = time.perf_counter() - start
    cost = base.with_memory(workload_memory(sc.workload, base.memory))
    sample = WorkloadSample.draw(sc.workload, planner.config.sample_steps, planner.config.seed)
    configs = [c for c, n in cost.feasible_configs(sc.num_gpus).items() if n]
    longest = int(min(sample.lengths().max(), max(cost.max_tokens(c) for c in configs)))
    must_hold = [c for c in configs if cost.max_tokens(c) >= longest]
    plans = list(enumerate_plans(configs, sc.num_gpus, None, must_hold))
    scores = {
        str(p): evaluate_plan(p, sample, cost, planner.dispatcher, planner.dispatcher_config) * sc.num_gpus
        for p in tqdm(plans, desc="exhaustive, balanced + packing")
    }
    optimum_plan = min(scores, key=scores.get)
    optimum = scores[optimum_plan]
    bound, bound_plan = lp_min_bound(sample, cost, plans, sc.num_gpus)
    fluid = lower_bound_gpu_seconds(sample, cost, sc.num_gpus)
    result = {
        "scenario": sc.name,
        "plans": len(plans),
        "lobra_plus": {
            "plan": chosen.plan_str,
            "gpu_seconds": chosen.gpu_seconds_per_step,
            "planning_s": planning_s,
        },
        "exhaustive_optimum": {"plan": optimum_plan, "gpu_seconds": optimum},
        "lobra_plus_above_optimum_pct": 100 * (chosen.gpu_seconds_per_step / optimum - 1),
        "lp_min_bound": {"gpu_seconds": bound, "at_plan": bound_plan},
        "optimum_above_lp_bound_pct": 100 * (optimum / bound - 1),
        "fluid_bound_gpu_seconds": fluid,
        "optimum_above_fluid_bound_pct": 100 * (optimum / fluid - 1),
    }
    write_json(Path(args.out), result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
