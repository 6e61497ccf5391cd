"""Helpers shared by the subcommands: JSON and table output; atomic file writes (executor.records, light)."""

from __future__ import annotations

import json
import sys

import pandas as pd


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


def print_table(df: pd.DataFrame, floatfmt: str = "{:.4g}") -> None:
    print(df.to_string(index=False, float_format=lambda x: floatfmt.format(x)))
