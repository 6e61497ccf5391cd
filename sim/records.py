"""What a simulation leaves behind: per-step and per-replica records (pandas), tenants' completion times, events,
a Chrome/Perfetto trace of the timeline, and a summary.

The replica and step tables follow the record schema shared with the executor (lobra.policies.records); the
simulator adds each row's attempt (a failure retries a step) and GPU count, and more step columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from operator import attrgetter
from pathlib import Path

import numpy as np
import pandas as pd
from lobra.costmodel import DeploymentPlan
from lobra.policies.records import REPLICA_COLUMNS, replica_row
from lobra.policies.types import DispatchPlan
from lobra.sim.replica import SYNC_STAGE, OpRecord
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


class Trace:
    """The Chrome/Perfetto timeline (trace.json) of the traced steps: a "steps" track (each step's span, plans,
    failures and re-plans as instants), then one process per replica of each plan with a track per pipeline stage
    (its layers named), one per stage-to-stage link direction, and one for the gradient all-reduce and optimizer.
    Times are microseconds of simulated time."""

    STEPS_PID = 0
    SEND_TIDS = {"activations": 100, "gradients": 200}  # + the sending stage
    SYNC_TID = 1000

    def __init__(self, num_layers: int) -> None:
        self.num_layers = num_layers
        self.events: list[dict] = [_meta("process_name", self.STEPS_PID, None, "steps")]
        self._pids: dict[tuple[str, int], int] = {}  # (plan, replica) -> pid
        self._plans: list[str] = []
        self.traced: set[int] = set()  # steps with ops in the trace
        self._full = False

    def phase(self, step: int, plan: DeploymentPlan, log: list[OpRecord]) -> None:
        self.traced.add(step)
        for op in log:
            pid = self._pid(plan, op.replica)
            if op.stage == SYNC_STAGE:
                tid, name = self.SYNC_TID, op.kind
            elif op.kind in self.SEND_TIDS:
                tid, name = self.SEND_TIDS[op.kind] + op.stage, f"{op.kind} {op.micro_batch}"
            else:
                tid, name = op.stage, f"{op.kind}{op.micro_batch}"
            self.events.append(_span(name, pid, tid, op.start_s, op.end_s))

    def step(self, step: int, attempt: int, start: float, end: float, status: str, plan: str) -> None:
        if step in self.traced:
            args = {"attempt": attempt, "status": status, "plan": plan}
            self.events.append(_span(f"step {step}", self.STEPS_PID, 0, start, end, args))

    def has_room(self, step: int, limit: int) -> bool:
        """Whether step `step` may add its ops: whole steps only, until the trace holds `limit` events. The first
        step left out renames the steps track to say where the trace stops."""
        if step in self.traced or (not self._full and len(self.events) < limit):
            return True
        if not self._full:
            self._full = True
            label = f"steps (ops traced up to step {step - 1}: the trace is limited to {limit:,} events)"
            self.events[0] = _meta("process_name", self.STEPS_PID, None, label)
        return False

    def instant(self, time_s: float, kind: str, detail: str) -> None:
        self.events.append(
            {
                "name": kind,
                "ph": "i",
                "s": "g",
                "pid": self.STEPS_PID,
                "tid": 0,
                "ts": time_s * 1e6,
                "args": {"detail": detail},
            }
        )

    def _pid(self, plan: DeploymentPlan, r: int) -> int:
        if str(plan) not in self._plans:  # name every replica of a new plan, in order
            self._plans.append(str(plan))
            for i in range(plan.num_replicas):
                self._name(plan, i, self._pids.setdefault((str(plan), i), len(self._pids) + 1))
        return self._pids[(str(plan), r)]

    def _name(self, plan: DeploymentPlan, r: int, pid: int) -> None:
        config, nth = plan.replicas[r], len(self._plans) - 1
        label = f"replica {r} {config}" + (f" (plan {nth + 1}: {plan})" if nth else "")
        self.events.append(_meta("process_name", pid, None, label))
        first = 0
        for k, layers in enumerate(config.stage_layers(self.num_layers)):
            extra = (" + embedding" if k == 0 else "") + (" + LM head, loss" if k == config.pp - 1 else "")
            self.events.append(
                _meta("thread_name", pid, k, f"stage {k}: layers {first}-{first + layers - 1}{extra}")
            )
            first += layers
            if k < config.pp - 1:
                self.events.append(
                    _meta("thread_name", pid, self.SEND_TIDS["activations"] + k, f"link {k} -> {k + 1}")
                )
            if k > 0:
                self.events.append(
                    _meta("thread_name", pid, self.SEND_TIDS["gradients"] + k, f"link {k} -> {k - 1}")
                )
        self.events.append(_meta("thread_name", pid, self.SYNC_TID, "gradient all-reduce, optimizer"))


def _meta(kind: str, pid: int, tid: int | None, name: str) -> dict:
    event = {"name": kind, "ph": "M", "pid": pid, "args": {"name": name}}
    return event if tid is None else event | {"tid": tid}


def _span(name: str, pid: int, tid: int, start_s: float, end_s: float, args: dict | None = None) -> dict:
    event = {
        "name": name,
        "ph": "X",
        "pid": pid,
        "tid": tid,
        "ts": start_s * 1e6,
        "dur": (end_s - start_s) * 1e6,
    }
    return event | {"args": args} if args else event


class Recorder:
    def __init__(self, workload: Workload, num_layers: int) -> None:
        self.workload = workload
        self.trace = Trace(num_layers)
        self._steps: list[dict] = []
        self._replicas: list[dict] = []
        self._events: list[dict] = []
        self._done: dict[str, tuple[float, int]] = {}
        self._phase_gpu_s: dict[tuple[int, int], float] = {}
        self._phase_tokens: dict[tuple[int, int], tuple[int, int]] = {}
        self._task_tokens: dict[str, dict[str, int]] = {}

    def event(self, time_s: float, kind: str, detail: str) -> None:
        self._events.append({"time_s": time_s, "kind": kind, "detail": detail})
        self.trace.instant(time_s, kind, detail)

    def lost(self, step: int, attempt: int, gpu_seconds: float) -> None:
        """GPU time spent on an attempt that a failure threw away."""
        key = (step, attempt)
        self._phase_gpu_s[key] = self._phase_gpu_s.get(key, 0.0) + gpu_seconds

    def tokens(self, items, dispatch: DispatchPlan) -> None:
        """Each task's sampled tokens in a completed phase, and what became of them: trained, truncated, dropped."""
        if not dispatch.dropped and not dispatch.truncated:  # all trained: sums per run of one task's items
            for task, group in groupby(items, attrgetter("task")):
                n = sum(map(attrgetter("length"), group))
                counts = self._task_counts(task)
                counts["sampled_tokens"] += n
                counts["trained_tokens"] += n
            return
        dropped = set(dispatch.dropped)
        for i, item in enumerate(items):
            counts = self._task_counts(item.task)
            counts["sampled_tokens"] += item.length
            if i in dropped:
                counts["dropped_tokens"] += item.length
                continue
            run = dispatch.truncated.get(i, item.length)
            counts["truncated_tokens"] += item.length - run
            counts["trained_tokens"] += run

    def _task_counts(self, task: str) -> dict[str, int]:
        counts = self._task_tokens.get(task)
        if counts is None:
            counts = self._task_tokens[task] = dict.fromkeys(TOKEN_FATES, 0)
        return counts

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
        if log:
            self.trace.phase(step, plan, log)

    def step(self, step: int, attempt: int, start: float, end: float, items, deployment, status: str) -> None:
        real, padded = self._phase_tokens.get((step, attempt), (0, 0))
        self.trace.step(step, attempt, start, end, status, deployment.label)
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
            "traced_steps": len(self.trace.traced),  # steps with every op in trace.json
        }
        return SimResult(steps, replicas, tasks, events, self.trace.events, summary)
