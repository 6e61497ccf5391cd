"""Tasks and workloads: what each tenant trains (trace, batch, max length, LoRA config, duration), from YAML.

A task file is a mapping whose `tasks:` key holds a list of tasks (see TASK_KEYS). Parsing is strict: unknown
keys, wrong types and impossible values are errors whose one-line message names the file, the task and the
field.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from lobra.traces.errors import TraceError
from lobra.traces.synthetic import DEFAULT_CAP, DEFAULT_SAMPLES, SyntheticSpec, synthetic_trace
from lobra.traces.trace import Trace, TraceStats, did_you_mean, length_stats, load_trace

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj")
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
OVERFLOW_POLICIES = ("truncate", "drop")
DEFAULT_STEPS = 200  # a task that gives neither steps nor epochs runs this many steps
TASK_KEYS = (
    "name",
    "trace",
    "global_batch_size",
    "max_len",
    "overflow",
    "rank",
    "alpha",
    "targets",
    "steps",
    "epochs",
    "arrival_s",
)
REQUIRED_KEYS = ("name", "trace", "global_batch_size", "max_len")
# Every field of a task, with its default and meaning: `lobra tasks fields` prints this, docs/tasks.md explains it.
FIELD_DOCS = {
    "name": ("required", "the tenant's task: 1-64 letters, digits, '_', '.', '-'; names its adapter folder"),
    "trace": (
        "required",
        "sequence lengths: a shipped trace name, a CSV path (relative to the file) with a"
        " total_tokens column, or {synthetic: {mean, skewness, kurtosis, ...}}",
    ),
    "global_batch_size": ("required", "sequences of this task in every step (summed over all replicas)"),
    "max_len": ("required", "longest sequence trained, tokens; longer ones are cut or dropped (overflow)"),
    "overflow": ("truncate", "sequences over max_len: truncate (keep the first max_len tokens) or drop"),
    "rank": ("16", "LoRA rank r"),
    "alpha": ("32", "LoRA alpha (the update is scaled by alpha / rank)"),
    "targets": (
        ",".join(DEFAULT_TARGETS),
        "modules given LoRA: a list or comma-separated, among " + ", ".join(LORA_TARGETS),
    ),
    "steps": (f"{DEFAULT_STEPS}", "steps the task trains (give steps or epochs, not both)"),
    "epochs": ("-", "passes over the trace instead of steps (may be fractional)"),
    "arrival_s": ("0", "seconds after the start the task arrives (online scenarios)"),
}
SYNTHETIC_DOCS = {
    "mean": ("required", "mean length, tokens"),
    "skewness": ("required", "skewness g1 of the lengths"),
    "kurtosis": ("required", "excess kurtosis g2 of the lengths (0 for a normal distribution)"),
    "cap": (f"{DEFAULT_CAP}", "longest length drawn, tokens"),
    "samples": (f"{DEFAULT_SAMPLES}", "lengths drawn"),
    "seed": ("0", "orders the samples (the values depend on the other fields only)"),
}
SYNTHETIC_KEYS = ("mean", "skewness", "kurtosis", "cap", "samples", "seed")
TOP_KEYS = ("tasks", "description")
# Task names become adapter names and file names (adapters/<task>/, checkpoint keys): a safe alphabet, and short
# enough that every path built from one stays far below the 255-byte limit of a file name.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
MAX_NAME_LEN = 64


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class TaskSpec:
    """A tenant's task as written in a task file; trace: a shipped name, a CSV path or a spec."""

    name: str
    trace: str | SyntheticSpec
    global_batch_size: int
    max_len: int
    overflow: str = "truncate"
    rank: int = 16
    alpha: float = 32
    targets: tuple[str, ...] = DEFAULT_TARGETS
    steps: int | None = None
    epochs: float | None = None
    arrival_s: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name) or len(self.name) > MAX_NAME_LEN:
            # No "task ..." prefix: the file parser adds "task #i" since there is no name to show.
            shown = (
                self.name
                if not isinstance(self.name, str) or len(self.name) <= 80
                else self.name[:77] + "..."
            )
            raise TraceError(
                f"name must be 1-{MAX_NAME_LEN} letters, digits, '_', '.', '-' (starting with a letter or digit),"
                f" got {shown!r}"
            )

        def bad(key: str, what: str):
            return TraceError(f"task {self.name!r}: {key} must be {what}, got {getattr(self, key)!r}")

        if not (isinstance(self.trace, SyntheticSpec) or (isinstance(self.trace, str) and self.trace)):
            raise bad("trace", "a trace name, a CSV path or a synthetic spec")
        for key in ("global_batch_size", "max_len", "rank"):
            if not _is_int(getattr(self, key)) or getattr(self, key) < 1:
                raise bad(key, "a positive integer")
        if self.overflow not in OVERFLOW_POLICIES:
            raise bad("overflow", " or ".join(repr(p) for p in OVERFLOW_POLICIES))
        if not _is_num(self.alpha) or self.alpha <= 0:
            raise bad("alpha", "a positive number")
        if (
            not isinstance(self.targets, tuple)
            or not self.targets
            or any(t not in LORA_TARGETS for t in self.targets)
            or len(set(self.targets)) != len(self.targets)
        ):
            raise bad("targets", f"distinct modules among {', '.join(LORA_TARGETS)}")
        if self.steps is not None and self.epochs is not None:
            raise TraceError(f"task {self.name!r}: give steps or epochs, not both")
        if self.steps is not None and (not _is_int(self.steps) or self.steps < 1):
            raise bad("steps", "a positive integer")
        if self.epochs is not None and (not _is_num(self.epochs) or self.epochs <= 0):
            raise bad("epochs", "a positive number")
        if self.steps is None and self.epochs is None:
            object.__setattr__(self, "steps", DEFAULT_STEPS)
        if not _is_num(self.arrival_s) or self.arrival_s < 0:
            raise bad("arrival_s", "a number >= 0 (seconds)")


