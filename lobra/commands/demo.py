"""`lobra demo` (what `make demo` runs): the main job on the embedded default scenario.

It compares the paper's baselines, its ablations, full LobRA and ours on `paper-7b` by simulation, and writes the
table (CSV, JSON) and a bar chart under --out; then it prints the cost model's memory table for the same setting.
"""

from __future__ import annotations

import argparse

from lobra.commands._common import add_sim_steps


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="out", help="output folder (default out/)")
    add_sim_steps(p, "policy")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from lobra.cli import main

    steps = [
        ["compare", "--scenario", "paper-7b", "--steps", str(args.steps), "--out", args.out],
        [
            "costmodel",
            "max-tokens",
            "--model",
            "llama2-7b",
            "--gpu",
            "a100-40gb",
            "--num-tasks",
            "6",
            "--max-gpus",
            "16",
        ],
    ]
    for argv in steps:
        print(f"\n$ lobra {' '.join(argv)}", flush=True)
        rc = main(argv)
        if rc:
            return rc
    return 0
