"""`lobra sweep`: a grid of simulations (--vary KEY=V1,V2 ...) in parallel processes, one tidy row per run."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tqdm import tqdm

from lobra.analysis.sweep import (
    BACKENDS,
    VARY_KEYS,
    RunSpec,
    SweepError,
    check_backend,
    expand_grid,
    parse_vary,
    progress_total,
    run_sweep,
)
from lobra.commands._common import (
    add_json,
    add_planner_flag,
    add_seed,
    add_sim_steps,
    add_solver_arguments,
    add_workers,
    print_json,
    print_table,
)
from lobra.commands.scenarios import add_scenario_arguments
from lobra.io import write_table

SHOWN = [
    "policy",
    "num_gpus",
    "plan",
    "step_time_s",
    "gpu_seconds_per_step",
    "padding_ratio",
    "planning_time_s",
]


def register(p: argparse.ArgumentParser) -> None:
    add_scenario_arguments(p, positional=False)
    p.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help=f"a grid axis (repeatable; the last varies fastest); keys: {', '.join(VARY_KEYS)}",
    )
    add_planner_flag(p, ", when not varied")
    add_sim_steps(p, "run")
    add_seed(p, "every run's step sampler")
    add_solver_arguments(p)
    add_workers(p, "parallel processes (with --backend ray and no --address: the local Ray's CPUs)")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="local",
        help="local: processes here; ray: Ray tasks, on a local Ray started for the sweep or the cluster at"
        " --address (pip install 'lobra[ray]') (default local)",
    )
    p.add_argument(
        "--address", help="with --backend ray: a running Ray cluster, e.g. ray://head:10001 or auto"
    )
    p.add_argument("--out", default="out/sweep", help="writes sweep.parquet and sweep.csv here")
    add_json(p, "the rows")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args) -> int:
    check_backend(args.backend, args.address)
    vary = [parse_vary(text) for text in args.vary]
    if not vary:
        raise SweepError("give at least one --vary KEY=V1,V2 (e.g. --vary num-gpus=16,32,64)")
    base = RunSpec(
        scenario=args.scenario,
        tasks=args.tasks,
        model=args.model,
        gpu=args.gpu,
        num_gpus=args.num_gpus,
        planner=args.planner,
        steps=args.steps,
        seed=args.seed,
        ilp_time_limit_s=args.ilp_time_limit,
        ilp_node_limit=args.ilp_node_limit,
    )
    specs = expand_grid(base, vary)
    start = time.perf_counter()
    with tqdm(total=progress_total(specs), desc="sweep", disable=args.json) as bar:

        def progress(label: str) -> None:
            bar.set_postfix_str(label[-50:])
            bar.update(1)

        df = run_sweep(specs, args.workers, progress, backend=args.backend, address=args.address)
    out = Path(args.out)
    write_table(df, out / "sweep", formats=("parquet", "csv"))
    if args.json:
        print_json(df.to_dict(orient="records"))
        return 0
    varied = [VARY_KEYS[k][0] for k, _ in vary]
    cols = ["run", *dict.fromkeys(c for c in varied + SHOWN if c in df.columns)]
    print_table(df[cols])
    print(
        f"{len(df)} runs in {time.perf_counter() - start:.1f} s; wrote sweep.parquet and sweep.csv under {out}"
    )
    return 0
