"""The record schema of a run, one for the simulator and the executor, so that a simulated run and a real run of
the same plan compare column for column.

A run's tables are built from the same dispatch plans on both sides: what a replica ran (tokens, padded tokens,
micro-batches) comes from the step's DispatchPlan, only the times differ (simulated or measured). Each side may add
columns of its own after the shared ones (the simulator: attempt, gpus; the executor: a pipeline's last-stage time).

- replicas, per replica per step: busy_s is the replica's compute, idle_s the step time minus it (waiting for the
  slowest replica, the gradient sync and the optimizer); tokens are real tokens, padded_tokens what it processed.
- steps, per step: the step's time, sequences and real tokens.
- micro_batches, per micro-batch: its longest sequence (seq_len), sequences, real tokens and compute time.
"""

from __future__ import annotations

from lobra.costmodel import ParallelConfig
from lobra.policies.types import MicroBatchPlan

REPLICA_COLUMNS = (
    "step",
    "replica",
    "config",
    "busy_s",
    "idle_s",
    "tokens",
    "padded_tokens",
    "micro_batches",
)
STEP_COLUMNS = ("step", "step_time_s", "num_sequences", "tokens")
MICRO_BATCH_COLUMNS = ("step", "replica", "micro_batch", "seq_len", "num_seqs", "tokens", "time_s")


def replica_row(
    step: int,
    replica: int,
    config: ParallelConfig,
    micro_batches: tuple[MicroBatchPlan, ...],
    busy_s: float,
    idle_s: float,
) -> dict:
    return {
        "step": step,
        "replica": replica,
        "config": str(config),
        "busy_s": busy_s,
        "idle_s": idle_s,
        "tokens": sum(mb.real_tokens for mb in micro_batches),
        "padded_tokens": sum(mb.tokens for mb in micro_batches),
        "micro_batches": len(micro_batches),
    }


def micro_batch_row(step: int, replica: int, index: int, mb: MicroBatchPlan, time_s: float) -> dict:
    return {
        "step": step,
        "replica": replica,
        "micro_batch": index,
        "seq_len": max(mb.lengths) if mb.packed else mb.seq_len,
        "num_seqs": len(mb.items),
        "tokens": mb.real_tokens,
        "time_s": time_s,
    }
