"""`lobra scenarios list|show`: the named scenarios (task set + model + GPUs) and their tasks.

add_scenario_arguments / scenario_from_args give every command the same way to pick a workload: a scenario
name (optionally --num-gpus) or --tasks FILE with --model, --gpu and --num-gpus.
"""

from __future__ import annotations

import argparse

import pandas as pd

from lobra.commands._common import add_json, print_json, print_table
from lobra.traces.scenario import SCENARIOS, Scenario, load_scenario, resolve_scenario
from lobra.traces.synthetic import SyntheticSpec
from lobra.traces.tasks import Task


def add_scenario_arguments(parser: argparse.ArgumentParser, positional: bool = True) -> None:
    if positional:
        parser.add_argument("scenario", nargs="?", metavar="SCENARIO", help=f"one of {', '.join(SCENARIOS)}")
    else:
        parser.add_argument("--scenario", help=f"one of {', '.join(SCENARIOS)}")
    parser.add_argument(
        "--tasks",
        metavar="FILE",
        help="a tasks YAML file instead of a scenario (needs --model, --gpu and --num-gpus)",
    )
    parser.add_argument("--model", help="model name or config .json (with --tasks)")
    parser.add_argument("--gpu", help="GPU name or spec .json (with --tasks)")
    parser.add_argument("--num-gpus", type=int, help="GPU count (overrides the scenario's)")


def scenario_from_args(args) -> Scenario:
    return resolve_scenario(args.scenario, args.tasks, args.model, args.gpu, args.num_gpus)


def register(parser: argparse.ArgumentParser) -> None:
    cmds = parser.add_subparsers(dest="scenarios_command", metavar="ACTION", required=True)

    p = cmds.add_parser(
        "list", help="name, model, GPU, GPU count, tasks and sequences per step of each scenario"
    )
    add_json(p)
    p.set_defaults(func=cmd_list)

    p = cmds.add_parser(
        "show", help="per-task settings and length statistics of a scenario (or a tasks file)"
    )
    add_scenario_arguments(p)
    add_json(p)
    p.set_defaults(func=cmd_show)


def _summary(sc: Scenario) -> dict:
    return {
        "name": sc.name,
        "model": sc.model,
        "gpu": sc.gpu,
        "num_gpus": sc.num_gpus,
        "tasks": len(sc.workload),
        "sequences_per_step": sc.workload.sequences_per_step,
        "description": sc.description,
    }


def cmd_list(args) -> int:
    rows = [_summary(load_scenario(name)) for name in SCENARIOS]
    if args.json:
        print_json(rows)
    else:
        print_table(pd.DataFrame(rows).drop(columns="description"))
    return 0


def _trace_label(task: Task) -> str:
    ref = task.spec.trace
    if isinstance(ref, SyntheticSpec):
        return f"synthetic(mean={ref.mean:g},skew={ref.skewness:g},kurt={ref.kurtosis:g})"
    return ref


def _task_row(task: Task) -> dict:
    s, spec = task.stats, task.spec
    return {
        "task": task.name,
        "trace": _trace_label(task),
        "samples": len(task.trace),
        "global_batch_size": spec.global_batch_size,
        "max_len": spec.max_len,
        "overflow": spec.overflow,
        "overflowing": task.num_overflow,
        **s.summary(),
        "steps": task.num_steps,
        "steps_per_epoch": task.steps_per_epoch,
        "rank": spec.rank,
        "alpha": spec.alpha,
        "targets": ",".join(spec.targets),
        "arrival_s": spec.arrival_s,
    }


def cmd_show(args) -> int:
    sc = scenario_from_args(args)
    rows = [_task_row(t) for t in sc.workload]
    if args.json:
        print_json({**_summary(sc), "task_list": rows})
        return 0
    print(f"{sc.name}: {sc.description}")
    print(
        f"model {sc.model} on {sc.num_gpus} x {sc.gpu}; {len(sc.workload)} tasks, "
        f"{sc.workload.sequences_per_step} sequences per step (lengths after each task's max_len policy)"
    )
    print_table(pd.DataFrame(rows).drop(columns=["targets"]).round(3), floatfmt="{:.6g}")
    return 0
