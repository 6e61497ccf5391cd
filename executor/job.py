"""The per-rank job: build the replica this rank belongs to, then run the steps, checkpointing as asked.

Seeds: one --seed drives the sampler, the synthetic ids, the base model's random init and every adapter's init, so
two runs with the same seed and tasks see the same data and start from the same weights whatever their plans.
"""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from lobra.executor.checkpoint import (
    check_fingerprint,
    gather_state,
    intact_checkpoint,
    load_checkpoint,
    restore_state,
    save_checkpoint,
)
from lobra.executor.data import DatasetTokens, SyntheticTokens, step_keys
from lobra.executor.errors import ExecutorError
from lobra.executor.groups import build_groups, placements
from lobra.executor.model import TORCH_DTYPES, AdapterSpec, Stage, build_base_model, inject_lora
from lobra.executor.parallel import apply_pp, apply_tp
from lobra.executor.peft_io import save_adapter
from lobra.executor.records import Records
from lobra.executor.resolve import ResolvedRun
from lobra.executor.step import Runtime, StepResult, train_step
from lobra.executor.sync import FlatLayout, LoraState
from lobra.policies.dispatchers import get_dispatcher
from lobra.policies.types import StepItem
from lobra.traces import StepSampler

from lobra.io import atomic_write


def build_runtime(run: ResolvedRun, rank: int, device: torch.device) -> Runtime:
    cfg = run.config
    place = placements(run.plan)[rank]
    groups = build_groups(run.plan, rank, timedelta(seconds=run.collective_timeout_s))
    adapters = [AdapterSpec.of(t) for t in run.workload]
    model = build_base_model(run.model, run.weights_dir, cfg.seed, TORCH_DTYPES[run.dtype], device)
    batch = inject_lora(model, adapters, cfg.seed)
    apply_pp(model, place.config.pp, place.stage)
    if place.config.tp > 1:
        from torch.distributed.device_mesh import DeviceMesh

        apply_tp(model, DeviceMesh.from_group(groups.tp, device.type), groups.tp)
    lora = LoraState(FlatLayout(adapters, run.model), model, place)
    optimizers = {
        a.name: torch.optim.AdamW(lora.params(a.name), lr=cfg.lr, weight_decay=0.0) for a in adapters
    }
    vocab = run.model.vocab_size
    source = DatasetTokens(cfg.data, vocab, cfg.seed) if cfg.data else SyntheticTokens(vocab, cfg.seed)
    return Runtime(
        run=run,
        place=place,
        stage=Stage(model, checkpoint=place.config.ckpt),
        batch=batch,
        lora=lora,
        optimizers=optimizers,
        tasks=[t.name for t in run.workload],
        source=source,
        device=device,
        dispatcher=get_dispatcher(cfg.dispatcher, cfg.dispatch),
    )


