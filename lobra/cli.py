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


EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command Ctrl-C ended


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args) or 0
    except KeyboardInterrupt:
        # Outputs are written whole (staged, then moved in) or not at all, so an interrupt leaves the old ones.
        sys.stderr.write("\nlobra: interrupted\n")
        return EXIT_INTERRUPTED
    except (ValueError, OSError) as err:
        # Every user-facing error of the product is a ValueError subclass naming the problem.
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        sys.stderr.write(f"lobra: error: {message}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
