"""`lobra demo`: the main job on the embedded default scenario (for now: the cost model at work)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the main job on the embedded default scenario, outputs under --out")
    p.add_argument("--out", default="out", help="output folder (default out/)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from lobra.cli import main

    out = Path(args.out)
    profile = (
        Path(__file__).resolve().parents[2] / "costmodel" / "profiles" / "llama2_7b_a100_40gb_layer_time.csv"
    )
    steps = [
        [
            "costmodel",
            "fit",
            "--profile",
            str(profile),
            "--out",
            str(out / "fit_a100.json"),
            "--plot",
            str(out / "fit_a100.png"),
        ],
        ["costmodel", "check", "--profile", str(profile)],
        [
            "costmodel",
            "max-tokens",
            "--model",
            "llama2-7b",
            "--gpu",
            "a100-40gb",
            "--tasks",
            "6",
            "--max-gpus",
            "16",
        ],
    ]
    for argv in steps:
        print(f"\n$ lobra {' '.join(argv)}")
        rc = main(argv)
        if rc:
            return rc
    return 0
