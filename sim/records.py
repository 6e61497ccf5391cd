"""What a simulation leaves behind: per-step and per-replica records (pandas), tenants' completion times, events,
a Chrome/Perfetto trace of the timeline, and a summary.

The replica and step tables follow the record schema shared with the executor (lobra.policies.records); the
simulator adds each row's attempt (a failure retries a step) and GPU count, and more step columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from lobra.costmodel import DeploymentPlan
from lobra.policies.records import REPLICA_COLUMNS, replica_row
from lobra.policies.types import DispatchPlan
from lobra.sim.replica import OpRecord
from lobra.traces import Workload

from lobra.io import write_json, write_table


@dataclass
class SimResult:
    steps: pd.DataFrame
    replicas: pd.DataFrame
    tasks: pd.DataFrame
    events: pd.DataFrame
    trace_events: list[dict]
    summary: dict

    def write(self, out: str | Path) -> list[Path]:
        """Parquet and CSV of every table, the summary as JSON, the timeline as a Chrome trace."""
        out = Path(out)
        written = []
        for name in ("steps", "replicas", "tasks", "events"):
            written += write_table(getattr(self, name), out / name)
        write_json(out / "summary.json", self.summary)
        write_json(out / "trace.json", {"traceEvents": self.trace_events}, indent=None)
        return written + [out / "summary.json", out / "trace.json"]


# The simulator's steps: the shared schema's, with attempts, status, times and the tokens sampled and trained.
SIM_STEP_COLUMNS = [
    "step",
    "attempt",
    "status",
    "start_s",
    "end_s",
    "step_time_s",
    "gpu_seconds",
    "num_sequences",
    "sampled_tokens",
    "tokens",
    "padded_tokens",
    "plan",
]


TOKEN_FATES = ("sampled_tokens", "trained_tokens", "truncated_tokens", "dropped_tokens")


def _cut_pct(ok: pd.DataFrame) -> float | None:
    sampled = ok["sampled_tokens"].sum()
    return float(100 * (1 - ok["tokens"].sum() / sampled)) if sampled else None


def _share(tasks: pd.DataFrame, column: str) -> float | None:
    sampled = tasks["sampled_tokens"].sum()
    return float(100 * tasks[column].sum() / sampled) if sampled else None


class Recorder:
    def __init__(self, workload: Workload, trace_steps: int = 0) -> None:
        self.workload = workload
        self.trace_steps = trace_steps
        self._steps: list[dict] = []
        self._replicas: list[dict] = []
        self._events: list[dict] = []
        self._done: dict[str, tuple[float, int]] = {}
        self._phase_gpu_s: dict[tuple[int, int], float] = {}
        self._phase_tokens: dict[tuple[int, int], tuple[int, int]] = {}
        self._task_tokens: dict[str, dict[str, int]] = {}
        self._trace: list[dict] = []
        self._named: set[int] = set()

    def event(self, time_s: float, kind: str, detail: str) -> None:
        self._events.append({"time_s": time_s, "kind": kind, "detail": detail})

    def lost(self, step: int, attempt: int, gpu_seconds: float) -> None:
        """GPU time spent on an attempt that a failure threw away."""
        key = (step, attempt)
        self._phase_gpu_s[key] = self._phase_gpu_s.get(key, 0.0) + gpu_seconds

    def tokens(self, items, dispatch: DispatchPlan) -> None:
        """Each task's sampled tokens in a completed phase, and what became of them: trained, truncated, dropped."""
        dropped = set(dispatch.dropped)
        for i, item in enumerate(items):
            counts = self._task_tokens.setdefault(item.task, dict.fromkeys(TOKEN_FATES, 0))
            counts["sampled_tokens"] += item.length
            if i in dropped:
                counts["dropped_tokens"] += item.length
                continue
            run = dispatch.truncated.get(i, item.length)
            counts["truncated_tokens"] += item.length - run
            counts["trained_tokens"] += run

    def task_done(self, name: str, time_s: float, steps: int) -> None:
        self._done[name] = (time_s, steps)

    def phase(
        self,
        step: int,
        attempt: int,
        start: float,
        end: float,
        plan: DeploymentPlan,
        dispatch: DispatchPlan,
        finish: dict[int, float],
        log: list[OpRecord] | None,
    ) -> None:
        real = padded = 0
        for r, (config, mbs) in enumerate(zip(plan.replicas, dispatch.micro_batches, strict=True)):
            busy = finish.get(r, start) - start
            row = replica_row(step, r, config, mbs, busy, (end - start) - busy)
            real, padded = real + row["tokens"], padded + row["padded_tokens"]
            self._replicas.append(row | {"attempt": attempt, "gpus": config.num_gpus})
        key = (step, attempt)
        self._phase_gpu_s[key] = self._phase_gpu_s.get(key, 0.0) + (end - start) * plan.num_gpus
        r0, p0 = self._phase_tokens.get(key, (0, 0))
        self._phase_tokens[key] = (r0 + real, p0 + padded)
        for op in log or []:
            if op.replica not in self._named:
                self._named.add(op.replica)
                self._trace.append(
                    {
                        "name": "process_name",
                        "ph": "M",
                        "pid": op.replica,
                        "args": {"name": f"replica {op.replica} {plan.replicas[op.replica]}"},
                    }
                )
            self._trace.append(
                {
                    "name": f"{op.kind}{op.micro_batch}",
                    "ph": "X",
                    "pid": op.replica,
                    "tid": op.stage,
                    "ts": op.start_s * 1e6,
                    "dur": (op.end_s - op.start_s) * 1e6,
                    "args": {"step": step},
                }
            )

    def step(self, step: int, attempt: int, start: float, end: float, items, deployment, status: str) -> None:
        real, padded = self._phase_tokens.get((step, attempt), (0, 0))
        self._steps.append(
            {
                "step": step,
                "attempt": attempt,
                "status": status,
                "start_s": start,
                "end_s": end,
                "step_time_s": end - start,
                "gpu_seconds": self._phase_gpu_s.get((step, attempt), 0.0),
                "num_sequences": len(items),
                "sampled_tokens": sum(it.length for it in items),  # what the tasks asked for
                "tokens": real,  # what was trained: the sampled tokens less those truncated or dropped
                "padded_tokens": padded,
                "plan": deployment.label,
            }
        )

    def result(self, end_s: float, num_gpus: int) -> SimResult:
        steps = pd.DataFrame(self._steps, columns=SIM_STEP_COLUMNS)
        replicas = pd.DataFrame(
            self._replicas, columns=[*REPLICA_COLUMNS[:2], "attempt", *REPLICA_COLUMNS[2:], "gpus"]
        )
        tasks = pd.DataFrame(
            [
                {
                    "task": t.name,
                    "arrival_s": t.spec.arrival_s,
                    "steps": self._done.get(t.name, (np.nan, 0))[1],
                    "completion_s": self._done.get(t.name, (np.nan, 0))[0],
                }
                | self._task_tokens.get(t.name, dict.fromkeys(TOKEN_FATES, 0))
                for t in self.workload
            ]
        )
        events = pd.DataFrame(self._events, columns=["time_s", "kind", "detail"])
        ok = steps[steps["status"] == "ok"]
        rep_ok = replicas.merge(ok[["step", "attempt"]], on=["step", "attempt"])
        gpu_s = float(ok["gpu_seconds"].sum())
        idle_gpu_s = float((rep_ok["idle_s"] * rep_ok["gpus"]).sum())
        summary = {
            "steps": len(ok),
            "total_time_s": end_s,
            "step_time_s": float(ok["step_time_s"].mean()) if len(ok) else None,
            "gpu_seconds_per_step": float(ok["gpu_seconds"].mean()) if len(ok) else None,
            "plan": ok["plan"].iloc[0] if len(ok) else None,
            "plans": list(dict.fromkeys(ok["plan"])),
            "tokens_per_s": float(ok["tokens"].sum() / end_s) if end_s > 0 else None,
            "padding_ratio": float(1 - ok["tokens"].sum() / padded)
            if (padded := ok["padded_tokens"].sum())
            else None,
            # the share of the sampled tokens truncated or dropped: plans compare at equal work only at 0
            "cut_pct": _cut_pct(ok),
            "truncated_pct": _share(tasks, "truncated_tokens"),
            "dropped_pct": _share(tasks, "dropped_tokens"),
            "idle_ratio": idle_gpu_s / gpu_s if gpu_s else None,
            "failed_attempts": int((steps["status"] == "failed").sum()),
            "gpu_seconds_lost": float(steps.loc[steps["status"] == "failed", "gpu_seconds"].sum()),
            "reconfigurations": int((events["kind"] == "reconfigure").sum()),
            # failures left nothing that runs: the simulation ended early, and why
            "stopped": next(iter(events.loc[events["kind"] == "stopped", "detail"]), None),
            "task_completion_s": {
                row.task: (None if np.isnan(row.completion_s) else float(row.completion_s))
                for row in tasks.itertuples()
            },
            "num_gpus": num_gpus,
        }
        return SimResult(steps, replicas, tasks, events, self._trace, summary)