@dataclass(frozen=True, eq=False)
class Task:
    """A TaskSpec with its trace loaded; lengths are the trace's after the max_len/overflow policy."""

    spec: TaskSpec
    trace: Trace

    def __post_init__(self) -> None:
        n, kept = len(self.trace), len(self.lengths)
        if kept < self.spec.global_batch_size:
            policy = f" after overflow 'drop' at max_len {self.spec.max_len}" if kept < n else ""
            raise TraceError(
                f"task {self.name!r}: trace {self.trace.name!r} has {kept} samples{policy}, fewer than"
                f" global_batch_size {self.spec.global_batch_size}"
            )

    name = property(lambda self: self.spec.name)
    global_batch_size = property(lambda self: self.spec.global_batch_size)
    max_len = property(lambda self: self.spec.max_len)

    @cached_property
    def lengths(self) -> np.ndarray:
        total = self.trace.total
        out = (
            np.minimum(total, self.max_len)
            if self.spec.overflow == "truncate"
            else total[total <= self.max_len]
        )
        out.setflags(write=False)
        return out

    @property
    def num_overflow(self) -> int:
        """Samples longer than max_len (truncated or dropped)."""
        return int(np.count_nonzero(self.trace.total > self.max_len))

    @property
    def steps_per_epoch(self) -> int:
        # Each epoch is a fresh permutation; the n mod batch samples left over are skipped, at random.
        return len(self.lengths) // self.global_batch_size

    @property
    def num_steps(self) -> int:
        if self.spec.steps is not None:
            return self.spec.steps
        return max(1, math.ceil(self.spec.epochs * self.steps_per_epoch - 1e-9))

    @cached_property
    def stats(self) -> TraceStats:
        return length_stats(self.lengths)


@dataclass(frozen=True, eq=False)
class Workload:
    """The tasks trained jointly; one step takes one global batch from every active task."""

    tasks: tuple[Task, ...]
    source: str = ""
    description: str = ""
    _by_name: dict[str, Task] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.tasks, tuple) or not self.tasks:
            raise TraceError("a workload needs at least one task")
        by_name: dict[str, Task] = {}
        for task in self.tasks:
            if task.name in by_name:
                raise TraceError(f"task {task.name!r}: duplicate task name")
            by_name[task.name] = task
        object.__setattr__(self, "_by_name", by_name)

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self):
        return iter(self.tasks)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def task(self, name: str) -> Task:
        if name not in self._by_name:
            raise TraceError(f"unknown task {name!r}; tasks: {', '.join(self.names)}")
        return self._by_name[name]

    @cached_property
    def longest(self) -> dict[str, int]:
        """Each task's longest sequence (after its max_len): what a plan must hold to train every token."""
        return {t.name: int(t.lengths.max()) for t in self.tasks}

    @property
    def sequences_per_step(self) -> int:
        return sum(t.global_batch_size for t in self.tasks)


