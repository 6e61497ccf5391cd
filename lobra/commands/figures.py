"""`lobra figures`: the paper-style figure set, regenerated from simulations (PNG, PDF and CSV per figure)."""

from __future__ import annotations

import argparse
import time

from tqdm import tqdm

from lobra.analysis.figures import FigureSettings, make_all, progress_steps
from lobra.analysis.sweep import SweepError
from lobra.commands._common import add_seed, add_solver_arguments, add_workers
from lobra.io import check_writable


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise SweepError(f"{flag} must be comma-separated positive integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise SweepError(f"{flag} must be comma-separated positive integers, got {text!r}")
    return values


def register(p: argparse.ArgumentParser) -> None:
    p.description = (
        "By default the paper's settings (paper-7b, paper-70b, paper-70b-4task); with --tasks, "
        "every study on your own workload."
    )
    p.add_argument("--out", default="out/figures", help="output folder (default out/figures)")
    add_seed(p, "every run's step sampler")
    p.add_argument(
        "--steps",
        type=int,
        default=4,
        help="simulated steps per point (default 4, fewer than compare's: the figures simulate ~100 points)",
    )
    add_workers(p, "parallel processes")
    add_solver_arguments(p)
    p.add_argument(
        "--validation",
        default="out/validate",
        help="folder of the last `lobra validate` (pairs.csv) for the sim-vs-real figure (default out/validate)",
    )
    g = p.add_argument_group("your own workload instead of the paper's scenarios")
    g.add_argument("--tasks", metavar="FILE", help="a tasks YAML file (needs --model, --gpu, --num-gpus)")
    g.add_argument("--model", help="model of --tasks (name or config .json)")
    g.add_argument("--gpu", help="GPU of --tasks (name or spec .json)")
    g.add_argument("--num-gpus", type=int, help="cluster of the comparison, ablation and task studies")
    g.add_argument(
        "--gpus", default="", help="cluster sizes of the scalability and planning studies, e.g. 2,4,8"
    )
    g.add_argument("--num-tasks", default="", help="task counts of the task study, e.g. 1,2,4")
    g.add_argument("--buckets", default="4,8,16", help="bucket counts of the bucket study (default 4,8,16)")
    p.set_defaults(func=cmd_figures)


def settings_from_args(args) -> FigureSettings:
    common = {"steps": args.steps, "seed": args.seed, "workers": args.workers}
    common["ilp_time_limit_s"], common["ilp_node_limit"] = args.ilp_time_limit, args.ilp_node_limit
    if args.steps < 1:
        raise SweepError(f"--steps must be a positive integer, got {args.steps}")
    if args.tasks is None:
        extra = [f for f in ("model", "gpu", "num_gpus") if getattr(args, f) is not None]
        if extra or args.gpus or args.num_tasks:
            raise SweepError("--model, --gpu, --num-gpus, --gpus and --num-tasks go with --tasks FILE")
        return FigureSettings(**common)
    if None in (args.model, args.gpu, args.num_gpus) or not args.gpus or not args.num_tasks:
        raise SweepError("--tasks needs --model, --gpu, --num-gpus, --gpus and --num-tasks")
    return FigureSettings.for_tasks(
        args.tasks,
        args.model,
        args.gpu,
        args.num_gpus,
        gpus=_ints(args.gpus, "--gpus"),
        num_tasks=_ints(args.num_tasks, "--num-tasks"),
        buckets=_ints(args.buckets, "--buckets"),
        **common,
    )


def cmd_figures(args) -> int:
    start = time.perf_counter()
    settings = settings_from_args(args)
    check_writable(args.out)  # before minutes of simulation
    with tqdm(total=progress_steps(settings), desc="figures") as bar:

        def progress(label: str) -> None:
            bar.set_postfix_str(label[-50:])
            bar.update(1)

        manifest = make_all(args.out, args.seed, progress, settings, args.validation)
    print(f"wrote {', '.join(manifest['figures'])} (PNG, PDF, CSV) and sweep.csv under {args.out}")
    if not manifest["validation"]["found"]:
        print(f"sim_vs_real: {manifest['validation']['note']}")
    print(f"{manifest['runs']} runs; total wall time {time.perf_counter() - start:.1f} s")
    return 0
