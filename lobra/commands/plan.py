"""`lobra plan`: a deployment plan for a scenario, its expected step time and its gap to the lower bound."""

from __future__ import annotations

import argparse
from contextlib import contextmanager

from lobra.commands._common import (
    add_json,
    add_planner_flag,
    add_seed,
    add_workers,
    print_json,
    warn_clock_stopped,
)
from lobra.commands.scenarios import add_scenario_arguments, scenario_from_args
from lobra.costmodel import CostModel
from lobra.costmodel.memory import CHECKPOINTING
from lobra.costmodel.specs.gpus import GPUSpec
from lobra.policies.dispatchers import DispatcherConfig
from lobra.policies.planners import PLANNERS, PlanResult, get_planner
from lobra.policies.planners.base import SAMPLED_DISPATCH


def add_cost_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        help="layer-time profile CSV of this model, or an analytical calibration JSON (`lobra costmodel fit "
        "--analytical`) of any model, instead of the pair's default",
    )
    parser.add_argument(
        "--checkpointing",
        choices=CHECKPOINTING,
        default="needed",
        help="which replicas the planners may give activation checkpointing (<tp,pp,ckpt>): needed (default; only "
        "when no config holds the longest sequences without it), any, or off",
    )


def cost_from_args(args, scenario) -> CostModel:
    return CostModel.build(
        scenario.model,
        scenario.gpu,
        profile=getattr(args, "profile", None),
        checkpointing=getattr(args, "checkpointing", "needed"),
    )


def add_planner_arguments(parser: argparse.ArgumentParser) -> None:
    add_planner_flag(parser)
    parser.add_argument("--sample-steps", type=int, default=8, help="steps sampled to plan on (default 8)")
    add_workers(parser, "processes scoring plans")
    add_seed(parser, "the sampled steps")


def planner_options(args) -> dict:
    opts = {"sample_steps": args.sample_steps, "seed": args.seed}
    if args.workers is not None:
        opts["workers"] = args.workers
    return opts


def register(p: argparse.ArgumentParser) -> None:
    add_scenario_arguments(p, positional=False)
    add_planner_arguments(p)
    # The settings of the dispatch the plan is chosen for (lobra-plus scores plans by dispatching with them).
    DispatcherConfig.add_arguments(
        p, only=("packing", "bucketing", "num_buckets", "time_limit_s", "node_limit", "beyond_capacity")
    )
    add_cost_arguments(p)
    p.add_argument(
        "--check-estimate",
        action="store_true",
        help="for a planner that scores plans by a surrogate (lobra), also dispatch its sampled steps on the chosen"
        " plan as they will run, and report both (slower: seconds per step with balanced-ilp)",
    )
    add_json(p, "the plan and its estimates")
    p.set_defaults(func=cmd_plan)


def describe(result: PlanResult, gpu: GPUSpec | None = None) -> str:
    layout = f" in {gpu.node_layout(result.num_gpus)}" if gpu else ""
    return (
        f"plan ({result.planner}, {result.num_gpus} GPUs{layout}): {result.plan_str}\n"
        f"  expected step time      {result.step_time_s:.3f} s (by {result.estimate})\n"
        f"  GPU-seconds per step    {result.gpu_seconds_per_step:.1f}\n"
        f"  lower bound             {result.lower_bound_gpu_seconds:.1f} GPU-s "
        f"(plan is {100 * result.gap_to_lower_bound:+.1f}%)\n"
        f"  planning time           {result.planning_time_s:.2f} s ({result.plans_considered} plans considered)\n"
        f"  dispatcher              {result.dispatcher}"
        + (
            f"\n  cut                     {result.cut_pct:.2f}% of the sampled tokens are beyond the plan's largest"
            f" replica ({result.dispatcher_config.beyond_capacity})"
            if result.cut_pct
            else ""
        )
        + (
            f"\n  note                    {result.unproven} plan programme(s) stopped at a limit: scored by a"
            " feasible dispatch instead"
            if result.unproven
            else ""
        )
    )


@contextmanager
def planning_progress(planner, desc: str, disable: bool = False):
    """A progress bar over the plans the planner scores (its total grows as the search widens), with the time
    left; shown only once scoring has taken a second, so quick plans print nothing."""
    from tqdm import tqdm

    with tqdm(desc=desc, unit="plan", disable=disable, delay=1.0, leave=False) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        planner.progress = progress
        try:
            yield
        finally:
            planner.progress = None


def cmd_plan(args) -> int:
    scenario = scenario_from_args(args)
    planned = DispatcherConfig.from_args(args, PLANNERS.get(args.planner).dispatcher_config)
    planner = get_planner(args.planner, dispatcher_config=planned, **planner_options(args))
    cost = cost_from_args(args, scenario)
    with planning_progress(planner, f"plan {scenario.name}", disable=args.json):
        result = planner.plan(scenario.workload, cost, scenario.num_gpus)
    warn_clock_stopped(result.clock_stopped)
    dispatched = None
    if args.check_estimate and result.estimate != SAMPLED_DISPATCH:  # a surrogate: and what dispatching gives
        dispatched = planner.dispatched_step_time(result, scenario.workload, cost)
    if args.json:
        d = result.to_dict() | ({} if dispatched is None else {"dispatched_step_time_s": dispatched})
        print_json({k: d[k] for k in ("plan", "step_time_s", "gpu_seconds_per_step", "planning_time_s")} | d)
    else:
        print(describe(result, cost.gpu))
        if dispatched is not None:
            print(
                f"  sampled steps dispatched {dispatched:.3f} s ({100 * (result.step_time_s / dispatched - 1):+.1f}%"
                f" by the surrogate): what the simulation of {result.dispatcher} should give"
            )
    return 0
