"""`lobra simulate`: the simulator from the command line."""

from __future__ import annotations

import argparse

from lobra.commands._common import (
    add_json,
    add_planner_flag,
    add_seed,
    print_json,
    warn_clock_stopped,
)
from lobra.commands.plan import add_cost_arguments, cost_from_args
from lobra.commands.scenarios import add_scenario_arguments, scenario_from_args
from lobra.costmodel import CostModel, parse_plan
from lobra.io import check_writable, staged_dir
from lobra.policies.dispatchers import DispatcherConfig, dispatch_from_args
from lobra.policies.planners import PLANNERS
from lobra.sim import Failure, Policy, SimConfig, SimError, Simulator
from lobra.sim.config import TRACE_EVENTS
from lobra.sim.whatif import fixed_workload
from lobra.traces import Workload


def register(p: argparse.ArgumentParser) -> None:
    add_scenario_arguments(p, positional=False)
    add_cost_arguments(p)
    add_planner_flag(p, "; not with --plan")
    p.add_argument(
        "--plan", help="a fixed deployment plan instead of a planner, e.g. '<1,1>x6 <2,1>x1 <8,1>x1'"
    )
    p.add_argument(
        "--workload", help="what-if data: fixed:LEN (every sequence LEN tokens; needs --global-batch)"
    )
    p.add_argument("--global-batch", type=int, help="sequences per step of the fixed workload")
    DispatcherConfig.add_arguments(p, dispatcher="the planner's; with --plan balanced; with --mbs fixed-mbs")
    p.add_argument(
        "--steps",
        type=int,
        help="steps to simulate (default: a whole run, every task to its end; what-if: 1)",
    )
    add_seed(p, "the step sampler and of the noise")
    p.add_argument(
        "--jitter", type=float, default=0.0, help="sigma of lognormal noise on op times (default 0)"
    )
    p.add_argument("--straggler-prob", type=float, default=0.0, help="chance per step a replica runs slow")
    p.add_argument("--reconfig-s", type=float, default=30.0, help="cost of changing the plan, s (default 30)")
    p.add_argument(
        "--fail",
        action="append",
        default=[],
        metavar="TIME:GPU",
        help="GPU fails at TIME seconds (repeatable)",
    )
    p.add_argument(
        "--trace-steps",
        type=int,
        help="record only the first N steps in trace.json (default: every step; 0: none)",
    )
    p.add_argument(
        "--trace-events",
        type=int,
        default=TRACE_EVENTS,
        help=f"stop adding steps to trace.json once it holds this many events (default {TRACE_EVENTS:,})",
    )
    p.add_argument("--out", help="write records, summary and trace here")
    add_json(p, "the summary")
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args) -> int:
    failures = _failures(args.fail)
    if args.out:
        check_writable(args.out)  # before the work, not after it
    workload, cost, num_gpus, name, steps = _simulated(args)
    policy = _policy(args)
    sim = SimConfig(
        steps=steps,
        seed=args.seed,
        jitter=args.jitter,
        straggler_prob=args.straggler_prob,
        reconfig_s=args.reconfig_s,
        failures=failures,
        trace_steps=args.trace_steps if args.out else 0,  # no --out: no trace.json to record for
        trace_events=args.trace_events,
        progress=not args.json,
    )
    result = Simulator(workload, cost, num_gpus, policy, sim).run()
    warn_clock_stopped(result.summary["clock_stopped_programmes"])
    if args.out:
        with staged_dir(args.out) as stage:  # the run's files replace the old ones together, or none do
            result.write(stage)
    if args.json:
        print_json(result.summary)
        return 0
    print(f"{name}: {result.summary['steps']} steps on {num_gpus} x {cost.gpu.name}, policy {policy.name}")
    for key in SUMMARY_KEYS:
        value = result.summary[key]
        print(f"  {key:22s} {value:.4g}" if isinstance(value, float) else f"  {key:22s} {value}")
    if len(result.events) > 1:  # re-plans (tenants came or went, GPUs failed): every plan, when and why
        print("  plans over the run:")
        for e in result.events.itertuples():
            print(f"    {e.time_s:9.1f} s  {e.kind:11s} {e.detail}")
    if args.out:
        print(f"wrote records, summary.json and trace.json under {args.out}")
    return 0


SUMMARY_KEYS = (
    "plan",
    "step_time_s",
    "gpu_seconds_per_step",
    "total_time_s",
    "tokens_per_s",
    "padding_ratio",
    "idle_ratio",
    "failed_attempts",
    "reconfigurations",
)


def _failures(texts: list[str]) -> tuple[Failure, ...]:
    failures = []
    for text in texts:
        try:
            t, g = text.split(":")
            time_s, gpu = float(t), int(g)
        except ValueError:
            raise SimError(f"--fail must be TIME:GPU (seconds, then a GPU id), got {text!r}") from None
        try:
            failures.append(Failure(time_s, gpu))
        except SimError as err:
            raise SimError(f"--fail {text}: {err}") from None
    return tuple(failures)


def _simulated(args) -> tuple[Workload, CostModel, int, str, int | None]:
    """The workload, cost model, GPU count, name and steps: a scenario's, or what-if fixed-length data."""
    if args.workload:
        if not args.plan or not args.model or not args.gpu:
            raise SimError("--workload fixed:LEN needs --plan, --model and --gpu")
        plan = parse_plan(args.plan)
        steps = args.steps or 1
        workload = fixed_workload(args.workload, args.global_batch, steps)
        cost = CostModel.build(args.model, args.gpu, profile=args.profile, checkpointing=args.checkpointing)
        return workload, cost, args.num_gpus or plan.num_gpus, args.workload, steps
    scenario = scenario_from_args(args)
    cost = cost_from_args(args, scenario)
    return scenario.workload, cost, scenario.num_gpus, scenario.name, args.steps


def _policy(args) -> Policy:
    """A fixed --plan with the dispatcher the flags choose, or a planner with the dispatch it plans for (its own
    settings, changed by any dispatch flags given)."""
    if args.plan:
        dispatcher, config = dispatch_from_args(args)
        return Policy("plan", dispatcher, config, plan=parse_plan(args.plan))
    planner = PLANNERS.get(args.planner)
    dispatcher, config = dispatch_from_args(args, planner.dispatcher, planner.dispatcher_config)
    return Policy.of_planner(planner.name, dispatcher=dispatcher, dispatcher_config=config)
