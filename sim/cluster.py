"""The cluster as a graph, and where each replica's GPUs sit.

networkx graph: one vertex per GPU, one switch per node; NVLink edges join each GPU to its node's switch, and each
GPU's NIC joins the inter-node fabric ("fabric" vertex) at the network bandwidth. Edge weights are 1 / bandwidth,
so the lightest path between two GPUs is the fastest one, and its slowest edge is the link bandwidth between them.

Placement: replicas largest first, each pipeline stage's TP group inside one node (TP never crosses nodes), the
stages of a replica on as few nodes as possible.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import networkx as nx
from lobra.costmodel import DeploymentPlan, GPUSpec, ParallelConfig
from lobra.sim.errors import SimError

FABRIC = "fabric"


@dataclass(frozen=True)
class Placement:
    replica: int
    config: ParallelConfig
    stages: tuple[tuple[int, ...], ...]  # GPU ids of each pipeline stage

    @property
    def gpus(self) -> tuple[int, ...]:
        return tuple(g for stage in self.stages for g in stage)


class Cluster:
    def __init__(self, gpu: GPUSpec, num_gpus: int, failed: frozenset[int] = frozenset()) -> None:
        if num_gpus < 1:
            raise SimError(f"a cluster needs at least one GPU, got {num_gpus}")
        self.gpu, self.num_gpus, self.failed = gpu, num_gpus, failed
        self.graph = nx.Graph()
        per_node = gpu.gpus_per_node
        for g in range(num_gpus):
            node = g // per_node
            self.graph.add_edge(g, f"node{node}", gbps=gpu.nvlink_gbps, weight=1 / gpu.nvlink_gbps)
            self.graph.add_edge(g, FABRIC, gbps=gpu.network_gbps, weight=1 / gpu.network_gbps)

    @property
    def alive(self) -> list[int]:
        return [g for g in range(self.num_gpus) if g not in self.failed]

    def node_of(self, gpu: int) -> int:
        return gpu // self.gpu.gpus_per_node

    def without(self, gpu: int) -> Cluster:
        return Cluster(self.gpu, self.num_gpus, self.failed | {gpu})

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - a cluster lives as long as its simulation
    def link_gbps(self, a: int, b: int) -> float:
        """Bandwidth of the fastest path between two GPUs: its slowest edge."""
        if a == b:
            return float("inf")
        path = nx.shortest_path(self.graph, a, b, weight="weight")
        return min(self.graph.edges[u, v]["gbps"] for u, v in zip(path, path[1:], strict=False))

    def place(self, plan: DeploymentPlan) -> list[Placement]:
        """GPUs for every replica (indexed like plan.replicas); raises when the plan does not fit."""
        free: dict[int, list[int]] = {}
        for g in self.alive:
            free.setdefault(self.node_of(g), []).append(g)
        order = sorted(range(plan.num_replicas), key=lambda r: (-plan.replicas[r].num_gpus, r))
        placed: dict[int, Placement] = {}
        for r in order:
            config = plan.replicas[r]
            stages = []
            for _ in range(config.pp):
                # the node with the fewest free GPUs that still holds a TP group: keeps big holes for big groups
                nodes = [n for n, gs in free.items() if len(gs) >= config.tp]
                if not nodes:
                    raise SimError(
                        f"plan {plan} does not fit {len(self.alive)} working GPUs in nodes of "
                        f"{self.gpu.gpus_per_node}: no node has {config.tp} free GPUs for a TP group"
                    )
                last = self.node_of(stages[-1][0]) if stages else None
                node = last if last in nodes else min(nodes, key=lambda n: (len(free[n]), n))
                stages.append(tuple(free[node][: config.tp]))
                free[node] = free[node][config.tp :]
            placed[r] = Placement(r, config, tuple(stages))
        return [placed[r] for r in range(plan.num_replicas)]

    def boundary_gbps(self, placement: Placement) -> list[float]:
        """Link bandwidth across each stage boundary of a replica."""
        return [
            self.link_gbps(a[0], b[0]) for a, b in zip(placement.stages, placement.stages[1:], strict=False)
        ]

    def spans_nodes(self, placements: list[Placement]) -> bool:
        return len({self.node_of(g) for p in placements for g in p.gpus}) > 1
