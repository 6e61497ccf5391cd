"""`lobra calibrate --device cpu|cuda`: time the model here and write a profile and its fit.

--target layer (default): one bare decoder layer (calibration/layer.py). --target executor (CPU): whole
micro-batches through the executor's own replica, plus the host effects of R ranks sharing the cores
(calibration/jobs.py); what `lobra validate` compares real runs against.
"""

from __future__ import annotations

import argparse


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to time (default cpu)")
    p.add_argument(
        "--target",
        choices=["layer", "executor"],
        default="layer",
        help="layer: one decoder layer fwd+bwd; executor (cpu): the executor's micro-batches, sync and optimizer",
    )
    p.add_argument("--model", default="tiny", help="model name or config.json whose layer shape is timed")
    p.add_argument(
        "--scenario",
        default="tiny-cpu",
        help="with --target executor: whose tasks' adapters (default tiny-cpu)",
    )
    p.add_argument(
        "--max-ranks",
        type=int,
        default=4,
        help="with --target executor: host effects of 1..N ranks (default 4)",
    )
    p.add_argument("--out", default="out/calibration", help="output folder (default out/calibration)")
    p.add_argument("--seq-lens", help="comma-separated sequence lengths (default: a grid for the device)")
    p.add_argument(
        "--mbs", help="comma-separated micro-batch sizes (default: 1,2,4,8 on cpu, 1,2,4,8,16 on cuda)"
    )
    p.add_argument(
        "--max-tokens",
        type=int,
        help="with --target layer: skip points of more tokens (mbs x seq_len) than this (default: 32768 on cuda,"
        " none on cpu)",
    )
    p.add_argument(
        "--packed",
        action="store_true",
        help="with --target layer: also time packed rows (several sequences in one row, the executor's"
        " block-diagonal mask) against the same sequences padded; written to <stem>_packed.csv",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="timed repetitions per point (default 5); layer keeps the fastest, executor the mean",
    )
    p.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args) -> int:
    from lobra.calibration.layer import CalibrationGrid, calibrate

    if args.target == "executor":
        return _calibrate_executor(args)
    grid = CalibrationGrid.for_device(
        args.device, args.seq_lens, args.mbs, args.repeats, args.max_tokens, args.packed
    )
    result = calibrate(args.model, args.device, grid, args.out)
    print(
        f"profiled {len(result.profile)} points in {result.elapsed_s:.1f} s; fit MAPE "
        + ", ".join(f"tp={tp}: {m:.2f}%" for tp, m in result.fit.mape_pct.items())
    )
    paths = [result.profile_path, result.fit_path, result.spec_path, result.packed_path]
    print("wrote " + ", ".join(str(p) for p in paths if p is not None))
    return 0


def _calibrate_executor(args) -> int:
    from lobra.calibration.jobs import DEFAULT_MBS, DEFAULT_SEQ_LENS, calibrate_executor
    from lobra.calibration.layer import CalibrationGrid
    from lobra.executor.errors import ExecutorError

    if args.device != "cpu":
        raise ExecutorError("--target executor calibrates the CPU executor: use --device cpu")
    parsed = CalibrationGrid.for_device("cpu", args.seq_lens, args.mbs, args.repeats)  # checks the flags
    result = calibrate_executor(
        args.out,
        scenario=args.scenario,
        model=args.model,
        seq_lens=parsed.seq_lens if args.seq_lens else DEFAULT_SEQ_LENS,
        mbs=parsed.mbs if args.mbs else DEFAULT_MBS,
        repeats=args.repeats,
        max_ranks=args.max_ranks,
    )
    host = result.host
    print(
        f"profiled {len(result.profile)} micro-batch shapes in {result.elapsed_s:.1f} s; fit MAPE "
        + ", ".join(f"tp={tp}: {m:.2f}%" for tp, m in result.fit.mape_pct.items())
    )
    for r in host.measured_num_ranks:
        slow = ", ".join(f"{c} x{t[r]:.2f}" for c, t in host.contention.items() if r in t)
        print(
            f"  {r} rank(s) on {host.cores} cores: compute {slow}; "
            f"gradient sync {1e3 * host.sync_s[r]:.1f} ms, optimizer {1e3 * host.optimizer_s[r]:.1f} ms"
        )
    for plan, slow in host.plans.items():
        if len(slow) > 1:  # mixed plans: each config with its own neighbours
            print(f"  {plan}: compute " + ", ".join(f"{c} x{v:.2f}" for c, v in slow.items()))
    if host.first_run_s:
        print(
            "  a micro-batch shape's first run: "
            + ", ".join(f"tp={tp} +{1e3 * v:.1f} ms" for tp, v in host.first_run_s.items())
        )
    for config, weights in host.stage_weights.items():
        print(
            f"  {config} stages over an even share of the whole model: "
            + ", ".join(f"x{w:.2f}" for w in weights)
        )
    print(f"wrote {result.profile_path}, {result.fit_path} and {result.host_path}")
    return 0
