"""`lobra ...`: one argparse tree; each subcommand lives in lobra/commands/<name>.py and exposes register(parser),
which fills in the parser this module creates for it.

Only the command being run is imported: its module imports what it needs (pandas, the policies, the simulator),
and `lobra --help` or `lobra plan ...` should not pay for every other command's. The others get a parser with
their one-line help alone, enough for `lobra --help` to list them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from lobra import __version__

# Modules under lobra/commands and their one-line help, in the order `lobra --help` lists them.
COMMANDS = {
    "demo": "compare policies on the default scenario (paper-7b); outputs under --out",
    "scenarios": "list and inspect the named scenarios and task files",
    "tasks": "check a task file (what it resolves to); the fields a task takes",
    "traces": "list, inspect and build sequence-length traces",
    "plan": "plan a deployment for a scenario (or a tasks file) and report its cost",
    "simulate": "simulate a scenario (or a what-if plan on fixed-length data)",
    "compare": "baselines, ablations, LobRA and ours on one scenario, by simulation",
    "costmodel": "fit, query and check the cost model",
    "calibrate": "time one decoder layer (or the executor's micro-batches) here; write profile CSV + fit",
    "bench": "benchmark the dispatchers and the planners",
    "execute": "train every task's LoRA adapter on a deployment plan with torch.distributed",
    "sweep": "simulate a grid of settings (--vary KEY=V1,V2) in parallel; one row per run, Parquet and CSV",
    "figures": "regenerate the paper-style figures from simulations (PNG, PDF and CSV per figure)",
    "validate": "run plans on the executor here and in the simulator; step-time error and plan ranking",
    "report": "write a Markdown report: our figures beside the paper's numbers, where they agree and where not",
}


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (and exit status 2), not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def build_parser(command: str | None = None) -> ArgumentParser:
    """The whole tree, or (given a command) that command's subtree beside the others' one-line stubs."""
    parser = ArgumentParser(
        prog="lobra",
        description="Multi-tenant LoRA fine-tuning over heterogeneous lengths: "
        "cost model, planners, simulator and executor.",
    )
    parser.add_argument("--version", action="version", version=f"lobra {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help in COMMANDS.items():
        p = sub.add_parser(name, help=help)
        if command is None or name == command:
            importlib.import_module(f"lobra.commands.{name}").register(p)
    return parser


def _command(argv: list[str]) -> str:
    """The subcommand argv names (its first word that is one), or "" for none."""
    return next((a for a in argv if a in COMMANDS), "")


EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command Ctrl-C ended


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser(_command(argv)).parse_args(argv)
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
