"""Sweeps: a grid of simulations run in parallel processes, one tidy row per run.

A run is one workload (a scenario or a tasks file, optionally cut to or grown to K tasks) on one cluster under one
policy: the planner plans once, then `Simulator(...).run()` simulates `steps` steps on that plan. Runs that share a
planning problem (same workload, hardware, planner, seed) share one plan: the ablations and the bucket study
re-dispatch the LobRA plan instead of planning it again, and their rows carry the same planning time.

`expand_grid(base, [("num-gpus", "16,32"), ("planner", "lobra,task-fused")])` is the cartesian product in the order
given (the last key varies fastest); `run_sweep(specs, workers)` returns the rows in that order whatever the number
of processes, and the simulated numbers depend only on the seed (planning times are wall-clock, and integer
programmes that hit their time limit may stop at a load-dependent incumbent).

The parts: spec.py (a run, the --vary grid), workloads.py (task sets and cost models, cached), simulate.py (one
run: plan, then simulate) and pool.py (every run of a sweep, in one pool of processes).
"""

from lobra.analysis.sweep.pool import BACKENDS, WALL_CLOCK_COLUMNS, check_backend, progress_total, run_sweep
from lobra.analysis.sweep.simulate import display_name, fixed_plan, plan_run, policy_of, simulate_run
from lobra.analysis.sweep.spec import VARY_KEYS, RunSpec, SweepError, expand_grid, parse_vary
from lobra.analysis.sweep.workloads import TASK_POOLS, cost_of, select_tasks, workload_of
from lobra.policies.bucketing import DEFAULT_NUM_BUCKETS

__all__ = [
    "BACKENDS",
    "DEFAULT_NUM_BUCKETS",
    "TASK_POOLS",
    "VARY_KEYS",
    "WALL_CLOCK_COLUMNS",
    "check_backend",
    "RunSpec",
    "SweepError",
    "cost_of",
    "display_name",
    "expand_grid",
    "fixed_plan",
    "parse_vary",
    "plan_run",
    "policy_of",
    "progress_total",
    "run_sweep",
    "select_tasks",
    "simulate_run",
    "workload_of",
]
