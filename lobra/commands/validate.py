"""`lobra validate`: the executor and the simulator on the same plans and sampled steps; how far apart they are."""

from __future__ import annotations

import argparse
import os

import pandas as pd

from lobra.calibration.validate_config import (
    DEFAULT_MAX_RANKS,
    DEFAULT_OUT,
    DEFAULT_PLANS,
    DEFAULT_REPEATS,
    DEFAULT_SCENARIO,
    DEFAULT_STEPS,
    DEFAULT_WARMUP,
    ValidateConfig,
    parse_plans,
)
from lobra.commands._common import add_json, print_json, print_table


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--scenario", default=DEFAULT_SCENARIO, help=f"a CPU scenario (default {DEFAULT_SCENARIO})"
    )
    p.add_argument(
        "--plans", help=f"plans separated by ';' (default: {'; '.join(DEFAULT_PLANS)})", default=None
    )
    p.add_argument(
        "--steps", type=int, default=DEFAULT_STEPS, help=f"steps per plan (default {DEFAULT_STEPS})"
    )
    p.add_argument(
        "--warmup",
        type=int,
        default=DEFAULT_WARMUP,
        help=f"first steps of each real run left out of the metrics (default {DEFAULT_WARMUP})",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the sampler (both runs), data and LoRA init (default 0)"
    )
    p.add_argument(
        "--max-ranks",
        type=int,
        default=DEFAULT_MAX_RANKS,
        help=f"most ranks a plan may use (default {DEFAULT_MAX_RANKS})",
    )
    p.add_argument("--dispatcher", default="balanced", help="dispatch policy of both runs (default balanced)")
    p.add_argument(
        "--reuse-calibration",
        action="store_true",
        help="reuse OUT/calibration, else the shipped one (default: measure it now, interleaved with the runs)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=DEFAULT_REPEATS,
        help=f"real runs of each plan, in rounds; a step's real time is their median (default {DEFAULT_REPEATS})",
    )
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument(
        "--allow-busy",
        action="store_true",
        help="run even when other work keeps this machine's CPUs busy (its timings then say little)",
    )
    add_json(p)
    p.set_defaults(func=cmd_validate)


BUSY_SHARE = 0.5  # load per core above which other work distorts the timings a validation compares


def check_idle(allow_busy: bool) -> None:
    """Refuse to start on a busy machine: the executor's timings would measure the other work, not the model."""
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > BUSY_SHARE * cores and not allow_busy:
        raise ValueError(
            f"this machine is busy (1-minute load {load:.1f} on {cores} cores): other work would distort the"
            " real timings validate compares; wait for it to end, or pass --allow-busy"
        )


def busy_plans(per_plan: list[dict], cores: int) -> list[str]:
    """Plans whose runs shared the CPUs with other work: a load above their own ranks' by half the cores."""
    return [
        f"{r['plan']} (load {r['load_avg_1m']:.1f}, {r['num_ranks']} ranks of its own, {cores} cores)"
        for r in per_plan
        if r.get("load_avg_1m") is not None
        and r["load_avg_1m"] > min(r["num_ranks"], cores) + BUSY_SHARE * cores
    ]


def cmd_validate(args) -> int:
    from lobra.calibration.validate import validate

    plans = parse_plans(args.plans) if args.plans is not None else DEFAULT_PLANS
    cfg = ValidateConfig(
        scenario=args.scenario,
        plans=plans,
        steps=args.steps,
        warmup=args.warmup,
        seed=args.seed,
        max_ranks=args.max_ranks,
        dispatcher=args.dispatcher,
        out=args.out,
        calibrate=not args.reuse_calibration,
        repeats=args.repeats,
    )
    check_idle(args.allow_busy)
    result = validate(cfg, progress=not args.json)
    paths = result.write(cfg.out_dir)
    summary = result.to_dict()
    if args.json:
        print_json({k: v for k, v in summary.items() if k != "pairs"})
        return 0
    table = pd.DataFrame(summary["per_plan"]).rename(
        columns={
            "steps_measured": "steps",
            "real_step_s": "real_s",
            "sim_step_s": "sim_s",
            "error_pct": "err_%",
            "mape_pct": "MAPE_%",
            "p95_abs_pct_error": "p95_%",
            "gpu_seconds_error_pct": "gpu_s_err_%",
            "dispatch_agreement": "same_dispatch",
            "real_spread_pct": "spread_%",
            "load_avg_1m": "load",
        }
    )
    print(
        f"{cfg.scenario}: {len(table)} plans, {cfg.steps} steps, {cfg.repeats} real run(s) of each; calibration "
        f"{summary['calibration']['origin']} ({summary['calibration']['profile']})"
    )
    print_table(table.drop(columns=["wall_s"]), floatfmt="{:.3g}")
    tau = summary["kendall_tau"]
    print(
        f"step time: MAPE {summary['mape_step_time']:.1f}%, p95 |error| {summary['p95_abs_pct_error']:.1f}% over "
        f"{summary['step_pairs']} step pairs (the first {cfg.warmup} step(s) of each real run skipped as warm-up)"
    )
    print(
        f"GPU-seconds error {summary['gpu_seconds_error_pct']:+.1f}%; plan ranking Kendall tau "
        + ("n/a (one plan)" if tau is None else f"{tau:.2f}")
    )
    noise = summary["noise"]
    if noise["single_run_vs_median_pct"] is not None:
        print(
            f"run-to-run noise: a single real run's step is {noise['single_run_vs_median_pct']:.1f}% from the median "
            f"of the {noise['repeats']} runs on average; the simulator against single runs: MAPE "
            f"{noise['single_run_mape_pct']:.1f}%"
        )
    busy = busy_plans(summary["per_plan"], os.cpu_count() or 1)
    if busy:
        print(
            f"warning: other work shared the CPUs during {'; '.join(busy)}: their errors are partly that load"
        )
    print(f"wrote {', '.join(str(p) for p in paths)} and the runs under {cfg.out_dir / 'runs'}")
    return 0