def train(rt: Runtime) -> None:
    run, cfg, rank = rt.run, rt.run.config, dist.get_rank()
    sampler = StepSampler(run.workload, seed=cfg.seed)
    records = Records()
    optimizer_steps = dict.fromkeys(rt.tasks, 0)
    start = 0
    if cfg.resume:
        path, _ = intact_checkpoint(cfg.checkpoint_dir)  # the one the launcher checked (and said why)
        if path is None:
            raise ExecutorError(f"--resume: no intact checkpoint under {cfg.checkpoint_dir}")
        tensors, state, records = load_checkpoint(path)
        check_fingerprint(state.get("fingerprint", {}), run.fingerprint, path)
        sampler = StepSampler.from_state(run.workload, state["sampler"])
        optimizer_steps = {t: int(state["optimizer_steps"].get(t, 0)) for t in rt.tasks}
        restore_state(rt.lora, rt.optimizers, tensors, optimizer_steps)
        start = int(state["step"])
        _log(rank, f"resumed from {path} after step {start}")
    step = start
    while step < cfg.steps and not sampler.done:
        task_steps = {name: sampler.steps_done(name) for name in rt.tasks}
        raw = sampler.next_step()
        items = [StepItem(task, int(n)) for task, n in raw]
        hook = FAILURES[cfg.fail_mode] if cfg.fail_at_step == step and rank == cfg.fail_rank else None
        result = train_step(rt, items, step_keys(raw, task_steps), hook)
        for task, n in result.targets.items():
            optimizer_steps[task] += int(n > 0)
        if rank == 0:
            records.add_step(
                step,
                result.dispatch,
                result.replica_busy_s,
                result.micro_batch_s,
                result.last_stage_s,
                result.step_time_s,
                result.losses,
                result.targets,
            )
            _log_step(step, result)
            if cfg.dump_grads:
                _dump_grads(rt, cfg.out_dir / "grads" / f"step_{step}.safetensors", result)
        step += 1
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or sampler.done:
            _checkpoint(rt, step, sampler, optimizer_steps, records)
    tensors = gather_state(rt.lora, rt.optimizers)
    if rank == 0:
        _write_adapters(rt, tensors["params"], cfg.out_dir / "adapters")
        records.write(cfg.out_dir)
        summary = {"steps_done": step, "plan": str(run.plan), "model": run.model_name, "dtype": run.dtype}
        atomic_write(cfg.out_dir / "run.json", lambda tmp: tmp.write_text(json.dumps(summary, indent=1)))
        _log(rank, f"wrote {cfg.out_dir}/adapters and the records")


def _checkpoint(
    rt: Runtime, step: int, sampler: StepSampler, optimizer_steps: dict, records: Records
) -> None:
    tensors = gather_state(rt.lora, rt.optimizers)  # collective: every rank takes part
    if dist.get_rank() != 0:
        return
    state = {
        "sampler": sampler.state(),
        "optimizer_steps": optimizer_steps,
        "fingerprint": rt.run.fingerprint,
        "plan": str(rt.run.plan),
    }
    cfg = rt.run.config
    save_checkpoint(
        cfg.checkpoint_dir,
        step,
        tensors,
        state,
        records,
        lambda folder: _write_adapters(rt, tensors["params"], folder),
        cfg.keep_checkpoints,
    )


def _write_adapters(rt: Runtime, params: torch.Tensor, folder: Path) -> None:
    layout = rt.lora.layout
    for task in rt.run.workload:
        spec = AdapterSpec.of(task)
        save_adapter(folder / task.name, spec, layout.task_tensors(params, task.name), rt.run.model_name)


def _dump_grads(rt: Runtime, path: Path, result: StepResult) -> None:
    from safetensors.torch import save_file

    tensors = {}
    for task in rt.tasks:
        for key, value in rt.lora.layout.task_tensors(result.grads, task).items():
            tensors[f"{task}/{key}"] = value.detach().cpu().contiguous().clone()
    for task, loss in result.losses.items():
        tensors[f"{task}/loss"] = torch.tensor([loss], dtype=torch.float64)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp)))


def _crash(micro_batch: int) -> None:
    """--fail-at-step: die like a killed process, mid-step, after the first micro-batch's forward pass."""
    os._exit(1)


def _stall(micro_batch: int) -> None:
    """--fail-at-step --fail-mode stall: hang there like a stopped process (SIGSTOP) until killed."""
    time.sleep(24 * 3600)


FAILURES = {"crash": _crash, "stall": _stall}


def _log(rank: int, message: str) -> None:
    if rank == 0:
        print(f"[executor] {message}", flush=True)


def _log_step(step: int, result: StepResult) -> None:
    losses = ", ".join(f"{t} {v:.4f}" for t, v in result.losses.items())
    busy = " ".join(f"{b:.3f}" for b in result.replica_busy_s)
    print(f"[executor] step {step}: {result.step_time_s:.3f} s (busy {busy}), loss {losses}", flush=True)
