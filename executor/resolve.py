"""Resolve an ExecutorConfig against the world: tasks, model, plan, cost model, device, checkpoints.

Run once by the CLI before launching (so bad input fails with one line and nothing written) and again by every rank
(cheap, and the ranks may have been started by a plain torchrun).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from lobra.costmodel import CostModel, DeploymentPlan, MemoryOptions, ModelSpec, load_model_spec, parse_plan
from lobra.costmodel.errors import CostModelError
from lobra.executor.config import DEFAULT_COLLECTIVE_TIMEOUT_S, DEFAULT_MODEL, ExecutorConfig
from lobra.executor.errors import ExecutorError
from lobra.traces import Workload, load_scenario, load_workload
from lobra.traces.tasks import LORA_TARGETS

from lobra.io import check_writable

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# Detected CUDA device names -> the cost model's GPU specs (the dispatcher needs max_tokens per config).
CUDA_GPU_NAMES = (("H200", "h200-141gb"), ("H100", "h100-80gb"), ("A800", "a800-80gb"), ("A100", "a100-80gb"))


@dataclass(frozen=True, eq=False)
class ResolvedRun:
    config: ExecutorConfig
    workload: Workload
    model_name: str
    model: ModelSpec
    weights_dir: Path | None  # a local directory with weights: from_pretrained; else random init from config
    plan: DeploymentPlan
    cost: CostModel
    device: str  # "cpu" or "cuda"
    dtype: str  # "float32", "float64" or "bfloat16"

    @property
    def collective_timeout_s(self) -> float:
        return self.config.collective_timeout or DEFAULT_COLLECTIVE_TIMEOUT_S[self.device]

    @property
    def fingerprint(self) -> dict:
        """What a checkpoint must share with the run that resumes it (the plan, lr and dtype may differ)."""
        tasks = [[t.name, t.spec.rank, float(t.spec.alpha), list(t.spec.targets)] for t in self.workload]
        return {"model": self.model_name, "seed": self.config.seed, "tasks": tasks}


def resolve(cfg: ExecutorConfig, world_size: int, *, check_outputs: bool = True) -> ResolvedRun:
    if cfg.scenario is not None:
        scenario = load_scenario(cfg.scenario)
        workload, model_name = scenario.workload, cfg.model or scenario.model
    else:
        if not Path(cfg.tasks).is_file():
            raise ExecutorError(f"tasks file {cfg.tasks!r} does not exist or is not a file")
        workload, model_name = load_workload(cfg.tasks), cfg.model or DEFAULT_MODEL
    model = load_model_spec(model_name)
    if model.arch not in ("llama", "qwen2"):
        raise ExecutorError(f"model {model_name!r}: the executor runs llama and qwen2 models only")
    positions = model.config.get("max_position_embeddings")
    for task in workload:
        longest = int(task.lengths.max())
        if positions is not None and longest > positions:
            raise ExecutorError(
                f"task {task.name!r}: sequences of up to {longest} tokens, but {model.name} has"
                f" max_position_embeddings {positions} (lower the task's max_len)"
            )
    weights_dir = None
    path = Path(model_name)
    if path.is_dir() and any((path / f).is_file() for f in WEIGHT_FILES):
        weights_dir = path
    device = _device(cfg.device)
    dtype = cfg.dtype if cfg.dtype != "auto" else ("bfloat16" if device == "cuda" else "float32")
    gpu = cfg.gpu or ("cpu" if device == "cpu" else _cuda_gpu_name())
    ranks = max(t.spec.rank for t in workload)
    targets = tuple(m for m in LORA_TARGETS if any(m in t.spec.targets for t in workload))
    memory = MemoryOptions(num_tasks=len(workload), lora_rank=ranks, lora_targets=targets)
    cost = CostModel.build(model, gpu, profile=cfg.profile, memory=memory)
    plan = parse_plan(cfg.plan)
    if plan.num_gpus != world_size:
        raise ExecutorError(f"plan {plan} uses {plan.num_gpus} GPUs but the run has {world_size} ranks")
    for config in plan.replicas:
        try:
            cost.check_config(config)
        except CostModelError as err:
            raise ExecutorError(f"plan {plan}: replica {config}: {err}") from None
        if model.num_kv_heads % config.tp:
            raise ExecutorError(
                f"plan {plan}: replica {config}: tp={config.tp} does not divide the {model.num_kv_heads} "
                "key/value heads (the executor does not replicate KV heads)"
            )
        if cost.max_tokens(config) == 0:
            raise ExecutorError(f"plan {plan}: replica {config} cannot hold {model.name} on {gpu}")
    from lobra.policies.dispatchers import get_dispatcher
    from lobra.policies.dispatchers.base import check_capacity

    get_dispatcher(cfg.dispatcher, cfg.dispatch)  # unknown names and refused settings fail here
    check_capacity(workload.longest, plan, cost, cfg.dispatch.beyond_capacity)  # not at step 40
    if cfg.data is not None:
        from lobra.executor.data import dataset_file

        for task in workload:
            dataset_file(cfg.data, task.name)  # raises naming the missing file
    run = ResolvedRun(cfg, workload, model_name, model, weights_dir, plan, cost, device, dtype)
    if check_outputs:
        _check_outputs(run)
    return run


def _device(choice: str) -> str:
    if choice == "cpu":
        return "cpu"
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise ExecutorError("--device cuda: no CUDA device is available here")
    return "cuda" if torch.cuda.is_available() else "cpu"


def _cuda_gpu_name() -> str:
    import torch

    name = torch.cuda.get_device_name(0)
    for marker, spec in CUDA_GPU_NAMES:
        if marker in name:
            return spec
    raise ExecutorError(f"unknown CUDA device {name!r}; name the cost model's GPU with --gpu")


def _check_outputs(run: ResolvedRun) -> None:
    """--out can be written, holds no checkpoints unless resuming, and resuming has an intact one of this run."""
    from lobra.executor.checkpoint import check_fingerprint, checkpoint_dirs, intact_checkpoint, read_state

    cfg = run.config
    check_writable(cfg.out_dir)
    if not cfg.resume:
        if checkpoint_dirs(cfg.checkpoint_dir):
            raise ExecutorError(
                f"{cfg.checkpoint_dir} already holds checkpoints; pass --resume or choose another --out"
            )
        return
    path, damaged = intact_checkpoint(cfg.checkpoint_dir)
    if path is None:
        found = f" ({'; '.join(damaged)})" if damaged else ""
        raise ExecutorError(f"--resume: no intact checkpoint under {cfg.checkpoint_dir}{found}")
    for line in damaged:
        sys.stderr.write(
            f"lobra: execute: passing over damaged checkpoint {line}; resuming from {path.name}\n"
        )
    check_fingerprint(read_state(path).get("fingerprint", {}), run.fingerprint, path)
