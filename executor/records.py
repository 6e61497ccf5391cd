"""What a run measured, in the record schema it shares with the simulator (lobra.policies.records), plus two tables
of its own: micro_batches gains last_stage_s (time_s is the first stage's compute, last_stage_s the last stage's: the
same stage when pp = 1), and losses, per task per step: step, task, loss, targets. Each table is written as CSV and
Parquet, whole or not at all.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from lobra.policies.records import (
    MICRO_BATCH_COLUMNS,
    REPLICA_COLUMNS,
    STEP_COLUMNS,
    micro_batch_row,
    replica_row,
)

from lobra.io import write_table

COLUMNS = {
    "replicas": REPLICA_COLUMNS,
    "steps": STEP_COLUMNS,
    "micro_batches": (*MICRO_BATCH_COLUMNS, "last_stage_s"),
    "losses": ("step", "task", "loss", "targets"),
}


class Records:
    def __init__(self, tables: dict[str, list[dict]] | None = None) -> None:
        self.rows: dict[str, list[dict]] = {name: [] for name in COLUMNS}
        for name, rows in (tables or {}).items():
            self.rows[name] = list(rows)

    def add_step(
        self, step: int, dispatch, replica_busy_s, micro_batch_s, last_stage_s, step_time_s, losses, targets
    ) -> None:
        """dispatch: the step's DispatchPlan; replica_busy_s[r], micro_batch_s[r][i] as measured by the leaders,
        last_stage_s[r][i] by the last stages."""
        total_tokens = total_seqs = 0
        for r, (config, micro_batches) in enumerate(
            zip(dispatch.plan.replicas, dispatch.micro_batches, strict=True)
        ):
            idle_s = max(step_time_s - replica_busy_s[r], 0.0)
            row = replica_row(step, r, config, micro_batches, replica_busy_s[r], idle_s)
            self.rows["replicas"].append(row)
            total_tokens += row["tokens"]
            total_seqs += sum(len(mb.items) for mb in micro_batches)
            for i, mb in enumerate(micro_batches):
                mb_row = micro_batch_row(step, r, i, mb, micro_batch_s[r][i])
                self.rows["micro_batches"].append(mb_row | {"last_stage_s": last_stage_s[r][i]})
        self.rows["steps"].append(
            {"step": step, "step_time_s": step_time_s, "num_sequences": total_seqs, "tokens": total_tokens}
        )
        for task, loss in losses.items():
            self.rows["losses"].append(
                {"step": step, "task": task, "loss": loss, "targets": targets.get(task, 0)}
            )

    def frame(self, name: str) -> pd.DataFrame:
        return pd.DataFrame(self.rows[name], columns=list(COLUMNS[name]))

    def write(self, folder: str | Path, parquet: bool = True) -> None:
        folder = Path(folder)
        for name in COLUMNS:
            write_table(self.frame(name), folder / name, ("csv", "parquet") if parquet else ("csv",))

    @classmethod
    def read(cls, folder: str | Path) -> Records:
        tables = {}
        for name in COLUMNS:
            path = Path(folder) / f"{name}.csv"
            if path.is_file() and path.stat().st_size:
                df = pd.read_csv(path, dtype={"task": str, "config": str})
                tables[name] = df.to_dict("records")
        return cls(tables)
