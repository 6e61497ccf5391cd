"""Benchmark: the wall time of every command of the README's tour, run as written, one after another on this
machine, in a scratch folder that links the repository's examples/ and costmodel/ (the paths the tour names).
Writes bench/results/tour_timings.csv (command, exit status, seconds, 1-minute load before it) so that the
README's timings are measured ones.

The two `lobra validate` commands run first, each once the machine is idle (validate refuses a busy one); commands
the tour gives only as a pattern (`--input rows.csv`) get a small rows.csv of their own.

    .venv/bin/python bench/tour_timings.py [--skip REGEX]
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results" / "tour_timings.csv"


def tour_commands() -> list[str]:
    """The `lobra ...` lines of the README's tour block, continuation lines joined, comments dropped."""
    text = (REPO / "README.md").read_text()
    block = text.split("## A short tour of the CLI", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    block = block.replace("\\\n", " ")
    commands = []
    for line in block.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line.startswith("lobra "):
            commands.append(re.sub(r"\s+", " ", line))
    return commands


def wait_idle(limit_s: float = 600) -> None:
    start = time.time()
    while os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1) and time.time() - start < limit_s:
        time.sleep(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip", help="leave out the commands this regular expression matches")
    parser.add_argument(
        "--only",
        help="run only the commands this regular expression matches; their rows replace those in the CSV",
    )
    parser.add_argument(
        "--keep", type=Path, help="copy the scratch folder's out/ here at the end (its figures)"
    )
    args = parser.parse_args()
    commands = tour_commands()
    if args.skip:
        commands = [c for c in commands if not re.search(args.skip, c)]
    if args.only:
        commands = [c for c in commands if re.search(args.only, c)]
    commands.sort(key=lambda c: not c.startswith("lobra validate"))
    lobra = str(Path(sys.executable).parent / "lobra")
    rows = []
    with tempfile.TemporaryDirectory(prefix="lobra-tour-") as tmp:
        for name in ("examples", "costmodel"):
            (Path(tmp) / name).symlink_to(REPO / name)
        rows_csv = Path(tmp) / "rows.csv"
        rows_csv.write_text("tp,seq_len,mbs\n1,1024,1\n2,4096,2\n")
        for command in commands:
            if command.startswith("lobra validate"):
                wait_idle()
            argv = [lobra, *shlex.split(command)[1:]]
            argv = [str(rows_csv) if a == "rows.csv" else a for a in argv]
            load = os.getloadavg()[0]
            start = time.perf_counter()
            proc = subprocess.run(argv, cwd=tmp, capture_output=True, text=True)
            wall = time.perf_counter() - start
            rows.append(
                {"command": command, "rc": proc.returncode, "wall_s": round(wall, 1), "load_1m": load}
            )
            print(f"{wall:8.1f} s  rc={proc.returncode}  {command}", flush=True)
            if proc.returncode:
                print("    " + (proc.stderr.strip().splitlines() or [""])[-1], flush=True)
        if args.keep:
            shutil.copytree(Path(tmp) / "out", args.keep, dirs_exist_ok=True)
    OUT.parent.mkdir(exist_ok=True)
    table = pd.DataFrame(rows)
    if args.only and OUT.is_file():  # the other commands' rows as they were measured
        old = pd.read_csv(OUT)
        table = pd.concat([old[~old["command"].isin(table["command"])], table]).set_index("command")
        table = table.loc[[c for c in tour_commands() if c in table.index]].reset_index()
    table.to_csv(OUT, index=False)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
