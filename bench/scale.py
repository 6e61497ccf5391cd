"""Scale: tenant sets drawn from the paper's 12 tasks, the `scale-1k` scenario's task file, and the growth of
planning and simulation time (and peak memory) with GPUs and tenants. Writes bench/results/scale.csv and
bench/results/scale.png (log-log).

Tenants are drawn with replacement (seeded) from paper-70b's 12 tasks, each keeping its task's length moments and
global batch size, with its own trace seed; 20,000 samples a trace (paper-70b's have 100,000) keep 256 tenants'
traces in memory. Every point runs in its own process (its peak RSS is its own): `lobra plan` (lobra-plus) then
`lobra simulate --plan` of that plan for --steps steps, llama3-70b on h100-80gb.

    .venv/bin/python bench/scale.py --write-scenario          # traces/scenarios/scale-1k.yaml (64 tenants)
    .venv/bin/python bench/scale.py [--gpus 16,64,256,1024,4096] [--tenants 4,16,64,256] [--steps 20]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "traces" / "scenarios"
OUT = REPO / "bench" / "results"
SAMPLES = 20_000


def tenants(n: int, seed: int = 0) -> list[dict]:
    """n tasks drawn with replacement from paper-70b's 12, renamed <task>-<k>, each with its own trace seed."""
    base = yaml.safe_load((SCENARIOS / "paper-70b.yaml").read_text())["tasks"]
    picks = np.random.default_rng(seed).integers(0, len(base), n)
    out = []
    for k, i in enumerate(picks):
        task = dict(base[i])
        synthetic = dict(task["trace"]["synthetic"], samples=SAMPLES, seed=1000 + k)
        out.append(task | {"name": f"{task['name']}-{k}", "trace": {"synthetic": synthetic}})
    return out


def write_scenario() -> Path:
    path = SCENARIOS / "scale-1k.yaml"
    header = (
        "# Task set of the `scale-1k` scenario (llama3-70b on 1,024 h100-80gb: traces/scenario.py), written by\n"
        "# `bench/scale.py --write-scenario`: 64 tenants drawn (seed 0) with replacement from paper-70b's 12 tasks,\n"
        f"# each with its task's length moments and global batch size and a trace of its own ({SAMPLES:,} samples).\n"
    )
    body = {
        "description": "thousand-GPU what-if: 64 tenants drawn from the paper's 12 tasks, llama3-70b, 1,024 GPUs",
        "tasks": tenants(64),
    }
    path.write_text(header + yaml.safe_dump(body, sort_keys=False, width=120))
    return path


def point(gpus: int, num_tenants: int, steps: int) -> dict:
    """One (GPUs, tenants) point in a child process: plan and simulate times, plan, peak RSS."""
    code = f"import sys; sys.path.insert(0, {str(REPO / 'bench')!r}); import scale, json; "
    code += f"print(json.dumps(scale.run_point({gpus}, {num_tenants}, {steps})))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode:
        return {"gpus": gpus, "tenants": num_tenants, "error": proc.stderr.strip().splitlines()[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_point(gpus: int, num_tenants: int, steps: int) -> dict:
    from lobra.costmodel import CostModel
    from lobra.policies.planners import get_planner
    from lobra.sim import Policy, SimConfig, Simulator
    from lobra.traces import parse_workload

    start = time.perf_counter()
    workload = parse_workload({"tasks": tenants(num_tenants)})
    load_s = time.perf_counter() - start
    cost = CostModel.build("llama3-70b", "h100-80gb")
    planner = get_planner("lobra-plus")
    start = time.perf_counter()
    result = planner.plan(workload, cost, gpus)
    plan_s = time.perf_counter() - start
    policy = Policy("p", planner.dispatcher, planner.dispatcher_config, plan=result.plan)
    start = time.perf_counter()
    sim = Simulator(workload, cost, gpus, policy, SimConfig(steps=steps)).run()
    sim_s = time.perf_counter() - start
    return {
        "gpus": gpus,
        "tenants": num_tenants,
        "steps": steps,
        "load_s": round(load_s, 2),
        "plan_s": round(plan_s, 2),
        "sim_s": round(sim_s, 2),
        "sim_s_per_step": round(sim_s / steps, 4),
        "plans_considered": result.plans_considered,
        "plan": str(result.plan),
        "gpu_seconds_per_step": round(sim.summary["gpu_seconds_per_step"], 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def plot(df, path: Path) -> None:
    import matplotlib.pyplot as plt
    from lobra.analysis.style import WIDTH_IN, style

    with style():
        fig, axes = plt.subplots(1, 2, figsize=(WIDTH_IN, 3.0))
        for ax, (x, other) in zip(axes, (("gpus", "tenants"), ("tenants", "gpus")), strict=True):
            for i, (value, g) in enumerate(df.groupby(other)):
                g = g.sort_values(x)
                ax.plot(g[x], g["plan_s"], "o-", color=f"C{i}", label=f"{value} {other}")
                ax.plot(g[x], g["sim_s_per_step"], "s--", color=f"C{i}")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel(f"number of {x}")
            ax.set_ylabel("seconds")
            ax.legend(fontsize=6)
        fig.suptitle(
            "Scale: llama3-70b on h100-80gb\nsolid: lobra-plus planning; dashed: one simulated step of its plan"
        )
        fig.tight_layout()
        fig.savefig(path, dpi=150)


def main() -> int:
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-scenario", action="store_true", help="write traces/scenarios/scale-1k.yaml")
    parser.add_argument("--gpus", default="16,64,256,1024", help="GPU counts (default 16,64,256,1024)")
    parser.add_argument("--tenants", default="4,16,64", help="tenant counts (default 4,16,64)")
    parser.add_argument("--steps", type=int, default=20, help="simulated steps per point (default 20)")
    parser.add_argument("--plot-only", action="store_true", help="redraw scale.png from scale.csv")
    args = parser.parse_args()
    if args.write_scenario:
        print(f"wrote {write_scenario()}")
        return 0
    if args.plot_only:
        plot(pd.read_csv(OUT / "scale.csv").dropna(subset=["plan_s"]), OUT / "scale.png")
        return 0
    rows = []
    for gpus in map(int, args.gpus.split(",")):
        for n in map(int, args.tenants.split(",")):
            rows.append(point(gpus, n, args.steps))
            print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    OUT.mkdir(exist_ok=True)
    df.to_csv(OUT / "scale.csv", index=False)
    if "plan_s" in df:
        plot(df.dropna(subset=["plan_s"]), OUT / "scale.png")
    print(f"wrote {OUT / 'scale.csv'} and {OUT / 'scale.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
