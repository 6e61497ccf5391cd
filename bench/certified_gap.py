"""Benchmark: how far lobra-plus's plan is from the best plan under its own dispatcher, and what certifies it.

On a cluster small enough to enumerate (paper-7b: 16 GPUs, 44 plans hold its longest sequence), every plan is scored
the way lobra-plus scores its candidates (the sampled steps dispatched with balanced + packing, as they will run):
the least is the exhaustive optimum under that dispatcher. Beside it, two lower bounds of GPU-seconds per step:
the fluid bound every planner reports and the integer one (policies/planners/certify.py: the least over every
deployable plan of its relaxation). Writes bench/results/certified_gap.json.

    .venv/bin/python bench/certified_gap.py [--scenario paper-7b]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from lobra.costmodel import CostModel
from lobra.policies.planners import get_planner
from lobra.policies.planners.base import WorkloadSample, lower_bound_gpu_seconds, workload_memory
from lobra.policies.planners.certify import exhaustive_optimum, integer_lower_bound
from lobra.traces import load_scenario

from lobra.io import write_json


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
    start = time.perf_counter()
    plan, step = exhaustive_optimum(sample, cost, sc.num_gpus, planner.dispatcher, planner.dispatcher_config)
    optimum, optimum_s = step * sc.num_gpus, time.perf_counter() - start
    start = time.perf_counter()
    bound = integer_lower_bound(sample, cost, sc.num_gpus)
    bound_s = time.perf_counter() - start
    fluid = lower_bound_gpu_seconds(sample, cost, sc.num_gpus)
    result = {
        "scenario": sc.name,
        "lobra_plus": {
            "plan": chosen.plan_str,
            "gpu_seconds": chosen.gpu_seconds_per_step,
            "planning_s": planning_s,
        },
        "exhaustive_optimum": {"plan": str(plan), "gpu_seconds": optimum, "seconds": optimum_s},
        "lobra_plus_above_optimum_pct": 100 * (chosen.gpu_seconds_per_step / optimum - 1),
        "integer_bound": {"gpu_seconds": bound.gpu_seconds, "proven": bound.proven, "seconds": bound_s},
        "optimum_above_integer_bound_pct": 100 * (optimum / bound.gpu_seconds - 1),
        "fluid_bound_gpu_seconds": fluid,
        "optimum_above_fluid_bound_pct": 100 * (optimum / fluid - 1),
    }
    write_json(Path(args.out), result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