def load_workload(path: str | Path) -> Workload:
    """Parse and load a task file (YAML); relative trace paths are relative to the file."""
    path = Path(path)
    if not path.is_file():
        raise TraceError(f"task file {str(path)!r} does not exist or is not a file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise TraceError(f"{path}: invalid YAML{where}: {err.problem or err.context}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise TraceError(f"{path}: invalid YAML: {str(err).splitlines()[0] if str(err) else err!r}") from None
    return parse_workload(data, base_dir=path.parent, source=str(path))


def parse_workload(data: Any, base_dir: str | Path = ".", source: str = "<tasks>") -> Workload:
    """Build a Workload from the already-parsed YAML document; errors are prefixed with source."""
    if not isinstance(data, dict):
        raise TraceError(
            f"{source}: the top level must be a mapping with a 'tasks' list, got "
            f"{type(data).__name__ if data is not None else 'an empty document'}"
        )
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise TraceError(f"{source}: unknown top-level key {unknown[0]!r} (allowed: {', '.join(TOP_KEYS)})")
    if "tasks" not in data:
        raise TraceError(f"{source}: missing the 'tasks' key (a list of tasks)")
    items, description = data["tasks"], data.get("description", "")
    if not isinstance(items, list) or not items:
        raise TraceError(f"{source}: 'tasks' must be a non-empty list of task mappings")
    if not isinstance(description, str):
        raise TraceError(f"{source}: 'description' must be a string")
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items, start=1):
        label = f"task #{i}"
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            label = f"task {item['name']!r}"
        try:
            spec = _parse_task(item, i)
            if spec.name in seen:
                raise TraceError(
                    f"task {spec.name!r}: name: duplicate task name (also task #{seen[spec.name]})"
                )
            seen[spec.name] = i
            tasks.append(Task(spec, _load_task_trace(spec, base_dir)))
        except TraceError as err:
            msg = str(err)
            raise TraceError(f"{source}: {msg if msg.startswith('task ') else f'{label}: {msg}'}") from None
    return Workload(tuple(tasks), source=source, description=description)


def _parse_task(item: Any, index: int) -> TaskSpec:
    if not isinstance(item, dict):
        raise TraceError(f"task #{index}: must be a mapping of fields, got {type(item).__name__}")
    name = item.get("name")
    label = f"task {name!r}" if isinstance(name, str) else f"task #{index}"
    unknown = [k for k in item if k not in TASK_KEYS]
    if unknown:
        hint = did_you_mean(unknown[0], TASK_KEYS)
        raise TraceError(f"{label}: unknown field {unknown[0]!r}{hint} (allowed: {', '.join(TASK_KEYS)})")
    missing = [k for k in REQUIRED_KEYS if k not in item]
    if missing:
        raise TraceError(f"{label}: missing required field {missing[0]!r}")
    fields = dict(item)
    fields["trace"] = _parse_trace_ref(fields["trace"], label)
    if "targets" in fields:
        targets = fields["targets"]
        if isinstance(targets, str):
            targets = [t.strip() for t in targets.split(",") if t.strip()]
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise TraceError(f"{label}: targets must be a list of module names, got {fields['targets']!r}")
        fields["targets"] = tuple(targets)
    return TaskSpec(**fields)


def _parse_trace_ref(ref: Any, label: str) -> str | SyntheticSpec:
    if isinstance(ref, str) and ref.strip():
        return ref.strip()
    if isinstance(ref, dict) and list(ref) == ["synthetic"]:
        params = ref["synthetic"]
        if not isinstance(params, dict):
            raise TraceError(
                f"{label}: trace: 'synthetic' must map mean, skewness, kurtosis (and optionally cap,"
                " samples, seed) to numbers"
            )
        unknown = [k for k in params if k not in SYNTHETIC_KEYS]
        if unknown:
            raise TraceError(
                f"{label}: trace: unknown synthetic field {unknown[0]!r} (allowed: "
                f"{', '.join(SYNTHETIC_KEYS)})"
            )
        missing = [k for k in SYNTHETIC_KEYS[:3] if k not in params]
        if missing:
            raise TraceError(f"{label}: trace: synthetic lacks required field {missing[0]!r}")
        try:
            return SyntheticSpec(**params)
        except TraceError as err:
            raise TraceError(f"{label}: trace: {err}") from None
    raise TraceError(
        f"{label}: trace must be a trace name, a CSV path or a mapping {{synthetic: {{mean, skewness,"
        f" kurtosis, ...}}}}, got {ref!r}"
    )


def _load_task_trace(spec: TaskSpec, base_dir: str | Path) -> Trace:
    try:
        if isinstance(spec.trace, SyntheticSpec):
            return synthetic_trace(spec.trace, name=spec.name)
        return load_trace(spec.trace, base_dir=base_dir)
    except TraceError as err:
        raise TraceError(f"task {spec.name!r}: trace: {err}") from None
