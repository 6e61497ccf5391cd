"""Helpers shared by the subcommands: JSON and table output; atomic file writes (executor.records, light)."""

from __future__ import annotations

import json
import sys

import pandas as pd

from lobra.policies.solver import DEFAULT_NODE_LIMIT, DEFAULT_TIME_LIMIT_S


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
