"""Benchmark: predict the 13 real A100 step times (Llama-2-7B, 16 GPUs, GBS 64 of 2,048 tokens, homogeneous plans)
from the shipped layer profile and the model spec alone, as `lobra simulate` does. The step times test the model;
nothing is fitted on them. Writes bench/results/step_times.csv and prints the table with its MAPE.

    .venv/bin/python bench/step_times.py [--out bench/results/step_times]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from lobra.costmodel import CostModel, parse_plan
from lobra.costmodel.profile import shipped_path
from lobra.policies.dispatchers import DispatcherConfig
from lobra.sim import Policy, SimConfig, Simulator
from lobra.sim.whatif import fixed_workload

from lobra.io import write_table

MEASURED = shipped_path("llama2_7b_a100_40gb_step_time_2048.csv")


def predict(cost: CostModel, row) -> float:
    plan = parse_plan(f"<{row.tp},{row.pp}>x{row.replicas}")
    mbs = row.global_batch_size // row.replicas // row.micro_batches
    workload = fixed_workload(f"fixed:{row.seq_len}", int(row.global_batch_size), steps=1)
    policy = Policy("plan", "fixed-mbs", DispatcherConfig(mbs=int(mbs)), plan=plan)
    result = Simulator(workload, cost, int(row.num_gpus), policy, SimConfig(steps=1)).run()
    return float(result.steps["step_time_s"].iloc[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results/step_times", help="STEM: writes STEM.csv")
    args = parser.parse_args()
    cost = CostModel.build("llama2-7b", "a100-40gb")
    table = pd.read_csv(MEASURED)
    table["plan"] = [f"<{r.tp},{r.pp}>x{r.replicas}" for r in table.itertuples()]
    table["predicted_s"] = [predict(cost, r) for r in table.itertuples()]
    table["error_pct"] = (table["predicted_s"] / table["step_time_s"] - 1) * 100
    write_table(table, Path(args.out), formats=("csv",))
    print(
        table[["plan", "micro_batches", "step_time_s", "predicted_s", "error_pct"]]
        .round(3)
        .to_string(index=False)
    )
    errors = table["error_pct"].abs()
    print(
        f"MAPE {errors.mean():.2f}%, worst {table['error_pct'].iloc[int(np.argmax(errors))]:+.1f}% "
        f"({table['plan'].iloc[int(np.argmax(errors))]}); wrote {args.out}"
    )


if __name__ == "__main__":
    main()
