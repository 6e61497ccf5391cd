"""Calibrating the CPU cost model with the executor's own code: `lobra calibrate --device cpu --target executor`.

The layer profile of costmodel/calibrate.py times one bare decoder layer. On a CPU with the tiny model that is a small
part of what the executor spends per micro-batch: the embedding, the LM head and the loss, and the Python of the
multi-LoRA layers and of the model's forward dominate. Here the executor's own replica (executor.job.build_runtime)
runs whole micro-batches through executor.pipeline.run_replica, and each is written per layer (the micro-batch's
time / num_layers) in the profile schema tp,seq_len,mbs,time: the fitted cost model then gives back the whole
micro-batch (stage time = layer time x layers / pp) and the rest of the cost model is unchanged.

What a step adds on top (costmodel/host.py) is measured by the same code with R = 1..max_ranks ranks: the slowdown of
compute when R single-threaded ranks share the cores, the LoRA-gradient sync (LoraState.reduce_grads) and the AdamW
steps. Each job is one torchrun launch of this module with gloo and OMP_NUM_THREADS=1, as `lobra execute` runs:

- `<1,1>x1`: the tp=1 grid, and the host effects of 1 rank;
- `<2,1>x1`: the tp=2 grid (the executor's tensor parallelism over gloo);
- `<1,1>xR`, R = 2..max_ranks: the host effects of R ranks.

Times are medians over repeats: this machine is shared, the executor's real steps run under the same background
load, and the median is what a typical step sees (the minimum, also written, would describe an idle machine).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from costmodel import LayerTimeFit, fit_profile, parse_plan
from costmodel.host import INDEPENDENT, HostModel
from costmodel.specs import load_model_spec
from executor.errors import ExecutorError
from executor.launch import free_port
from executor.records import atomic_write

DEFAULT_SEQ_LENS = (32, 64, 128, 256, 384, 512, 768, 1024)
DEFAULT_MBS = (1, 2, 4, 8)
# A tiny-cpu step holds 32 sequences of at most 1,024 tokens in up to 16 length buckets, so its micro-batches stay
# well under 4,096 tokens; bigger grid points would only lengthen the calibration.
MAX_MB_TOKENS = 4096
# A step-like mix of micro-batches (seq_len, mbs), timed as one block alone and with R ranks at once (contention).
REFERENCE_BLOCK = ((1024, 1), (512, 2), (256, 4), (128, 4), (64, 2))
DEFAULT_SCENARIO = "tiny-cpu"
# Replica kinds whose contention is measured: independent ranks, a TP pair, a two-stage pipeline.
HOST_CONFIGS = (INDEPENDENT, "<2,1>", "<1,2>")


@dataclass
class ExecutorCalibration:
    profile: pd.DataFrame
    fit: LayerTimeFit
    host: HostModel
    elapsed_s: float
    profile_path: Path
    fit_path: Path
    host_path: Path


def grid_points(seq_lens, mbs, max_tokens: int = MAX_MB_TOKENS) -> list[tuple[int, int]]:
    points = [(s, b) for s in seq_lens for b in mbs if s * b <= max_tokens]
    if len(points) < 6:
        raise ExecutorError(
            f"the calibration grid has {len(points)} points under {max_tokens} tokens; need 6"
        )
    return points


def calibration_jobs(max_ranks: int, tps=(1, 2), host_configs=HOST_CONFIGS) -> list[dict]:
    """The torchrun jobs: a grid job per tp (its replica alone), and per host config c and rank count R a job of c
    beside R - |c| independent <1,1> ranks (grid and host measurements share a job where they can)."""
    jobs: dict[str, dict] = {}
    for tp in tps:
        jobs[f"<{tp},1>x1"] = {"plan": f"<{tp},1>x1", "nproc": tp, "grid": True, "host": None}
    for config in host_configs:
        c = parse_plan(config).replicas[0]
        for ranks in range(c.num_gpus, max_ranks + 1):
            plan = str(parse_plan(f"{c}x1 <1,1>x{ranks - c.num_gpus}" if ranks > c.num_gpus else f"{c}x1"))
            job = jobs.setdefault(plan, {"plan": plan, "nproc": ranks, "grid": False, "host": None})
            job["host"] = str(c)
    return list(jobs.values())


def calibrate_executor(
    out_dir: str | Path,
    *,
    scenario: str = DEFAULT_SCENARIO,
    model: str | None = None,
    seq_lens=DEFAULT_SEQ_LENS,
    mbs=DEFAULT_MBS,
    repeats: int = 5,
    max_ranks: int = 4,
    tps: tuple[int, ...] = (1, 2),
    host_configs: tuple[str, ...] = HOST_CONFIGS,
    progress: bool = True,
) -> ExecutorCalibration:
    """Run the calibration jobs here and write <model>_cpu_layer_time.csv, its fit and <model>_cpu_host.json."""
    from tqdm import tqdm

    from traces import load_scenario

    if repeats < 1 or max_ranks < 1:
        raise ExecutorError(f"--repeats and --max-ranks must be at least 1, got {repeats}, {max_ranks}")
    if INDEPENDENT not in host_configs:
        raise ExecutorError(f"the host measurements need {INDEPENDENT} (independent ranks)")
    model_name = model or load_scenario(scenario).model
    spec = load_model_spec(model_name)
    points = grid_points(seq_lens, mbs)
    jobs = calibration_jobs(max_ranks, tps, host_configs)
    start = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="lobra-calibrate-") as tmp:
        for k, job in enumerate(tqdm(jobs, desc="calibrate executor on cpu", disable=not progress)):
            result = Path(tmp) / f"job{k}.json"
            argv = ["--plan", job["plan"], "--scenario", scenario, "--model", model_name]
            argv += ["--result", str(result), "--repeats", str(repeats)]
            argv += ["--points", json.dumps(points if job["grid"] else [])]
            argv += ["--host", job["host"]] if job["host"] else []
            _run_job(argv, job["nproc"], Path(tmp) / f"job{k}.log")
            results.append(json.loads(result.read_text()))
    elapsed = time.perf_counter() - start

    rows = [row for r in results for row in r["grid"]]
    for row in rows:  # the micro-batch's time over the model's layers: the profile's unit
        row["time"], row["time_min"] = row["time"] / spec.num_layers, row["time_min"] / spec.num_layers
    profile = pd.DataFrame(rows, columns=["tp", "seq_len", "mbs", "time", "time_min"])
    hosts = [r["host"] for r in results if r["host"]]
    slowdown: dict[str, dict[int, float]] = {}
    for h in hosts:
        slowdown.setdefault(h["config"], {})[h["ranks"]] = h["slowdown"]
    # The sync and the optimizer are measured in every job; those of independent ranks stand for each rank count.
    independent = {h["ranks"]: h for h in hosts if h["config"] == INDEPENDENT}
    host = HostModel(
        cores=len(os.sched_getaffinity(0)),
        slowdown={c: dict(sorted(t.items())) for c, t in slowdown.items()},
        sync_s={r: h["sync_s"] for r, h in sorted(independent.items())},
        optimizer_s={r: h["optimizer_s"] for r, h in sorted(independent.items())},
        source=f"lobra calibrate --device cpu --target executor --scenario {scenario}",
    )
    out = Path(out_dir)
    stem = f"{spec.name}_cpu".replace(".", "_").replace("-", "_")
    profile_path, fit_path, host_path = (
        out / f"{stem}_layer_time.csv",
        out / f"{stem}_fit.json",
        out / f"{stem}_host.json",
    )
    fit = fit_profile(profile[["tp", "seq_len", "mbs", "time"]], source=profile_path.name)
    atomic_write(profile_path, lambda p: profile.round(6).to_csv(p, index=False))
    atomic_write(fit_path, fit.to_json)
    measured = {
        "measured": {
            "date": time.strftime("%Y-%m-%d"),
            "seconds": round(elapsed, 1),
            "repeats": repeats,
            "grid_points": len(points),
            "block": [list(b) for b in REFERENCE_BLOCK],
            "jobs": [
                {
                    "plan": j["plan"],
                    "load_avg_1m": r["load_avg_1m"],
                    **({"host": r["host"]} if r["host"] else {}),
                }
                for j, r in zip(jobs, results, strict=True)
            ],
        }
    }
    atomic_write(host_path, lambda p: host.to_json(p, measured))
    return ExecutorCalibration(profile, fit, host, elapsed, profile_path, fit_path, host_path)


def _run_job(argv: list[str], nproc: int, log: Path) -> None:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"  # as executor.launch runs the ranks
    env.setdefault("TRANSFORMERS_VERBOSITY", "error")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(nproc)]
    command += ["--master-addr", "127.0.0.1", "--master-port", str(free_port()), "-m", "executor.calibrate"]
    with open(log, "w") as sink:
        rc = subprocess.run(command + argv, env=env, stdout=sink, stderr=subprocess.STDOUT).returncode
    if rc:
        lines = log.read_text().splitlines()
        errors = [line for line in lines if re.search(r"\w+(Error|Exception): ", line)] or lines[-1:]
        raise ExecutorError(
            f"calibration job {argv[1]} failed (exit status {rc}): {(errors or ['(no output)'])[-1].strip()}"
        )


# -- per rank ------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m executor.calibrate", description="one calibration rank")
    parser.add_argument("--plan", required=True)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--points", default="[]", help="JSON list of [seq_len, mbs]")
    parser.add_argument("--host", help="also measure the slowdown of this replica config, sync and optimizer")
    args = parser.parse_args(argv)

    import torch
    import torch.distributed as dist

    from executor.config import ExecutorConfig
    from executor.job import build_runtime
    from executor.resolve import resolve

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ExecutorConfig(
            plan=args.plan, steps=1, scenario=args.scenario, model=args.model, out=tmp, device="cpu"
        )
        run = resolve(cfg, world, check_outputs=False)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    dist.init_process_group("gloo")
    try:
        rt = build_runtime(run, rank, torch.device("cpu"))
        load = os.getloadavg()[0]
        grid = [_time_point(rt, s, b, args.repeats) for s, b in json.loads(args.points)]
        host = _time_host(rt, args.host, args.repeats, world) if args.host else None
        if rank == 0:
            result = {"grid": grid, "host": host, "load_avg_1m": round(load, 2)}
            atomic_write(Path(args.result), lambda p: p.write_text(json.dumps(result)))
    finally:
        dist.destroy_process_group()
    return 0


def _micro_batch(rt, seq_len: int, mbs: int):
    """A micro-batch of mbs full-length sequences, tasks dealt round-robin (real micro-batches mix tasks)."""
    from executor.data import build_micro_batch
    from policies.types import MicroBatchPlan, StepItem

    items = [StepItem(rt.tasks[k % len(rt.tasks)], seq_len) for k in range(mbs)]
    keys = [(it.task, 0, k) for k, it in enumerate(items)]
    targets: dict[str, int] = {}
    for it in items:
        targets[it.task] = targets.get(it.task, 0) + seq_len - 1
    plan = MicroBatchPlan(tuple(range(mbs)), (seq_len,) * mbs, seq_len)
    dtype = rt.lora.bindings[0].param.dtype
    return build_micro_batch(plan, items, keys, rt.source, rt.tasks, targets, rt.device, dtype)


def _run(rt, mbs: list) -> float:
    """Forward+backward of these micro-batches on this rank's replica, by the executor's own loop: busy seconds."""
    from executor.pipeline import run_replica

    return run_replica(rt.stage, rt.batch, mbs, rt.place, len(rt.tasks), rt.device).busy_s


def _time_point(rt, seq_len: int, mbs: int, repeats: int) -> dict:
    import torch.distributed as dist

    mb = _micro_batch(rt, seq_len, mbs)
    samples = []
    for i in range(repeats + 1):  # the first run warms up allocators
        dist.barrier()  # TP ranks start together, as in a step
        t = _run(rt, [mb])
        if i:
            samples.append(t * 1e3)
    return {
        "tp": rt.place.config.tp,
        "seq_len": seq_len,
        "mbs": mbs,
        "time": statistics.median(samples),
        "time_min": min(samples),
    }


def _time_host(rt, config: str, repeats: int, world: int) -> dict:
    """slowdown: the reference block on the first replica of `config`, with every rank running it at once, over
    that replica running it alone (same job, so the same background load); sync_s and optimizer_s: the executor's
    gradient sync and AdamW steps on rank 0, every rank starting together."""
    import torch
    import torch.distributed as dist

    target = next(r for r, c in enumerate(rt.run.plan.replicas) if str(c) == config)
    mine = rt.place.replica == target
    block = [_micro_batch(rt, s, b) for s, b in REFERENCE_BLOCK]
    _run(rt, block)  # warm-up (and gradients for every task's adapter)
    alone, together = [], []
    for _ in range(repeats):
        dist.barrier()
        if mine:
            alone.append(_run(rt, block))
        dist.barrier()
        together.append(_run(rt, block))
    # Every rank's medians; the target replica's leader's are the measurement.
    mine_s = torch.tensor(
        [statistics.median(alone) if mine else 0.0, statistics.median(together)], dtype=torch.float64
    )
    gathered = [torch.zeros(2, dtype=torch.float64) for _ in range(world)]
    dist.all_gather(gathered, mine_s)
    leader = next(p for p in range(world) if _placement(rt, p).replica == target)
    alone_s, together_s = (float(v) for v in gathered[leader])
    sync, opt = [], []
    extras = torch.zeros(len(rt.tasks) + world + 16, dtype=torch.float64)
    for i in range(repeats + 1):  # the first AdamW step creates its state
        dist.barrier()
        t0 = time.perf_counter()
        rt.lora.reduce_grads(extras)
        t1 = time.perf_counter()
        for optimizer in rt.optimizers.values():
            optimizer.step()
        t2 = time.perf_counter()
        if i:
            sync.append(t1 - t0)
            opt.append(t2 - t1)
    return {
        "config": config,
        "ranks": world,
        # A replica that is the whole job runs alone both times: its slowdown is 1 by definition, not noise.
        "slowdown": 1.0 if world == rt.run.plan.replicas[target].num_gpus else together_s / alone_s,
        "sync_s": statistics.median(sync),
        "optimizer_s": statistics.median(opt),
        "block_s": {"alone": alone_s, "together": together_s},
    }


def _placement(rt, rank: int):
    from executor.groups import placements

    return placements(rt.run.plan)[rank]


if __name__ == "__main__":
    sys.exit(main())
