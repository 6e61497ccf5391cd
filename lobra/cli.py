"""`lobra ...`: one argparse tree; each subcommand lives in lobra/commands/<name>.py and exposes register()."""

from __future__ import annotations

import argparse
import importlib
import sys

from lobra import __version__

# Modules under lobra/commands, in the order `lobra --help` lists them.
COMMANDS = [
    "demo",
    "scenarios",
    "tasks",
    "traces",
    "plan",
    "simulate",
    "costmodel",
    "calibrate",
    "bench",
    "execute",
    "sweep",
    "figures",
    "validate",
    "report",
]


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (and exit status 2), not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="lobra",
        description="Multi-tenant LoRA fine-tuning over heterogeneous lengths: "
        "cost model, planners, simulator and executor.",
    )
    parser.add_argument("--version", action="version", version=f"lobra {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"lobra.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (ValueError, OSError) as err:
        # Every user-facing error of the product is a ValueError subclass naming the problem.
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        sys.stderr.write(f"lobra: error: {message}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
