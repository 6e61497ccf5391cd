"""`lobra tasks check|fields`: validate a task file and show what it resolves to; the fields a task takes."""

from __future__ import annotations

import argparse

import pandas as pd

from lobra.commands._common import add_json, print_json, print_table
from lobra.commands.scenarios import _task_row
from lobra.traces.errors import TraceError
from lobra.traces.scenario import resolve_scenario
from lobra.traces.tasks import FIELD_DOCS, SYNTHETIC_DOCS, Workload, load_workload


def register(parser: argparse.ArgumentParser) -> None:
    cmds = parser.add_subparsers(dest="tasks_command", metavar="ACTION", required=True)

    p = cmds.add_parser(
        "check",
        help="validate a task file and print each task as resolved (trace, lengths, steps, LoRA settings)",
        description="Validate a task file and print each task as resolved. With --model, --gpu and --num-gpus,"
        " also whether the cluster's largest replica holds every task's longest sequence. Fields: `lobra tasks"
        " fields`; the format: docs/tasks.md.",
    )
    p.add_argument("file", metavar="FILE", help="a tasks YAML file")
    p.add_argument("--model", help="model name or config .json (with --gpu and --num-gpus)")
    p.add_argument("--gpu", help="GPU name or spec .json")
    p.add_argument("--num-gpus", type=int, help="GPU count")
    p.add_argument("--json", action="store_true", help="print the resolved tasks as JSON")
    p.set_defaults(func=cmd_check)

    p = cmds.add_parser("fields", help="every field of a task and of a synthetic trace, with defaults")
    add_json(p)
    p.set_defaults(func=cmd_fields)


def cmd_check(args) -> int:
    hardware = {"--model": args.model, "--gpu": args.gpu, "--num-gpus": args.num_gpus}
    given = [flag for flag, value in hardware.items() if value is not None]
    if given and len(given) < len(hardware):
        missing = [flag for flag in hardware if flag not in given]
        raise TraceError(
            f"{', '.join(given)} needs {' and '.join(missing)} too (the cluster to check against)"
        )
    workload = load_workload(args.file)
    rows = [_task_row(t) for t in workload]
    if given:
        capacity = _capacity(resolve_scenario(None, args.file, args.model, args.gpu, args.num_gpus), workload)
        rows = [row | capacity[row["task"]] for row in rows]
    if args.json:
        print_json({"file": args.file, "description": workload.description, "tasks": rows})
        return 0
    print(
        f"{args.file}: {len(workload)} tasks, {workload.sequences_per_step} sequences per step"
        + (f" ({workload.description})" if workload.description else "")
    )
    df = pd.DataFrame(rows).drop(columns=["targets", "p50", "skewness", "kurtosis"], errors="ignore")
    print_table(df.round(1), floatfmt="{:.6g}")
    beyond = [r["task"] for r in rows if r.get("held") is False]
    if beyond:
        print(
            f"beyond capacity: {', '.join(beyond)} (plans refuse them unless --beyond-capacity truncate|drop,"
            " more GPUs, or a lower max_len)"
        )
    return 0


def _capacity(scenario, workload: Workload) -> dict[str, dict]:
    """Each task's longest sequence against the largest replica any config fitting the cluster holds."""
    from lobra.costmodel import CostModel
    from lobra.policies.planners.base import workload_memory

    base = CostModel.build(scenario.model, scenario.gpu)
    cost = base.with_memory(workload_memory(workload, base.memory))
    configs = [c for c, n in cost.feasible_configs(scenario.num_gpus).items() if n]
    largest = max((cost.max_tokens(c) for c in configs), default=0)
    return {
        t: {"longest": n, "largest_replica_tokens": largest, "held": n <= largest}
        for t, n in workload.longest.items()
    }


def cmd_fields(args) -> int:
    rows = [{"field": k, "default": d, "meaning": m} for k, (d, m) in FIELD_DOCS.items()]
    synthetic = [{"field": k, "default": d, "meaning": m} for k, (d, m) in SYNTHETIC_DOCS.items()]
    if args.json:
        print_json({"task": rows, "synthetic": synthetic})
        return 0
    print("A task file: a mapping with `tasks:` (a list of tasks) and an optional `description:`. A task:")
    _print_fields(rows)
    print("\ntrace: {synthetic: {...}} draws lengths to these moments:")
    _print_fields(synthetic)
    return 0


def _print_fields(rows: list[dict]) -> None:
    for r in rows:
        print(f"  {r['field']:<18} {r['default']:<10} {r['meaning']}")
