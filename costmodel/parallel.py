"""ParallelConfig and deployment plans: the one vocabulary of parallelism shared by every part of lobra.

A replica is one model copy with one ParallelConfig; a deployment plan is a multiset of configs, written
`<tp,pp>xN ...` (e.g. `<1,1>x6 <2,1>x1 <8,1>x1`); a replica that checkpoints its activations (it keeps each layer's
input only and recomputes the layer's forward in its backward) is written `<tp,pp,ckpt>`.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass

from lobra.costmodel.errors import CostModelError


@dataclass(frozen=True, order=True)
class ParallelConfig:
    """Tensor- and pipeline-parallel degrees of one replica (tp * pp GPUs), and whether it checkpoints
    activations."""

    tp: int = 1
    pp: int = 1
    ckpt: bool = False

    def __post_init__(self) -> None:
        for name in ("tp", "pp"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise CostModelError(f"ParallelConfig.{name} must be a positive integer, got {value!r}")
        if not isinstance(self.ckpt, bool):
            raise CostModelError(f"ParallelConfig.ckpt must be True or False, got {self.ckpt!r}")

    @property
    def num_gpus(self) -> int:
        return self.tp * self.pp

    def check_fits(self, *, num_layers: int, num_heads: int, num_kv_heads: int, gpus_per_node: int) -> None:
        """Raise unless this config can shard the model: TP divides the heads and stays in a node,
        PP does not exceed the layers."""
        if num_heads % self.tp:
            raise CostModelError(f"tp={self.tp} does not divide the model's {num_heads} attention heads")
        if num_kv_heads % self.tp and self.tp % num_kv_heads:
            # GQA: each TP rank needs whole KV heads, or replicas of them when tp > num_kv_heads.
            raise CostModelError(f"tp={self.tp} does not divide the model's {num_kv_heads} key/value heads")
        if self.tp > gpus_per_node:
            raise CostModelError(f"tp={self.tp} spans nodes: TP stays inside a node of {gpus_per_node} GPUs")
        if self.pp > num_layers:
            raise CostModelError(f"pp={self.pp} exceeds the model's {num_layers} layers")

    def stage_layers(self, num_layers: int) -> tuple[int, ...]:
        """Decoder layers on each pipeline stage, contiguous from the first: the first num_layers % pp stages hold
        one more, so an uneven split leaves the extra layers off the last stage, which also runs the LM head."""
        return _stage_layers(num_layers, self.pp)

    def __str__(self) -> str:
        return f"<{self.tp},{self.pp},ckpt>" if self.ckpt else f"<{self.tp},{self.pp}>"


@functools.lru_cache(maxsize=1024)  # on the simulator's hot path: once per micro-batch
def _stage_layers(num_layers: int, pp: int) -> tuple[int, ...]:
    per, extra = divmod(num_layers, pp)
    return tuple(per + (k < extra) for k in range(pp))


_ENTRY = re.compile(r"<\s*(\d+)\s*,\s*(\d+)\s*(,\s*ckpt\s*)?>\s*(?:[xX*]\s*(\d+))?")


@dataclass(frozen=True)
class DeploymentPlan:
    """A multiset of replica configs, stored as sorted (config, count) pairs so equal plans compare equal."""

    entries: tuple[tuple[ParallelConfig, int], ...]

    def __post_init__(self) -> None:
        if not self.entries:
            raise CostModelError("a deployment plan needs at least one replica")
        for config, count in self.entries:
            if not isinstance(config, ParallelConfig):
                raise CostModelError(f"plan entry {config!r} is not a ParallelConfig")
            if not isinstance(count, int) or count < 1:
                raise CostModelError(
                    f"plan entry {config} has count {count!r}; counts must be positive integers"
                )
        configs = [c for c, _ in self.entries]
        if len(set(configs)) != len(configs) or configs != sorted(configs):
            raise CostModelError(
                "plan entries must be sorted and unique; build plans with DeploymentPlan.of()"
            )

    @classmethod
    def of(cls, configs) -> DeploymentPlan:
        """Build from an iterable of ParallelConfig (one per replica) or a {config: count} mapping."""
        counts = Counter(configs)
        return cls(tuple(sorted((c, int(n)) for c, n in counts.items() if n)))

    @property
    def replicas(self) -> list[ParallelConfig]:
        """One config per replica, smallest first: replica ids index this list everywhere."""
        return [config for config, count in self.entries for _ in range(count)]

    @property
    def num_replicas(self) -> int:
        return sum(count for _, count in self.entries)

    @property
    def num_gpus(self) -> int:
        return sum(config.num_gpus * count for config, count in self.entries)

    def __str__(self) -> str:
        return " ".join(f"{config}x{count}" for config, count in self.entries)


def parse_plan(text: str) -> DeploymentPlan:
    """Parse `<tp,pp>xN ...` or `<tp,pp,ckpt>xN ...` (the `xN` may be left out for one replica; entries may
    repeat)."""
    if not isinstance(text, str) or not text.strip():
        raise CostModelError("empty plan string; expected e.g. '<1,1>x6 <2,1>x1 <8,1>x1'")
    counts: Counter[ParallelConfig] = Counter()
    pos = 0
    body = text.strip()
    while pos < len(body):
        match = _ENTRY.match(body, pos)
        if match is None:
            raise CostModelError(
                f"cannot parse plan {text!r} at {body[pos:]!r}; expected entries like '<tp,pp>xN', "
                "e.g. '<1,1>x6 <2,1>x1 <8,1>x1'"
            )
        tp, pp, ckpt, count = int(match[1]), int(match[2]), match[3] is not None, int(match[4] or 1)
        if count < 1:
            raise CostModelError(f"plan {text!r}: replica count must be at least 1, got {count}")
        counts[ParallelConfig(tp, pp, ckpt)] += count
        pos = match.end()
        while pos < len(body) and body[pos] in " \t,;+":
            pos += 1
    return DeploymentPlan.of(counts)
