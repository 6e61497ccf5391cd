"""Accelerator specs: public datasheet figures (dense bf16, SXM parts) and this machine's CPU.

Bandwidths are per direction in GB/s (1e9 bytes/s): NVLink per-direction is half the bidirectional datasheet figure;
the network is one NIC per GPU (200 Gb/s in the A100 era, 400 Gb/s in the H100 era). Memory is in GiB as the
devices report it (HBM stacks are power-of-two sized; the H200 shows ~140 GiB of its 141 GB).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from lobra.costmodel.errors import CostModelError


@dataclass(frozen=True)
class GPUSpec:
    name: str
    peak_tflops: float  # dense bf16 (fp32 for the CPU)
    memory_gib: float
    hbm_gbps: float  # device memory bandwidth
    nvlink_gbps: float  # intra-node link, per direction
    network_gbps: float  # inter-node link per GPU, per direction
    gpus_per_node: int

    def __post_init__(self) -> None:
        for key, value in asdict(self).items():
            if key != "name" and (not isinstance(value, int | float) or value <= 0):
                raise CostModelError(f"GPU {self.name!r}: {key} must be positive, got {value!r}")
        if not isinstance(self.gpus_per_node, int):
            raise CostModelError(f"GPU {self.name!r}: gpus_per_node must be an integer")

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gib * 2**30)

    def node_layout(self, num_gpus: int) -> str:
        """How num_gpus GPUs sit in nodes: full nodes of gpus_per_node, and a smaller last node for the rest (a
        partial node is allowed; a tensor-parallel group never spans nodes)."""
        full, rest = divmod(num_gpus, self.gpus_per_node)
        parts = [f"{full} node{'s' if full != 1 else ''} of {self.gpus_per_node}"] if full else []
        return " + ".join(parts + ([f"1 node of {rest}"] if rest else []))

    def link_gbps(self, spans_nodes: bool) -> float:
        return self.network_gbps if spans_nodes else self.nvlink_gbps


GPUS: dict[str, GPUSpec] = {
    spec.name: spec
    for spec in [
        GPUSpec("a100-40gb", 312.0, 40.0, 1555.0, 300.0, 25.0, 8),
        GPUSpec("a100-80gb", 312.0, 80.0, 2039.0, 300.0, 25.0, 8),
        GPUSpec("a800-80gb", 312.0, 80.0, 2039.0, 200.0, 25.0, 8),
        GPUSpec("h100-80gb", 989.0, 80.0, 3350.0, 450.0, 50.0, 8),
        GPUSpec("h200-141gb", 989.0, 140.0, 4800.0, 450.0, 50.0, 8),
        # This machine's CPU as one "GPU" per rank. Nominal figures for a 2-core x86 VM (fp32 AVX2 FMA at ~3 GHz,
        # DRAM and gloo-over-loopback bandwidths); `lobra calibrate --device cpu` measures them and the profile
        # it writes replaces this estimate wherever it is used.
        GPUSpec("cpu", 0.1, 24.0, 10.0, 2.0, 2.0, 2),
    ]
}


def load_gpu_spec(name_or_path: str) -> GPUSpec:
    """A built-in GPU by name, or a JSON file with GPUSpec's fields (what calibration writes)."""
    if name_or_path in GPUS:
        return GPUS[name_or_path]
    path = Path(name_or_path)
    if path.suffix == ".json":
        if not path.is_file():
            raise CostModelError(f"GPU spec {str(path)!r} does not exist")
        try:
            payload = json.loads(path.read_text())
            # Calibration adds a "measured" record beside the spec's fields; keep only the fields.
            return GPUSpec(**{f.name: payload[f.name] for f in fields(GPUSpec)})
        except (json.JSONDecodeError, TypeError, KeyError) as err:
            raise CostModelError(f"GPU spec {str(path)!r} is malformed: {err}") from None
    raise CostModelError(f"unknown GPU {name_or_path!r}; choose from {', '.join(GPUS)} or a spec .json path")
