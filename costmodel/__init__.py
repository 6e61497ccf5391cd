"""Calibrated cost model: hardware and model specs, ParallelConfig, per-layer time (fitted and analytical), memory,
and the overheads of a software stack as a value it is given."""

from lobra.costmodel.cost_model import CostModel
from lobra.costmodel.errors import CostModelError
from lobra.costmodel.layer_time import LayerTimeFit, fit_profile
from lobra.costmodel.memory import MemoryOptions, max_tokens
from lobra.costmodel.outer_time import OuterTimeFit
from lobra.costmodel.overheads import Overheads
from lobra.costmodel.parallel import DeploymentPlan, ParallelConfig, parse_plan
from lobra.costmodel.replica_time import MicroBatch, ReplicaTime
from lobra.costmodel.specs import GPUSpec, ModelSpec, load_gpu_spec, load_model_spec

__all__ = [
    "CostModel",
    "CostModelError",
    "DeploymentPlan",
    "GPUSpec",
    "LayerTimeFit",
    "MemoryOptions",
    "MicroBatch",
    "ModelSpec",
    "OuterTimeFit",
    "Overheads",
    "ParallelConfig",
    "ReplicaTime",
    "fit_profile",
    "load_gpu_spec",
    "load_model_spec",
    "max_tokens",
    "parse_plan",
]
