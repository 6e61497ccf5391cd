"""Benchmark: simulate 1,000 steps of paper-70b on 64 GPUs (planning timed apart), and check that the closed-form
pipeline and the event-by-event pipeline give the same timeline. Writes bench/results/sim_speed.json.

    .venv/bin/python bench/sim_speed.py [--steps 1000] [--policy lobra-plus]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from lobra.costmodel import CostModel
from lobra.sim import Policy, SimConfig, Simulator
from lobra.traces import Task, Workload, load_scenario


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--policies", default="lobra-plus,task-fused")
    args = parser.parse_args()
    scenario = load_scenario("paper-70b")
    # The scenario's tasks run 200 steps each; give every task enough steps for the benchmark.
    workload = Workload(
        tuple(Task(replace(t.spec, steps=args.steps, epochs=None), t.trace) for t in scenario.workload)
    )
    scenario = replace(scenario, workload=workload)
    cost = CostModel.build(scenario.model, scenario.gpu)
    report = {"scenario": scenario.name, "num_gpus": scenario.num_gpus, "steps": args.steps, "runs": []}
    for name in args.policies.split(","):
        start = time.perf_counter()
        planned = Simulator(scenario.workload, cost, scenario.num_gpus, Policy.of_planner(name))
        deployment = planned.deploy(frozenset(scenario.workload.names), _cluster(planned, scenario))
        plan_s = time.perf_counter() - start
        fixed = (
            Policy(
                name,
                planned.policy.dispatcher,
                planned.policy.dispatcher_config,
                plan=deployment.phases[0].plan,
            )
            if len(deployment.phases) == 1
            else planned.policy
        )
        timings = {}
        for mode, steps in (("closed-form", args.steps), ("events", 20)):
            # events mode is the slow, event-by-event pipeline: 20 steps are enough to compare timelines
            start = time.perf_counter()
            result = Simulator(
                scenario.workload, cost, scenario.num_gpus, fixed, SimConfig(steps=steps, pipeline=mode)
            ).run()
            timings[mode] = (time.perf_counter() - start, result.steps["step_time_s"].tolist())
        same = bool(np.allclose(timings["closed-form"][1][:20], timings["events"][1], rtol=1e-12, atol=0))
        report["runs"].append(
            {
                "policy": name,
                "plan": deployment.label,
                "planning_s": round(plan_s, 2),
                "simulate_s": round(timings["closed-form"][0], 2),
                "steps": args.steps,
                "events_mode_s_per_step": round(timings["events"][0] / 20, 4),
                "closed_form_s_per_step": round(timings["closed-form"][0] / args.steps, 4),
                "same_timeline_first_20_steps": same,
            }
        )
        print(json.dumps(report["runs"][-1]))
    out = Path(__file__).parent / "results" / "sim_speed.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


def _cluster(sim: Simulator, scenario):
    from lobra.sim.cluster import Cluster

    return Cluster(sim.cost.gpu, scenario.num_gpus)


if __name__ == "__main__":
    main()
