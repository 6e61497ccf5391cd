"""What a run measured, in the simulator's record schema (the column names are shared with sim/; keep them).

- replicas.csv, per replica per step: step, replica, config, busy_s, idle_s, tokens, padded_tokens, micro_batches
- steps.csv, per step: step, step_time_s, num_sequences, tokens
- micro_batches.csv, per micro-batch: step, replica, micro_batch, seq_len, num_seqs, tokens, time_s, and (executor
  only) last_stage_s: time_s is the first stage's compute, last_stage_s the last stage's (the same stage when pp = 1)
- losses.csv (executor only), per task per step: step, task, loss, targets

tokens are real tokens, padded_tokens what the replica processed. idle_s is the step time minus the replica's
busy time: waiting for the slowest replica, the gradient sync and the optimizer. Each table is written as CSV and
Parquet, whole or not at all.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lobra.io import atomic_write

COLUMNS = {
    "replicas": ("step", "replica", "config", "busy_s", "idle_s", "tokens", "padded_tokens", "micro_batches"),
    "steps": ("step", "step_time_s", "num_sequences", "tokens"),
    "micro_batches": (
        "step",
        "replica",
        "micro_batch",
        "seq_len",
        "num_seqs",
        "tokens",
        "time_s",
        "last_stage_s",
    ),
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
        for r, (config, mbs) in enumerate(zip(dispatch.plan.replicas, dispatch.micro_batches, strict=True)):
            tokens = sum(mb.real_tokens for mb in mbs)
            padded = sum(len(mb.items) * (max(mb.lengths) if mb.packed else mb.seq_len) for mb in mbs)
            total_tokens += tokens
            total_seqs += sum(len(mb.items) for mb in mbs)
            self.rows["replicas"].append(
                {
                    "step": step,
                    "replica": r,
                    "config": str(config),
                    "busy_s": replica_busy_s[r],
                    "idle_s": max(step_time_s - replica_busy_s[r], 0.0),
                    "tokens": tokens,
                    "padded_tokens": padded,
                    "micro_batches": len(mbs),
                }
            )
            for i, mb in enumerate(mbs):
                self.rows["micro_batches"].append(
                    {
                        "step": step,
                        "replica": r,
                        "micro_batch": i,
                        "seq_len": max(mb.lengths) if mb.packed else mb.seq_len,
                        "num_seqs": len(mb.items),
                        "tokens": mb.real_tokens,
                        "time_s": micro_batch_s[r][i],
                        "last_stage_s": last_stage_s[r][i],
                    }
                )
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
            df = self.frame(name)
            atomic_write(folder / f"{name}.csv", lambda tmp, df=df: df.to_csv(tmp, index=False))
            if parquet:
                atomic_write(folder / f"{name}.parquet", lambda tmp, df=df: df.to_parquet(tmp, index=False))

    @classmethod
    def read(cls, folder: str | Path) -> Records:
        tables = {}
        for name in COLUMNS:
            path = Path(folder) / f"{name}.csv"
            if path.is_file() and path.stat().st_size:
                df = pd.read_csv(path, dtype={"task": str, "config": str})
                tables[name] = df.to_dict("records")
        return cls(tables)
