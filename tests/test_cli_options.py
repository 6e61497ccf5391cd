"""A flag means one thing in every command: the same default and a help text that states it."""

import argparse

from lobra.policies.solver import DEFAULT_NODE_LIMIT, DEFAULT_TIME_LIMIT_S

from lobra.cli import build_parser
from lobra.commands._common import DEFAULT_PLANNER, DEFAULT_WORKERS

SHARED = {
    "--planner": DEFAULT_PLANNER,
    "--seed": 0,
    "--workers": DEFAULT_WORKERS,
    "--ilp-time-limit": DEFAULT_TIME_LIMIT_S,
    "--ilp-node-limit": DEFAULT_NODE_LIMIT,
}


def _commands(parser: argparse.ArgumentParser, prefix: str = ""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{prefix} {name}".strip())
    yield prefix, parser


def test_the_cli_default_of_workers_is_the_planners():
    from lobra.policies.planners.base import PlannerConfig

    assert DEFAULT_WORKERS == PlannerConfig.workers


def test_shared_flags_have_one_default_and_say_it():
    seen = {flag: [] for flag in SHARED}
    for command, parser in _commands(build_parser()):
        for action in parser._actions:
            if action.help is None and action.option_strings and action.dest != "help":
                raise AssertionError(f"lobra {command} {action.option_strings[0]}: no help text")
            flag = next((f for f in action.option_strings if f in SHARED), None)
            if flag is None or command.startswith("bench"):  # benchmarks choose their own sizes
                continue
            seen[flag].append(command)
            if action.default is not None:
                assert action.default == SHARED[flag], (command, flag, action.default)
                assert "(default" in action.help, (command, flag)
    assert all(seen.values()), seen  # every shared flag is in use somewhere
    assert {"plan", "simulate", "sweep"} <= set(seen["--planner"])


def test_help_imports_only_the_command_it_runs():
    """`lobra --help` lists every command without importing one; `lobra plan` imports plan's module alone."""
    import subprocess
    import sys

    probe = (
        "import sys, contextlib, io\n"
        "from lobra.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    main(sys.argv[1:])\n"
        "mods = [m for m in ('pandas', 'scipy', 'torch', 'matplotlib', 'simpy') if m in sys.modules]\n"
        "cmds = sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('lobra.commands.') and m[15] != '_')\n"
        "print(mods, cmds, 'simulate' in out.getvalue())\n"
    )
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True
    ).stdout.split("\n")[0]
    assert run("--help") == "[] [] True"  # every command listed, nothing heavy imported
    # `lobra tasks fields`: the tasks module and what it imports itself (scenarios), not the planners' or the sim's
    assert run("tasks", "fields").endswith("['scenarios', 'tasks'] False")


def test_the_demo_runs_every_step(cli, tmp_path):
    """`make demo`'s command: each of its steps is a real command line, so a renamed flag breaks it here first."""
    rc, out, err = cli(f"demo --steps 1 --out {tmp_path}")
    assert rc == 0, err
    assert out.count("\n$ lobra ") == 2 and "max tokens per micro-batch" in out
    assert {"compare.csv", "compare.json", "compare.png"} <= {p.name for p in tmp_path.iterdir()}
