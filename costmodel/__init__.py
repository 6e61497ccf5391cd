"""Calibrated cost model: hardware and model specs, ParallelConfig, per-layer time (fitted and analytical), memory."""

from costmodel.cost_model import CostModel
from costmodel.errors import CostModelError
from costmodel.layer_time import LayerTimeFit, fit_profile
from costmodel.memory import MemoryOptions, max_tokens
from costmodel.parallel import DeploymentPlan, ParallelConfig, parse_plan
from costmodel.replica_time import MicroBatch, ReplicaTime
from costmodel.specs import GPUSpec, ModelSpec, load_gpu_spec, load_model_spec

__all__ = [
    "CostModel",
    "CostModelError",
    "DeploymentPlan",
    "GPUSpec",
    "LayerTimeFit",
    "MemoryOptions",
    "MicroBatch",
    "ModelSpec",
    "ParallelConfig",
    "ReplicaTime",
    "fit_profile",
    "load_gpu_spec",
    "load_model_spec",
    "max_tokens",
    "parse_plan",
]
