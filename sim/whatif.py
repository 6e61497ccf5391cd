"""What-if mode: a given plan on fixed-length data, optionally with a fixed micro-batch size.

`lobra simulate --model M --gpu G --plan PLAN --workload fixed:LEN --global-batch B [--mbs K]` answers "how long is
a step of B sequences of LEN tokens on this plan?"; on a single replica it reproduces the cost model's replica
arithmetic exactly, which is how the simulator's timeline is checked against the cost model.
"""

from __future__ import annotations

import numpy as np
from lobra.costmodel import CostModel, DeploymentPlan
from lobra.policies.types import DispatchPlan, MicroBatchPlan, StepItem
from lobra.sim.errors import SimError
from lobra.traces import Task, TaskSpec, Trace, Workload


def fixed_workload(spec: str, global_batch: int | None, steps: int) -> Workload:
    """One task whose every sequence has LEN tokens, from the string fixed:LEN."""
    if not spec.startswith("fixed:"):
        raise SimError(f"--workload must be fixed:LEN, got {spec!r}")
    try:
        length = int(spec.split(":", 1)[1])
    except ValueError:
        raise SimError(f"--workload fixed:LEN needs an integer length, got {spec!r}") from None
    if length < 1:
        raise SimError(f"--workload fixed:LEN needs a positive length, got {length}")
    if not global_batch or global_batch < 1:
        raise SimError("--workload fixed:LEN needs --global-batch B (a positive integer)")
    trace = Trace(f"fixed-{length}", np.full(global_batch, length))
    task = TaskSpec(
        name="fixed", trace=trace.name, global_batch_size=global_batch, max_len=length, steps=steps
    )
    return Workload((Task(task, trace),), source=spec)


def fixed_mbs_dispatch(
    items: list[StepItem], plan: DeploymentPlan, cost: CostModel, mbs: int
) -> DispatchPlan:
    """What-if mode: sequences dealt round-robin over the replicas, every micro-batch holding `mbs` of them."""
    shares: list[list[int]] = [[] for _ in plan.replicas]
    for i in range(len(items)):
        shares[i % plan.num_replicas].append(i)
    out = []
    for config, share in zip(plan.replicas, shares, strict=True):
        mbs_here = []
        for k in range(0, len(share), mbs):
            ids = tuple(share[k : k + mbs])
            lengths = tuple(items[i].length for i in ids)
            seq_len = max(lengths)
            if len(ids) * seq_len > cost.max_tokens(config):
                raise SimError(
                    f"a micro-batch of {mbs} x {seq_len} tokens does not fit {config} "
                    f"(max_tokens {cost.max_tokens(config)})"
                )
            mbs_here.append(MicroBatchPlan(ids, lengths, seq_len))
        out.append(tuple(mbs_here))
    return DispatchPlan(plan, tuple(out))
