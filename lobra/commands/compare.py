"""`lobra compare`: the paper's baselines, its ablations, LobRA and ours on one scenario, by simulation, beside the
fluid and integer lower bounds (and the exhaustive optimum on small clusters)."""

from __future__ import annotations

import argparse

import pandas as pd
from tqdm import tqdm

from lobra.commands._common import (
    add_json,
    add_seed,
    add_sim_steps,
    add_workers,
    print_json,
    print_table,
)
from lobra.commands.plan import add_cost_arguments, cost_from_args
from lobra.commands.scenarios import add_scenario_arguments, scenario_from_args
from lobra.io import atomic_write, check_writable, staged_dir
from lobra.policies.dispatchers import DispatcherConfig
from lobra.policies.planners.certify import EXHAUSTIVE_MAX_GPUS
from lobra.policies.solver import DEFAULT_NODE_LIMIT, DEFAULT_TIME_LIMIT_S
from lobra.sim import SimError
from lobra.sim.compare import POLICIES, compare, reductions


def register(p: argparse.ArgumentParser) -> None:
    add_scenario_arguments(p, positional=False)
    add_cost_arguments(p)
    add_sim_steps(p, "policy")
    add_seed(p, "the step sampler and the planners' samples")
    DispatcherConfig.add_arguments(
        p,
        only=("time_limit_s", "node_limit", "beyond_capacity"),
        defaults={
            "time_limit_s": DEFAULT_TIME_LIMIT_S,
            "node_limit": DEFAULT_NODE_LIMIT,
        },
    )
    add_workers(p, "processes scoring plans")
    p.add_argument("--out", help="write compare.csv, compare.json and compare.png here")
    add_json(p, "the rows")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args) -> int:
    scenario = scenario_from_args(args)
    if args.steps < 1:
        raise SimError(f"--steps must be a positive integer, got {args.steps}")
    cost = cost_from_args(args, scenario)
    if args.out:
        check_writable(args.out)
    runs = len(POLICIES) + (scenario.num_gpus <= EXHAUSTIVE_MAX_GPUS)  # and the optimum, on a small cluster
    with tqdm(total=runs, desc=f"compare {scenario.name}", disable=args.json) as bar:

        def progress(name: str) -> None:
            bar.set_postfix_str(name)
            bar.update(1)

        rows = compare(
            scenario.workload,
            cost,
            scenario.num_gpus,
            steps=args.steps,
            seed=args.seed,
            ilp_time_limit_s=args.time_limit_s,
            workers=args.workers,
            progress=progress,
            ilp_node_limit=args.node_limit,
            beyond_capacity=args.beyond_capacity or DispatcherConfig.beyond_capacity,
        )
    table = reductions(rows)
    if args.out:
        from lobra.analysis.plots import plot_compare

        df = pd.DataFrame(table)
        title = (
            f"{scenario.name}: {scenario.model} on {scenario.num_gpus} x {scenario.gpu}, {args.steps} steps"
        )
        with staged_dir(args.out) as out:
            atomic_write(out / "compare.csv", lambda p: df.to_csv(p, index=False))
            atomic_write(out / "compare.json", lambda p: df.to_json(p, orient="records", indent=2))
            atomic_write(out / "compare.png", lambda p: plot_compare(table, title, p))
    if args.json:
        print_json([r.to_dict() for r in rows])
        return 0
    df = pd.DataFrame(table)
    df["plan"] = df["plan"].map(lambda p: p if len(p) <= 40 else p[:37] + "...")
    print(
        f"{scenario.name}: {scenario.model} on {scenario.num_gpus} x {scenario.gpu}, {args.steps} simulated steps"
    )
    print_table(
        df.rename(
            columns={
                "vs_task-sequential_pct": "vs_seq_%",
                "vs_task-fused_pct": "vs_fused_%",
                "above_lower_bound_pct": "above_LB_%",
                "above_integer_bound_pct": "above_IB_%",
                "equal_work_gpu_seconds": "equal_work_GPU_s",
            }
        ),
        floatfmt="{:.3g}",
    )
    if args.out:
        print(f"wrote compare.csv, compare.json and compare.png under {args.out}")
    return 0
