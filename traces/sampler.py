"""Per-step sampling of every active task's global batch, stratified by length (the paper's sampler) or i.i.d.

Each task walks through epochs; an epoch is a fresh random permutation of the task's samples (after its
max_len/overflow policy), cut into len // global_batch_size steps (the remainder, random samples, is skipped
that epoch). In "stratified" mode the epoch's samples are sorted into global_batch_size length strata and
every step takes one sample of each stratum, so each step mirrors the task's length distribution instead of
drawing a batch of only short (or only long) sequences by chance. In "iid" mode a step is the next chunk of
the permutation.

An epoch's order depends only on (seed, task name, epoch): the sampler's position is a small dict (state()),
and restoring it resumes the exact same sequence of steps. Which tasks are active in a step (arrivals, online
scenarios) is the caller's decision: next_step(active=[...]); by default every task with steps left.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from itertools import repeat

import numpy as np
from lobra.traces.errors import TraceError
from lobra.traces.tasks import Workload

SAMPLING_MODES = ("stratified", "iid")
# The paper's sampler; the executor samples in this mode, and so must any simulation compared with its runs.
DEFAULT_SAMPLING_MODE = "stratified"


class StepSampler:
    def __init__(self, workload: Workload, seed: int = 0, mode: str = DEFAULT_SAMPLING_MODE) -> None:
        if not isinstance(workload, Workload):
            raise TraceError("StepSampler needs a Workload")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise TraceError(f"sampler seed must be an integer >= 0, got {seed!r}")
        if mode not in SAMPLING_MODES:
            raise TraceError(f"sampling mode must be one of {', '.join(SAMPLING_MODES)}, got {mode!r}")
        self.workload, self.seed, self.mode = workload, seed, mode
        self._pos = {t.name: [0, 0, 0] for t in workload}  # epoch, step within epoch, steps done
        self._order: dict[
            str, tuple[int, np.ndarray]
        ] = {}  # the current epoch's (steps x batch) sample indices

    # -- position -------------------------------------------------------------------------------------------
    def steps_done(self, name: str) -> int:
        return self._pos[self.workload.task(name).name][2]

    def epochs_done(self, name: str) -> float:
        """Completed epochs, fractional within the current one."""
        task = self.workload.task(name)
        epoch, step, _ = self._pos[name]
        return epoch + step / task.steps_per_epoch

    def finished(self, name: str) -> bool:
        return self.steps_done(name) >= self.workload.task(name).num_steps

    @property
    def done(self) -> bool:
        return all(self.finished(name) for name in self.workload.names)

    def state(self) -> dict:
        """A JSON-able position for checkpoints: from_state(workload, state) resumes from here."""
        return {
            "seed": self.seed,
            "mode": self.mode,
            "tasks": {
                name: {"epoch": e, "step_in_epoch": s, "steps_done": d}
                for name, (e, s, d) in self._pos.items()
            },
        }

    @classmethod
    def from_state(cls, workload: Workload, state: dict) -> StepSampler:
        try:
            sampler = cls(workload, seed=state["seed"], mode=state["mode"])
            tasks = state["tasks"]
            if set(tasks) != set(workload.names):
                raise TraceError(
                    f"sampler state covers tasks {sorted(tasks)}, the workload has {workload.names}"
                )
            for name, pos in tasks.items():
                values = [pos["epoch"], pos["step_in_epoch"], pos["steps_done"]]
                if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in values):
                    raise TraceError(f"sampler state of task {name!r}: positions must be integers >= 0")
                if values[1] >= workload.task(name).steps_per_epoch:
                    raise TraceError(
                        f"sampler state of task {name!r}: step_in_epoch {values[1]} is past the epoch"
                    )
                sampler._pos[name] = values
        except (KeyError, TypeError, AttributeError) as err:
            raise TraceError(f"malformed sampler state: {type(err).__name__} {err}") from None
        return sampler

    # -- sampling -------------------------------------------------------------------------------------------
    def _epoch_order(self, name: str, epoch: int) -> np.ndarray:
        cached = self._order.get(name)
        if cached is not None and cached[0] == epoch:
            return cached[1]
        task = self.workload.task(name)
        lengths, batch, steps = task.lengths, task.global_batch_size, task.steps_per_epoch
        # A generator per (seed, task, epoch): resuming needs no replay of earlier epochs.
        rng = np.random.default_rng([self.seed, zlib.crc32(name.encode()), epoch])
        perm = rng.permutation(len(lengths))[: steps * batch]
        if self.mode == "iid":
            order = perm.reshape(steps, batch)
        else:
            # Stable sort of a random permutation: ties in length stay in random order.
            by_length = perm[np.argsort(lengths[perm], kind="stable")]
            strata = rng.permuted(by_length.reshape(batch, steps), axis=1)  # row = one length stratum
            order = rng.permuted(strata.T, axis=1)  # row = one step, one sample per stratum, shuffled
        order = np.ascontiguousarray(order)
        self._order[name] = (epoch, order)
        return order

    def next_batches(self, active: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """One step: each active task's global batch of lengths (active=None: every unfinished task)."""
        if active is None:
            names = [n for n in self.workload.names if not self.finished(n)]
        else:
            names = [self.workload.task(n).name for n in active]
        out = {}
        for name in names:
            task = self.workload.task(name)
            pos = self._pos[name]
            out[name] = task.lengths[self._epoch_order(name, pos[0])[pos[1]]]
            pos[1] += 1
            pos[2] += 1
            if pos[1] == task.steps_per_epoch:
                pos[0], pos[1] = pos[0] + 1, 0
        return out

    def next_step(self, active: Iterable[str] | None = None) -> list[tuple[str, int]]:
        """One step as (task_name, length) items, task by task in workload order."""
        items: list[tuple[str, int]] = []
        for name, lengths in self.next_batches(active).items():
            items.extend(zip(repeat(name), lengths.tolist()))  # noqa: B905 (repeat is endless)
        return items
