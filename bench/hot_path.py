"""Benchmark: the simulator's hot path against an earlier revision, in one run on this machine (ratios first:
the machine is shared and its speed drifts). Writes bench/results/hot_path.json.

Measured, for this tree and for --base (default: the revision before the hot-path work), each in its own process
with the lobra namespace laid out from that tree (bench/gpu/run.sh's way), alternating the trees --rounds times:
- the `balanced` dispatcher's median time per step on paper-7b (the paper's plan <1,1>x6 <2,1>x1 <8,1>x1, 200
  sampled steps, padded and packed), and a digest of every dispatch (the same digest: the same results);
- 1,000 simulated steps of paper-70b on lobra-plus's plan (planned once, outside the timing);
- `lobra --help`.
Also, for this tree only: the mean makespan gap of `balanced` to `balanced-ilp` on 10 paper-7b steps.

    .venv/bin/python bench/hot_path.py [--base REV] [--rounds 2] [--sim-steps 1000] [--out FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results" / "hot_path.json"
BASE = "430b044"  # main before the hot-path work


def _paper_7b():
    """paper-7b's cost model (its adapters in memory), the paper's plan for it, and a sampler of its steps."""
    from lobra.costmodel import CostModel, parse_plan
    from lobra.policies.planners.base import workload_memory
    from lobra.traces import StepSampler, load_scenario

    sc = load_scenario("paper-7b")
    cost = CostModel.build(sc.model, sc.gpu)
    cost = cost.with_memory(workload_memory(sc.workload, cost.memory))
    return cost, parse_plan("<1,1>x6 <2,1>x1 <8,1>x1"), StepSampler(sc.workload, seed=0)


def measure(sim_steps: int) -> dict:
    """Run inside one tree's layout: the three timings and the dispatch digest."""
    from lobra.costmodel import CostModel
    from lobra.policies.dispatchers import DispatcherConfig, get_dispatcher
    from lobra.policies.planners import get_planner
    from lobra.policies.types import StepItem
    from lobra.sim import Policy, SimConfig, Simulator
    from lobra.traces import Task, Workload, load_scenario

    out: dict = {}
    cost, plan, sampler = _paper_7b()
    steps = [[StepItem(t, n) for t, n in sampler.next_step()] for _ in range(200)]
    digest = hashlib.sha256()
    for packing in (False, True):
        d = get_dispatcher("balanced", packing=packing)
        d.dispatch(steps[0], plan, cost)  # warm the cost tables
        times = []
        for items in steps:
            start = time.perf_counter()
            result = d.dispatch(items, plan, cost)
            times.append(time.perf_counter() - start)
            digest.update(repr(result.micro_batches).encode())
        out[f"balanced_{'packed' if packing else 'padded'}_median_ms"] = round(
            1e3 * statistics.median(times), 3
        )
    out["dispatch_digest"] = digest.hexdigest()[:16]

    sc = load_scenario("paper-70b")
    workload = Workload(
        tuple(Task(replace(t.spec, steps=sim_steps, epochs=None), t.trace) for t in sc.workload)
    )
    cost = CostModel.build(sc.model, sc.gpu)
    planner = get_planner("lobra-plus")
    result = planner.plan(workload, cost, sc.num_gpus)
    policy = Policy("p", planner.dispatcher, DispatcherConfig(packing=True), plan=result.plan)
    start = time.perf_counter()
    sim = Simulator(workload, cost, sc.num_gpus, policy, SimConfig(steps=sim_steps)).run()
    out["paper70b_plan"] = str(result.plan)
    out[f"paper70b_{sim_steps}_steps_s"] = round(time.perf_counter() - start, 2)
    out["paper70b_gpu_seconds_per_step"] = sim.summary["gpu_seconds_per_step"]

    lobra = [sys.executable, "-c", "import sys; from lobra.cli import main; sys.exit(main(['--help']))"]
    start = time.perf_counter()
    subprocess.run(lobra, capture_output=True, check=True)
    out["help_s"] = round(time.perf_counter() - start, 3)
    return out


