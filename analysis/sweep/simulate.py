"""One run of a sweep: plan it (or take its fixed plan), then simulate `steps` steps on that plan; one tidy row."""

from __future__ import annotations

import time
from dataclasses import replace

from lobra.analysis.sweep.spec import RunSpec
from lobra.analysis.sweep.workloads import cost_of, workload_of
from lobra.costmodel import parse_plan
from lobra.policies.dispatchers import DispatcherConfig
from lobra.policies.planners import (
    PLANNERS,
    PlannerConfig,
    PlanResult,
    WorkloadSample,
    get_planner,
    lower_bound_cut_pct,
    lower_bound_gpu_seconds,
)
from lobra.policies.planners.base import workload_memory
from lobra.sim import Policy, SimConfig, Simulator
from lobra.traces import Workload


def plan_run(spec: RunSpec) -> PlanResult:
    workload = workload_of(spec.scenario, spec.tasks, spec.num_tasks)
    if spec.plan is not None:
        return fixed_plan(spec, workload)
    # One process per run: the planner's own pool would only oversubscribe the cores.
    limits = {"time_limit_s": spec.ilp_time_limit_s, "node_limit": spec.ilp_node_limit}
    planner = get_planner(spec.planner, seed=spec.seed, workers=1, **limits)
    return planner.plan(workload, cost_of(spec.model, spec.gpu), spec.num_gpus)


def fixed_plan(spec: RunSpec, workload: Workload) -> PlanResult:
    """A given plan as a PlanResult: no planning, the planner's dispatcher, the workload's lower bound."""
    cls = PLANNERS.get(spec.planner)
    cost = cost_of(spec.model, spec.gpu)
    cost = cost.with_memory(workload_memory(workload, cost.memory))
    config = PlannerConfig(seed=spec.seed)
    sample = WorkloadSample.draw(workload, config.sample_steps, config.seed)
    return PlanResult(
        planner=spec.planner,
        plan=parse_plan(spec.plan),
        step_time_s=float("nan"),
        num_gpus=spec.num_gpus,
        planning_time_s=0.0,
        lower_bound_gpu_seconds=lower_bound_gpu_seconds(sample, cost, spec.num_gpus),
        lower_bound_cut_pct=lower_bound_cut_pct(sample, cost, spec.num_gpus),
        dispatcher=cls.dispatcher,
        dispatcher_config=cls.dispatcher_config,
        plans_considered=0,
    )


def display_name(spec: RunSpec) -> str:
    return spec.policy or (spec.planner if spec.dispatcher is None else f"{spec.planner}+{spec.dispatcher}")


def policy_of(spec: RunSpec, plan: PlanResult, static: bool) -> Policy:
    base = plan.dispatcher_config if spec.dispatcher is None else DispatcherConfig()
    changes = {"time_limit_s": spec.ilp_time_limit_s, "node_limit": spec.ilp_node_limit}
    changes["beyond_capacity"] = spec.beyond_capacity
    for key in ("bucketing", "packing", "num_buckets"):
        if getattr(spec, key) is not None:
            changes[key] = getattr(spec, key)
    config = replace(base, **changes)
    dispatcher = spec.dispatcher or plan.dispatcher
    name = display_name(spec)
    if static and plan.plan is not None:
        return Policy(name, dispatcher, config, plan=plan.plan)
    # Task-Sequential (a plan per task) and workloads whose task set changes: the simulator plans as it goes.
    return Policy.of_planner(
        spec.planner,
        name=name,
        dispatcher=dispatcher,
        dispatcher_config=config,
        seed=spec.seed,
        time_limit_s=spec.ilp_time_limit_s,
        node_limit=spec.ilp_node_limit,
        workers=1,
    )


def simulate_run(spec: RunSpec, plan: PlanResult) -> dict:
    start = time.perf_counter()
    workload = workload_of(spec.scenario, spec.tasks, spec.num_tasks)
    # The plan holds for the whole run only if every task is there from the start and none finishes.
    static = all(t.spec.arrival_s == 0 and t.num_steps >= spec.steps for t in workload)
    policy = policy_of(spec, plan, static)
    config = SimConfig(steps=spec.steps, seed=spec.seed)
    result = Simulator(workload, cost_of(spec.model, spec.gpu), spec.num_gpus, policy, config).run()
    s = result.summary
    ok = result.steps[result.steps["status"] == "ok"]
    dispatch = policy.dispatcher_config
    gpu_s = s["gpu_seconds_per_step"]
    # At equal work: a run that cuts tokens pays for them at its own rate, the bound for those it cuts itself.
    work = gpu_s / (1 - s["cut_pct"] / 100)
    bound = plan.lower_bound_gpu_seconds / (1 - plan.lower_bound_cut_pct / 100)
    return {
        "policy": policy.name,
        "scenario": spec.scenario or spec.tasks,
        "model": spec.model,
        "gpu": spec.gpu,
        "num_gpus": spec.num_gpus,
        "num_tasks": len(workload),
        "planner": spec.planner,
        "dispatcher": policy.dispatcher,
        "bucketing": dispatch.bucketing,
        "num_buckets": dispatch.num_buckets,
        "packing": dispatch.packing,
        "steps": s["steps"],
        "seed": spec.seed,
        "plan": s["plan"],
        "planned_step_time_s": plan.step_time_s,
        "step_time_s": s["step_time_s"],
        "gpu_seconds_per_step": gpu_s,
        "lower_bound_gpu_seconds": plan.lower_bound_gpu_seconds,
        "lower_bound_cut_pct": plan.lower_bound_cut_pct,
        "equal_work_gpu_seconds": work,
        "above_lower_bound_pct": 100 * (work / bound - 1),
        "padding_ratio": s["padding_ratio"],
        "tokens_per_step": float(ok["tokens"].mean()),
        "truncated_pct": s["truncated_pct"],
        "dropped_pct": s["dropped_pct"],
        "idle_ratio": s["idle_ratio"],
        "tokens_per_s": s["tokens_per_s"],
        "plans_considered": plan.plans_considered,
        "planning_time_s": plan.planning_time_s,
        "sim_wall_s": time.perf_counter() - start,
    }
