"""Helpers shared by the subcommands: JSON and table output, and the options every command spells the same way.

A flag that means one thing means it everywhere, with one default: --planner (lobra-plus: its estimate is what the
simulation gives), --seed (0), --workers (up to 4 processes), --json, the solver limits. Commands add them through
these functions, not by hand."""

from __future__ import annotations

import json
import os
import sys

import pandas as pd

from lobra.policies.solver import DEFAULT_NODE_LIMIT, DEFAULT_TIME_LIMIT_S

DEFAULT_PLANNER = "lobra-plus"
DEFAULT_WORKERS = min(4, os.cpu_count() or 1)  # PlannerConfig.workers, without importing the planners
DEFAULT_SIM_STEPS = 10  # simulated steps per run where a command compares runs (compare, sweep, demo)


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


def print_table(df: pd.DataFrame, floatfmt: str = "{:.4g}") -> None:
    print(df.to_string(index=False, float_format=lambda x: floatfmt.format(x)))


def add_solver_arguments(p) -> None:
    """--ilp-time-limit and --ilp-node-limit, for commands that build their planners and dispatchers from them."""
    p.add_argument(
        "--ilp-time-limit",
        type=float,
        default=DEFAULT_TIME_LIMIT_S,
        help=f"safety-net time limit per integer programme, s (default {DEFAULT_TIME_LIMIT_S:g}; the node limit, "
        f"{DEFAULT_NODE_LIMIT} nodes, decides)",
    )
    p.add_argument(
        "--ilp-node-limit",
        type=int,
        default=DEFAULT_NODE_LIMIT,
        help=f"branch-and-bound nodes per integer programme (default {DEFAULT_NODE_LIMIT})",
    )


def add_planner_flag(p, help_extra: str = "") -> None:
    from lobra.policies.planners import PLANNERS

    p.add_argument(
        "--planner",
        default=DEFAULT_PLANNER,
        help=f"one of {', '.join(PLANNERS.names())}{help_extra} (default {DEFAULT_PLANNER})",
    )


def add_sim_steps(p, per: str) -> None:
    """--steps of a command that compares simulated runs: the same default wherever it means that."""
    p.add_argument(
        "--steps",
        type=int,
        default=DEFAULT_SIM_STEPS,
        help=f"simulated steps per {per} (default {DEFAULT_SIM_STEPS})",
    )


def add_seed(p, what: str = "the step sampler") -> None:
    p.add_argument("--seed", type=int, default=0, help=f"seed of {what} (default 0)")


def add_workers(p, what: str = "processes scoring plans and running simulations") -> None:
    p.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help=f"{what} (default {DEFAULT_WORKERS})")


def add_json(p, what: str = "the result") -> None:
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON on stdout instead of a table")


def warn_clock_stopped(count: int) -> None:
    """On stderr, when the wall-clock safety net rather than the node limit stopped some integer programmes."""
    if count:
        sys.stderr.write(
            f"warning: {count} integer programme(s) stopped at the --ilp-time-limit safety net, not the node limit:"
            " on a machine under another load the result may differ; raise --ilp-time-limit or lower"
            " --ilp-node-limit\n"
        )