def ilp_gap() -> float:
    """Mean makespan of balanced over balanced-ilp (node limit 1000) on 10 paper-7b steps, minus one, in %."""
    from lobra.policies.dispatchers import get_dispatcher
    from lobra.policies.evaluate import estimate_step
    from lobra.policies.types import StepItem

    cost, plan, sampler = _paper_7b()
    gaps = []
    for _ in range(10):
        items = [StepItem(t, n) for t, n in sampler.next_step()]
        fast = estimate_step(get_dispatcher("balanced").dispatch(items, plan, cost), cost).makespan_s
        exact = estimate_step(get_dispatcher("balanced-ilp").dispatch(items, plan, cost), cost).makespan_s
        gaps.append(fast / exact - 1)
    return round(100 * statistics.mean(gaps), 3)


def layout(tree: Path, site: Path) -> Path:
    """The lobra namespace of a source tree as links, as that tree's pyproject.toml maps its folders."""
    import tomllib

    folders = tomllib.loads((tree / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for package, folder in sorted(folders.items()):  # "lobra" before "lobra.costmodel"
        target = site.joinpath(*package.split("."))
        if package == "lobra":  # the CLI package: its files, beside which the other folders are linked
            target.mkdir(parents=True)
            for f in (tree / folder).iterdir():
                (target / f.name).symlink_to(f)
        else:
            target.symlink_to(tree / folder)
    return site


def run_in(site: Path, sim_steps: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = f"import json, sys; sys.path.insert(0, {str(REPO / 'bench')!r}); import hot_path; "
    code += f"print(json.dumps(hot_path.measure({sim_steps})))"
    # not from the repository root, whose lobra/ (the CLI alone) would shadow the laid-out namespace
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=site
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def round_ratios(runs: dict[str, list[dict]], keys: list[str]) -> dict[str, float]:
    """Per key, the median over rounds of base / this (round k of each tree)."""
    return {
        k: round(statistics.median(b[k] / t[k] for b, t in zip(runs["base"], runs["this"], strict=True)), 2)
        for k in keys
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=BASE, help=f"the revision to compare against (default {BASE})")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each tree (default 2)")
    parser.add_argument(
        "--sim-steps", type=int, default=1000, help="paper-70b steps simulated (default 1000)"
    )
    parser.add_argument("--out", type=Path, default=OUT, help=f"the report (default {OUT.relative_to(REPO)})")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lobra-hot-") as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "-q", "--detach", str(base), args.base], check=True
        )
        try:
            sites = {
                "base": layout(base, Path(tmp) / "site-base"),
                "this": layout(REPO, Path(tmp) / "site-this"),
            }
            runs: dict[str, list[dict]] = {"base": [], "this": []}
            for k in range(args.rounds):
                for name in ("base", "this") if k % 2 == 0 else ("this", "base"):
                    runs[name].append(run_in(sites[name], args.sim_steps))
                    print(name, runs[name][-1], flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(base)], check=True)
    best = {
        name: {k: (min(r[k] for r in rs) if isinstance(rs[0][k], float) else rs[0][k]) for k in rs[0]}
        for name, rs in runs.items()
    }
    timed = [
        k for k in best["this"] if isinstance(best["this"][k], float) and k != "paper70b_gpu_seconds_per_step"
    ]
    ratios = {k: round(best["base"][k] / best["this"][k], 2) for k in timed}
    report = {
        "base": args.base,
        "rounds": args.rounds,
        "cores": os.cpu_count(),
        "load_1m_at_end": round(os.getloadavg()[0], 2),
        "best_of_rounds": best,
        "speedup_base_over_this": ratios,
        # The VM's speed swings within minutes: the two trees' runs of one round are adjacent in time, so the
        # median of the rounds' ratios is steadier than the ratio of bests.
        "speedup_median_of_rounds": round_ratios(runs, timed),
        "same_dispatch": best["base"]["dispatch_digest"] == best["this"]["dispatch_digest"],
        "same_simulation": best["base"]["paper70b_gpu_seconds_per_step"]
        == best["this"]["paper70b_gpu_seconds_per_step"],
        "balanced_vs_ilp_gap_pct": ilp_gap(),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
