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
