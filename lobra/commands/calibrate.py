"""`lobra calibrate --device cpu|cuda`: time one decoder layer on this machine and write a profile and its fit."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate", help="time one decoder layer fwd+bwd with LoRA here; write profile CSV + fit"
    )
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--model", default="tiny", help="model name or config.json whose layer shape is timed")
    p.add_argument("--out", default="out/calibration", help="output folder (default out/calibration)")
    p.add_argument("--seq-lens", help="comma-separated sequence lengths (default: a grid for the device)")
    p.add_argument("--mbs", help="comma-separated micro-batch sizes (default: 1,2,4,8)")
    p.add_argument(
        "--repeats", type=int, default=5, help="timed repetitions per point; the fastest is kept (default 5)"
    )
    p.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args) -> int:
    from costmodel.calibrate import CalibrationGrid, calibrate

    grid = CalibrationGrid.for_device(args.device, args.seq_lens, args.mbs, args.repeats)
    result = calibrate(args.model, args.device, grid, args.out)
    print(
        f"profiled {len(result.profile)} points in {result.elapsed_s:.1f} s; fit MAPE "
        + ", ".join(f"tp={tp}: {m:.2f}%" for tp, m in result.fit.mape_pct.items())
    )
    print(f"wrote {result.profile_path}, {result.fit_path} and {result.spec_path}")
    return 0
