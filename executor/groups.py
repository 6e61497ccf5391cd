"""Ranks and process groups of a deployment plan.

Ranks are handed to replicas in plan.replicas order (smallest config first, the order replica ids use everywhere):
replica j owns ranks [base_j, base_j + tp*pp), stage s of it ranks base_j + s*tp .. + tp - 1, so a stage's TP ranks
are contiguous (one node in a multi-node launch). new_group is collective over the whole world, so every rank
creates every group, in the same order, even those it is not in.
"""

from __future__ import annotations

from dataclasses import dataclass

from lobra.costmodel import DeploymentPlan, ParallelConfig


@dataclass(frozen=True)
class Placement:
    """Where one rank sits: its replica, pipeline stage and TP index."""

    rank: int
    replica: int
    config: ParallelConfig
    stage: int
    tp_rank: int
    base: int  # the replica's first rank (its leader: stage 0, TP rank 0)

    @property
    def is_leader(self) -> bool:
        return self.rank == self.base

    @property
    def first_stage(self) -> bool:
        return self.stage == 0

    @property
    def last_stage(self) -> bool:
        return self.stage == self.config.pp - 1

    def stage_rank(self, stage: int) -> int:
        """The rank with this TP index on another stage of the same replica (pipeline neighbours)."""
        return self.base + stage * self.config.tp + self.tp_rank

    def stage_ranks(self, stage: int) -> list[int]:
        tp = self.config.tp
        return list(range(self.base + stage * tp, self.base + (stage + 1) * tp))


def placements(plan: DeploymentPlan) -> list[Placement]:
    """One Placement per rank, indexed by rank."""
    out: list[Placement] = []
    for replica, config in enumerate(plan.replicas):
        base = len(out)
        for stage in range(config.pp):
            for tp_rank in range(config.tp):
                out.append(Placement(len(out), replica, config, stage, tp_rank, base))
    return out


@dataclass
class ReplicaGroups:
    """The groups this rank belongs to: its replica's group and its stage's TP group (the same when pp = 1)."""

    replica: object
    tp: object
    tp_ranks: list[int]


def build_groups(plan: DeploymentPlan, rank: int, timeout=None) -> ReplicaGroups:
    """timeout: of every collective in the groups (a new group does not inherit the world's; torch's default is
    30 minutes)."""
    import torch.distributed as dist

    mine = placements(plan)[rank]
    replica_group = tp_group = None
    tp_ranks: list[int] = []
    for replica, config in enumerate(plan.replicas):
        ranks = [p.rank for p in placements(plan) if p.replica == replica]
        group = dist.new_group(ranks, timeout=timeout)
        if replica == mine.replica:
            replica_group = group
        for stage in range(config.pp):
            stage_ranks = ranks[stage * config.tp : (stage + 1) * config.tp]
            sub = group if config.pp == 1 else dist.new_group(stage_ranks, timeout=timeout)
            if replica == mine.replica and stage == mine.stage:
                tp_group, tp_ranks = sub, stage_ranks
    return ReplicaGroups(replica_group, tp_group, tp_ranks)
