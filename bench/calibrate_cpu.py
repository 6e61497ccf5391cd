"""Benchmark of `lobra calibrate --device cpu`: wall time of the default grid, and how well its fit predicts grid
points it did not measure (each measured fresh afterwards). Writes bench/results/calibrate_cpu.json.

    .venv/bin/python bench/calibrate_cpu.py
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from lobra.calibration.layer import CalibrationGrid, LayerBench, calibrate
from lobra.costmodel.specs import load_model_spec

from lobra.io import write_json

UNMEASURED = [(320, 3), (640, 3), (1280, 2), (1792, 1), (896, 6)]


def main() -> None:
    grid = CalibrationGrid.for_device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = calibrate("tiny", "cpu", grid, tmp)
        wall_s = time.perf_counter() - start
    bench = LayerBench(load_model_spec("tiny"), "cpu", grid.cpu_threads)
    points = []
    for seq_len, mbs in UNMEASURED:
        measured = bench.time_ms(mbs, seq_len, grid.repeats)
        predicted = result.fit.predict_ms(1, mbs, seq_len)
        points.append(
            {
                "seq_len": seq_len,
                "mbs": mbs,
                "measured_ms": round(measured, 3),
                "predicted_ms": round(predicted, 3),
                "error_pct": round(100 * (predicted - measured) / measured, 2),
            }
        )
    report = {
        "calibrate_wall_s": round(wall_s, 1),
        "grid_points": len(result.profile),
        "fit_in_sample_mape_pct": round(result.fit.mape_pct[1], 2),
        "unmeasured_points": points,
    }
    write_json(Path(__file__).parent / "results" / "calibrate_cpu.json", report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
