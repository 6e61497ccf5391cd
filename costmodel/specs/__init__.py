from lobra.costmodel.specs.gpus import GPUS, GPUSpec, load_gpu_spec
from lobra.costmodel.specs.models import MODEL_CONFIGS, ModelSpec, load_model_spec

__all__ = ["GPUS", "GPUSpec", "MODEL_CONFIGS", "ModelSpec", "load_gpu_spec", "load_model_spec"]
