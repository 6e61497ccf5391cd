"""`lobra bench dispatch|plan`: time the dispatchers and the planners; results under bench/results/."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from lobra.commands._common import add_json, print_json, print_table
from lobra.commands.plan import add_cost_arguments, cost_from_args
from lobra.commands.scenarios import add_scenario_arguments, scenario_from_args
from lobra.costmodel import parse_plan
from lobra.io import atomic_write
from lobra.policies.dispatchers import DISPATCHERS, get_dispatcher
from lobra.policies.evaluate import estimate_step
from lobra.policies.planners import get_planner
from lobra.policies.planners.base import workload_memory
from lobra.policies.registry import PolicyError
from lobra.policies.types import StepItem
from lobra.traces import StepSampler, load_scenario

RESULTS = Path("bench/results")


def register(parser: argparse.ArgumentParser) -> None:
    cmds = parser.add_subparsers(dest="bench_command", metavar="WHAT", required=True)

    p = cmds.add_parser(
        "dispatch", help="time every dispatcher on sampled steps of a plan; gap to balanced-ilp"
    )
    add_scenario_arguments(p, positional=False)
    add_cost_arguments(p)
    p.add_argument("--steps", type=int, default=200, help="sampled steps (default 200)")
    p.add_argument("--plan", help="deployment plan (default: the scenario's lobra plan)")
    p.add_argument(
        "--time-limit", type=float, default=3.0, help="balanced-ilp time limit per step, s (default 3)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the step sampler (default 0)")
    p.add_argument("--out", default=str(RESULTS), help="results folder (default bench/results)")
    add_json(p)
    p.set_defaults(func=cmd_dispatch)

    p = cmds.add_parser("plan", help="planning time and plan quality over cluster sizes")
    add_scenario_arguments(p, positional=False)
    add_cost_arguments(p)
    p.add_argument("--gpus", default="16,32,64,128,256", help="comma-separated GPU counts")
    p.add_argument("--planners", default="lobra,lobra-plus", help="comma-separated planners")
    p.add_argument("--workers", type=int, help="processes scoring plans (default: up to 4)")
    p.add_argument("--out", default=str(RESULTS), help="results folder (default bench/results)")
    add_json(p)
    p.set_defaults(func=cmd_plan)


def _positive(value: int, flag: str) -> int:
    if value < 1:
        raise PolicyError(f"{flag} must be a positive integer, got {value}")
    return value


def cmd_dispatch(args) -> int:
    steps = _positive(args.steps, "--steps")
    scenario = scenario_from_args(args)
    cost = cost_from_args(args, scenario)
    if args.plan:
        plan = parse_plan(args.plan)
    else:
        plan = get_planner("lobra").plan(scenario.workload, cost, scenario.num_gpus).plan
    cost = cost.with_memory(workload_memory(scenario.workload, cost.memory))
    sampler = StepSampler(scenario.workload, seed=args.seed)
    # fixed-mbs answers what-if questions about a given micro-batch size: nothing to benchmark against
    names = [n for n in DISPATCHERS.names() if not DISPATCHERS.get(n).takes_mbs]
    dispatchers = {n: get_dispatcher(n, time_limit_s=args.time_limit) for n in names}
    rows = []
    for step in tqdm(range(steps), desc=f"dispatch {scenario.name} on {plan}"):
        items = [StepItem(t, n) for t, n in sampler.next_step(active=scenario.workload.names)]
        for name, d in dispatchers.items():
            start = time.perf_counter()
            out = d.dispatch(items, plan, cost)
            ms = (time.perf_counter() - start) * 1e3
            rows.append(
                {
                    "step": step,
                    "dispatcher": name,
                    "ms": ms,
                    "makespan_s": estimate_step(out, cost).makespan_s,
                }
            )
    df = pd.DataFrame(rows)
    ref = df[df["dispatcher"] == "balanced-ilp"].set_index("step")["makespan_s"]
    df["gap_pct"] = 100 * (df["makespan_s"] / df["step"].map(ref) - 1)
    summary = [
        {
            "dispatcher": name,
            "median_ms": float(g["ms"].median()),
            "mean_gap_pct": float(g["gap_pct"].mean()),
            "max_gap_pct": float(g["gap_pct"].max()),
            "mean_makespan_s": float(g["makespan_s"].mean()),
        }
        for name, g in df.groupby("dispatcher", sort=False)
    ]
    stem = Path(args.out) / f"dispatch_{scenario.name}"
    atomic_write(stem.with_suffix(".csv"), lambda p: df.to_csv(p, index=False))
    meta = {"scenario": scenario.name, "plan": str(plan), "steps": steps, "ilp_time_limit_s": args.time_limit}
    atomic_write(
        stem.with_suffix(".json"), lambda p: p.write_text(json.dumps(meta | {"summary": summary}, indent=2))
    )
    if args.json:
        print_json(summary)
    else:
        print(f"{scenario.name}: plan {plan}, {steps} steps; gap = makespan vs balanced-ilp")
        print_table(pd.DataFrame(summary))
        print(f"wrote {stem}.csv and {stem}.json")
    return 0


def cmd_plan(args) -> int:
    try:
        gpus = [_positive(int(g), "--gpus") for g in args.gpus.split(",")]
    except ValueError:
        raise PolicyError(f"--gpus must be comma-separated integers, got {args.gpus!r}") from None
    planners = args.planners.split(",")
    for name in planners:
        get_planner(name)  # unknown names fail before any work
    base = scenario_from_args(args)
    rows = []
    for n in tqdm(gpus, desc="plan"):
        scenario = load_scenario(base.name, n) if not args.tasks else base
        cost = cost_from_args(args, scenario)
        for name in planners:
            opts = {} if args.workers is None else {"workers": args.workers}
            result = get_planner(name, **opts).plan(scenario.workload, cost, n)
            rows.append({"num_gpus": n, **result.to_dict()})
    df = pd.DataFrame(rows)
    stem = Path(args.out) / f"plan_{base.name}"
    atomic_write(stem.with_suffix(".csv"), lambda p: df.to_csv(p, index=False))
    if args.json:
        print_json(rows)
    else:
        print_table(
            df[
                [
                    "num_gpus",
                    "planner",
                    "plan",
                    "planning_time_s",
                    "gpu_seconds_per_step",
                    "gap_to_lower_bound_pct",
                ]
            ]
        )
        print(f"wrote {stem}.csv")
    return 0
