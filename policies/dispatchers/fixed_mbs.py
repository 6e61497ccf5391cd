"""The what-if dispatcher (`fixed-mbs`): every micro-batch holds the settings' `mbs` sequences.

`lobra simulate --plan PLAN --workload fixed:LEN --global-batch B --mbs K` asks how long a step of B sequences is
when each replica runs micro-batches of K of them: the question a profile or the cost model answers for one
micro-batch shape, so on one replica the simulated step reproduces the cost model's replica arithmetic exactly.
Sequences are dealt round-robin over the replicas whatever their speed; overflow handling and buckets do not
apply (a micro-batch is as long as its longest sequence).
"""

from __future__ import annotations

from collections.abc import Sequence

from lobra.costmodel import CostModel, DeploymentPlan
from lobra.policies.dispatchers.base import DISPATCHERS, Dispatcher
from lobra.policies.registry import PolicyError
from lobra.policies.types import DispatchPlan, MicroBatchPlan, StepItem


@DISPATCHERS.register("fixed-mbs")
class FixedMbsDispatcher(Dispatcher):
    takes_mbs = True

    def dispatch(
        self,
        items: Sequence[StepItem],
        plan: DeploymentPlan,
        cost: CostModel,
    ) -> DispatchPlan:
        shares: list[list[int]] = [[] for _ in plan.replicas]
        for i in range(len(items)):
            shares[i % plan.num_replicas].append(i)
        size = self.config.mbs
        per_replica = []
        for config, share in zip(plan.replicas, shares, strict=True):
            micro_batches = []
            for k in range(0, len(share), size):
                ids = tuple(share[k : k + size])
                lengths = tuple(items[i].length for i in ids)
                mb = MicroBatchPlan(ids, lengths, max(lengths), packed=self.config.packing)
                if mb.tokens > cost.max_tokens(config):
                    shape = f"{sum(lengths)} packed" if mb.packed else f"{size} x {mb.seq_len}"
                    raise PolicyError(
                        f"a micro-batch of {shape} tokens does not fit {config} "
                        f"(max_tokens {cost.max_tokens(config)})"
                    )
                micro_batches.append(mb)
            per_replica.append(tuple(micro_batches))
        return DispatchPlan(plan, tuple(per_replica))
