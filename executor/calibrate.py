"""Calibrating the CPU cost model with the executor's own code: `lobra calibrate --device cpu --target executor`.

The layer profile of costmodel/calibrate.py times one bare decoder layer. On a CPU with the tiny model that is a small
part of what the executor spends per micro-batch: the embedding, the LM head and the loss, and the Python of the
multi-LoRA layers and of the model's forward dominate. Here the executor's own replica (executor.job.build_runtime)
runs whole micro-batches through executor.pipeline.run_replica, and each is written per layer (the micro-batch's
time / num_layers) in the profile schema tp,seq_len,mbs,time: the fitted cost model then gives back the whole
micro-batch (stage time = layer time x layers / pp) and the rest of the cost model is unchanged.

A pipelined replica's stages would therefore each get an even share of the whole micro-batch, which misses that its
last stage also runs the LM head and the loss and that every stage pays its own per-micro-batch overheads. The host
jobs measure that as a ratio (costmodel/host.py, stage_weights): in a job that holds both a pipeline and a replica of
the same tp without one, each runs the reference block alone in turn, and each stage's compute (its forwards and
backwards, not its waits) is divided by the even share of the other's. Three absolute corrections were measured
earlier on 2026-11-29 and dropped, because they were further off the real <1,2>x1 steps than the even share on
average: a factor, the replica alone on a step-like block over the profile's
prediction (1.09 to 2.20 from one grid round to the next; the plan's error swung from -13% to +66% with it); a <1,2>
grid of single micro-batches, each stage's own compute (+21 to +27%); and a <1,2> grid of blocks of 4 copies of each
shape in 1F1B, per stage slot (+15.0, +15.3 and +19.3% in three validations, where the even share of the same
grid rounds gave -3.8, -18.9 and -4.4%). Run back to back in one job, the block grid overpredicted a real step's
micro-batch list by 1-12% (four checks, medians of 4 samples), and that list ran 6% and 9% slower in a calibration
job than in the executor's own step minutes before (two checks): both within this VM's drift, so not explained.

What a step adds on top (costmodel/host.py) is measured by the same code with R = 1..max_ranks ranks: the slowdown of
compute when R single-threaded ranks share the cores, the LoRA-gradient sync (LoraState.reduce_grads) and the AdamW
steps. Each job is one torchrun launch of this module with gloo and OMP_NUM_THREADS=1, as `lobra execute` runs:

- `<1,1>x1`: the tp=1 grid, and the host effects of 1 rank;
- `<2,1>x1`: the tp=2 grid (the executor's tensor parallelism over gloo);
- `<1,1>xR`, R = 2..max_ranks: the host effects of R ranks; `<2,1>` and `<1,2>` beside R - 2 such ranks;
- any plan given (a validation's): the slowdown of each of its configs with the plan's own neighbours.

A grid job first runs every shape twice back to back, kept out of the profile: the first run is the shape's first
in the process, and its excess over the second is the new-shape cost of that tp degree (costmodel/host.py,
new_shape_s). Measured against the later passes instead, it came out 57 and 90 ms in two validations where the real
runs gave 43 ms: those passes are minutes away, and the machine drifts more than that in between.

Times are means over repeats: a step's time is a sum of many micro-batches' times, and the expectation of a sum is
the sum of the means. On this shared machine the samples are right-skewed (tensor parallelism over gloo most: its
median is up to twice its minimum), so medians would underpredict every step; the minimum, also written, describes
an idle machine. The repeats are rounds over the whole grid, not back-to-back runs of one point: a VM's speed
drifts by +-20% in phases of a few seconds, so back-to-back repeats all land in one phase and points measured a few
seconds apart disagree; a round per repeat spreads each point's samples over the whole job.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from lobra.costmodel import LayerTimeFit, fit_profile, parse_plan
from lobra.costmodel.host import INDEPENDENT, HostModel
from lobra.costmodel.specs import load_model_spec
from lobra.executor.errors import ExecutorError
from lobra.executor.launch import exit_now, free_port

from lobra.io import atomic_write

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


def calibration_jobs(max_ranks: int, tps=(1, 2), host_configs=HOST_CONFIGS, plans=()) -> list[dict]:
    """The torchrun jobs: a grid job per tp (its replica alone); per host config c and rank count R a job of c beside
    R - |c| independent <1,1> ranks, whose target c fills the per-R tables; and a job per given plan, measured as
    itself (grid and host measurements share a job where they can). Every host job measures each config of its plan."""
    jobs: dict[str, dict] = {}

    def job(plan: str) -> dict:
        nproc = parse_plan(plan).num_gpus
        return jobs.setdefault(
            plan, {"plan": plan, "nproc": nproc, "grid": False, "host": False, "target": None}
        )

    for tp in tps:
        job(f"<{tp},1>x1")["grid"] = True
    for config in host_configs:
        c = parse_plan(config).replicas[0]
        for ranks in range(c.num_gpus, max_ranks + 1):
            plan = job(
                str(parse_plan(f"{c}x1 <1,1>x{ranks - c.num_gpus}" if ranks > c.num_gpus else f"{c}x1"))
            )
            plan.update(host=True, target=str(c))
    for plan in plans:
        job(str(parse_plan(plan)))["host"] = True
    return list(jobs.values())


@dataclass
class CalibrationJobs:
    """Calibration jobs run here, in one round or several: every round's grid samples are pooled, so a validation
    can interleave rounds with its real runs and the profile describes the machine over the same minutes
    (analysis/validate.py). The host effects are ratios measured within one job (alone vs together), so they
    need one round only."""

    scenario: str = DEFAULT_SCENARIO
    model: str | None = None
    seq_lens: tuple[int, ...] = DEFAULT_SEQ_LENS
    mbs: tuple[int, ...] = DEFAULT_MBS
    max_ranks: int = 4
    tps: tuple[int, ...] = (1, 2)
    host_configs: tuple[str, ...] = HOST_CONFIGS
    plans: tuple[str, ...] = ()  # plans whose host effects are measured as themselves (a validation's)
    results: list[dict] = field(default_factory=list)
    elapsed_s: float = 0.0
    rounds: int = 0

    def __post_init__(self) -> None:
        from lobra.traces import load_scenario

        if self.max_ranks < 1:
            raise ExecutorError(f"--max-ranks must be at least 1, got {self.max_ranks}")
        if INDEPENDENT not in self.host_configs:
            raise ExecutorError(f"the host measurements need {INDEPENDENT} (independent ranks)")
        self.model = self.model or load_scenario(self.scenario).model
        self.spec = load_model_spec(self.model)
        self.points = grid_points(self.seq_lens, self.mbs)

    def run(
        self,
        repeats: int,
        *,
        host: bool,
        host_repeats: int | None = None,
        progress: bool = True,
        desc: str = "calibrate executor",
    ) -> None:
        """One round: the grid jobs, `repeats` samples per point (with `host`, also the host-effect jobs, with
        `host_repeats` samples, default `repeats`)."""
        from tqdm import tqdm

        if repeats < 1:
            raise ExecutorError(f"--repeats must be at least 1, got {repeats}")
        jobs = calibration_jobs(
            self.max_ranks, self.tps, *((self.host_configs, self.plans) if host else ((), ()))
        )
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="lobra-calibrate-") as tmp:
            for k, job in enumerate(tqdm(jobs, desc=desc, disable=not progress, leave=False)):
                result = Path(tmp) / f"job{k}.json"
                argv = ["--plan", job["plan"], "--scenario", self.scenario, "--model", self.model]
                argv += ["--result", str(result), "--repeats", str(repeats)]
                argv += ["--points", json.dumps(self.points if job["grid"] else [])]
                if job["host"]:
                    argv += ["--host", "--host-repeats", str(host_repeats or repeats)]
                _run_job(argv, job["nproc"], Path(tmp) / f"job{k}.log")
                result = json.loads(result.read_text())
                self.results.append({"job": job, "repeats": repeats, "round": self.rounds, **result})
        self.elapsed_s += time.perf_counter() - start
        self.rounds += 1

    def profile(self, rounds: set[int] | None = None) -> pd.DataFrame:
        """Per shape, the mean and the minimum of every round's samples (or of these rounds'), per layer (the
        profile's unit)."""
        pooled: dict[tuple[int, int, int], list[float]] = {}
        for result in self.results:
            if rounds is not None and result["round"] not in rounds:
                continue
            for row in result["grid"]:
                pooled.setdefault((row["tp"], row["seq_len"], row["mbs"]), []).extend(row["samples"])
        layers = self.spec.num_layers
        rows = [
            (tp, s, b, statistics.fmean(t) / layers, min(t) / layers)
            for (tp, s, b), t in sorted(pooled.items())
        ]
        return pd.DataFrame(rows, columns=["tp", "seq_len", "mbs", "time", "time_min"])

    def host(self) -> HostModel:
        """The host effects of the jobs run so far."""
        done = [r for r in self.results if r["host"]]
        if not done:
            raise ExecutorError("no host-effect job has run: run a round with host=True first")
        slowdown: dict[str, dict[int, float]] = {}
        for r in done:
            if target := r["job"]["target"]:
                slowdown.setdefault(target, {})[r["host"]["ranks"]] = r["host"]["slowdown"][target]
        # A shape's first run over its second, back to back: the later samples come from other minutes, and this VM
        # drifts more than the cost between them (the median over a job's points: its first points also warm up
        # allocators), averaged over the jobs of each tp; never below zero.
        new_shape: dict[int, list[float]] = {}
        for r in self.results:
            if r["grid"] and "first" in r["grid"][0]:
                extra = [g["first"] - g["second"] for g in r["grid"]]
                new_shape.setdefault(r["grid"][0]["tp"], []).append(statistics.median(extra) / 1e3)
        # A pipeline's stage weights from every job that also ran its whole-model reference, averaged per stage.
        weights: dict[str, list[list[float]]] = {}
        for r in done:
            for c, w in r["host"].get("stage_weights", {}).items():
                weights.setdefault(c, []).append(w)
        # The sync and the optimizer are measured in every job; those of independent ranks stand for each count.
        independent = {r["host"]["ranks"]: r["host"] for r in done if r["job"]["target"] == INDEPENDENT}
        return HostModel(
            cores=len(os.sched_getaffinity(0)),
            slowdown={c: dict(sorted(t.items())) for c, t in slowdown.items()},
            sync_s={n: h["sync_s"] for n, h in sorted(independent.items())},
            optimizer_s={n: h["optimizer_s"] for n, h in sorted(independent.items())},
            source=f"lobra calibrate --device cpu --target executor --scenario {self.scenario}",
            plans={r["job"]["plan"]: r["host"]["slowdown"] for r in done},
            new_shape_s={tp: max(0.0, statistics.fmean(v)) for tp, v in sorted(new_shape.items())},
            stage_weights={
                c: tuple(map(statistics.fmean, zip(*ws, strict=True))) for c, ws in weights.items()
            },
        )

    def write(self, out_dir: str | Path) -> ExecutorCalibration:
        """<model>_cpu_layer_time.csv, its fit and <model>_cpu_host.json under out_dir."""
        profile, host = self.profile(), self.host()
        out = Path(out_dir)
        stem = f"{self.spec.name}_cpu".replace(".", "_").replace("-", "_")
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
                "seconds": round(self.elapsed_s, 1),
                "rounds": self.rounds,
                "samples_per_point": sum(r["repeats"] for r in self.results if r["job"]["grid"])
                // len(self.tps),
                "grid_points": len(self.points),
                "block": [list(b) for b in REFERENCE_BLOCK],
                "jobs": [
                    {
                        "plan": r["job"]["plan"],
                        "load_avg_1m": r["load_avg_1m"],
                        **({"host": r["host"]} if r["host"] else {}),
                    }
                    for r in self.results
                    if r["host"]
                ],
            }
        }
        atomic_write(host_path, lambda p: host.to_json(p, measured))
        return ExecutorCalibration(profile, fit, host, self.elapsed_s, profile_path, fit_path, host_path)


def calibrate_executor(
    out_dir: str | Path, *, repeats: int = 5, progress: bool = True, **jobs
) -> ExecutorCalibration:
    """Run every calibration job here once, `repeats` samples per grid point, and write the calibration."""
    calibration = CalibrationJobs(**jobs)
    calibration.run(repeats, host=True, progress=progress)
    return calibration.write(out_dir)


def _run_job(argv: list[str], nproc: int, log: Path) -> None:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"  # as lobra.executor.launch runs the ranks
    env.setdefault("TRANSFORMERS_VERBOSITY", "error")
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(nproc)]
    command += [
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(free_port()),
        "-m",
        "lobra.executor.calibrate",
    ]
    with open(log, "w") as sink:
        rc = subprocess.run(command + argv, env=env, stdout=sink, stderr=subprocess.STDOUT).returncode
    if rc:
        # The rank's own error comes first; torchrun's ChildFailedError summary after it names no cause.
        lines = log.read_text().splitlines()
        errors = [line for line in lines if re.search(r"\w+(Error|Exception): ", line)]
        cause = next(
            (e for e in errors if "ChildFailedError" not in e), (errors or lines or ["(no output)"])[-1]
        )
        kept = Path(tempfile.gettempdir()) / f"lobra-calibrate-failed-{os.getpid()}-{log.name}"
        shutil.copyfile(log, kept)  # the job's folder is temporary
        raise ExecutorError(
            f"calibration job {argv[1]} failed (exit status {rc}): {cause.strip()} (whole log: {kept})"
        )


# -- per rank ------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lobra.executor.calibrate", description="one calibration rank"
    )
    parser.add_argument("--plan", required=True)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--points", default="[]", help="JSON list of [seq_len, mbs]")
    parser.add_argument(
        "--host",
        action="store_true",
        help="also measure each config's slowdown in this plan, sync and optimizer",
    )
    parser.add_argument(
        "--host-repeats", type=int, help="samples of the host measurements (default --repeats)"
    )
    args = parser.parse_args(argv)

    import torch
    import torch.distributed as dist
    from lobra.executor.config import ExecutorConfig
    from lobra.executor.job import build_runtime
    from lobra.executor.resolve import resolve

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
        grid = _time_grid(rt, [tuple(p) for p in json.loads(args.points)], args.repeats)
        host = _time_host(rt, args.host_repeats or args.repeats, world) if args.host else None
        if rank == 0:
            result = {"grid": grid, "host": host, "load_avg_1m": round(load, 2)}
            atomic_write(Path(args.result), lambda p: p.write_text(json.dumps(result)))
        dist.barrier()
    except BaseException:
        dist.destroy_process_group()
        raise
    return 0  # the process groups go with the process (executor.launch.exit_now)


def _micro_batch(rt, seq_len: int, mbs: int):
    """A micro-batch of mbs full-length sequences, tasks dealt round-robin (real micro-batches mix tasks)."""
    from lobra.executor.data import build_micro_batch
    from lobra.policies.types import MicroBatchPlan, StepItem

    items = [StepItem(rt.tasks[k % len(rt.tasks)], seq_len) for k in range(mbs)]
    keys = [(it.task, 0, k) for k, it in enumerate(items)]
    targets: dict[str, int] = {}
    for it in items:
        targets[it.task] = targets.get(it.task, 0) + seq_len - 1
    plan = MicroBatchPlan(tuple(range(mbs)), (seq_len,) * mbs, seq_len)
    dtype = rt.lora.bindings[0].param.dtype
    return build_micro_batch(plan, items, keys, rt.source, rt.tasks, targets, rt.device, dtype)


def _replica(rt, mbs: list):
    """Forward+backward of these micro-batches on this rank's replica, by the executor's own loop."""
    from lobra.executor.pipeline import run_replica

    return run_replica(rt.stage, rt.batch, mbs, rt.place, len(rt.tasks), rt.device)


def _run(rt, mbs: list) -> float:
    """Busy seconds of _replica."""
    return _replica(rt, mbs).busy_s


def _time_grid(rt, points: list[tuple[int, int]], repeats: int) -> list[dict]:
    """Each point's `repeats` samples (ms), taken in rounds over the whole grid (see the module docstring), and, from
    a pass before them, its first run in this process and the run straight after it (`first`, `second`, ms)."""
    import torch.distributed as dist

    batches = [_micro_batch(rt, s, b) for s, b in points]
    samples: list[list[float]] = [[] for _ in points]
    first: list[tuple[float, float]] = []
    for i in range(repeats + 1):
        for mb, times in zip(batches, samples, strict=True):
            dist.barrier()  # TP ranks start together, as in a step
            if i:
                times.append(_run(rt, [mb]) * 1e3)
            else:  # the shape's first run in this process, and straight after it its second (same phase of the VM)
                first.append((_run(rt, [mb]) * 1e3, _run(rt, [mb]) * 1e3))
    return [
        {"tp": rt.place.config.tp, "seq_len": s, "mbs": b, "samples": t, "first": f, "second": g}
        for (s, b), t, (f, g) in zip(points, samples, first, strict=True)
    ]


def _time_host(rt, repeats: int, world: int) -> dict:
    """slowdown[config]: the reference block on the first replica of each config of the plan, with every rank running
    at once, over that replica running it alone (same job, so the same background load; the configs take turns
    alone within every repeat); sync_s and optimizer_s: the executor's gradient sync and AdamW steps on rank 0, every
    rank starting together.

    Together, each replica runs as many copies of the block as it takes to last about as long as the slowest
    replica's one block (a first pass alone sets the counts): a balanced step keeps every replica busy for the whole
    step, so a replica's neighbours are busy for all of its work. With one block each, a <1,1> rank beside a TP pair
    was done after a third of the pair's block, and the pair's slowdown came out 1.20 where its real steps in that
    plan ran 12% slower than that predicted (two validations, 2026-11-29)."""
    import torch
    import torch.distributed as dist
    from lobra.executor.groups import placements

    replicas = rt.run.plan.replicas
    firsts: dict[str, int] = {}  # config -> its first replica
    for r, c in enumerate(replicas):
        firsts.setdefault(str(c), r)
    configs = sorted(firsts)
    places = placements(rt.run.plan)  # rank -> placement; a replica's leader is its first rank
    leaders = {c: next(p for p, place in enumerate(places) if place.replica == firsts[c]) for c in configs}
    block = [_micro_batch(rt, s, b) for s, b in REFERENCE_BLOCK]
    _run(rt, block)  # warm-up (and gradients for every task's adapter)

    def alone_pass() -> list[float]:
        """Each config's first replica runs the block while the others wait: its busy seconds on this rank, then its
        compute seconds (this rank's forwards and backwards, without the pipeline's waits), else 0s."""
        busy, compute = [], []
        for c in configs:
            dist.barrier()
            result = _replica(rt, block) if rt.place.replica == firsts[c] else None
            busy.append(result.busy_s if result else 0.0)
            compute.append(sum(result.micro_batch_s) if result else 0.0)
        return busy + compute

    n = len(configs)
    probe = _gather(alone_pass(), world)
    first = {c: probe[leaders[c]][i] for i, c in enumerate(configs)}
    copies = {c: max(1, round(max(first.values()) / t)) for c, t in first.items()}
    mine = copies[str(replicas[rt.place.replica])]
    alone, together = [], []
    for _ in range(repeats):
        alone.append(alone_pass())
        dist.barrier()
        together.append(_run(rt, block * mine) / mine)
    # Every rank's means; each config's first replica's leader's are its measurement.
    means = _gather(
        [statistics.fmean(t) for t in zip(*alone, strict=True)] + [statistics.fmean(together)], world
    )
    block_s, slowdown = {}, {}
    for i, c in enumerate(configs):
        alone_s, together_s = means[leaders[c]][i], means[leaders[c]][-1]
        block_s[c] = {"alone": alone_s, "together": together_s, "copies": copies[c]}
        # A replica that is the whole job runs alone both times: its slowdown is 1 by definition, not noise.
        slowdown[c] = 1.0 if world == replicas[firsts[c]].num_gpus else together_s / alone_s
    # A pipeline's stages against the even share of the same tp's whole model, both alone in this job.
    stage_weights = {}
    for i, c in enumerate(configs):
        config = parse_plan(c).replicas[0]
        whole = f"<{config.tp},1>"
        if config.pp > 1 and whole in firsts:
            share = means[leaders[whole]][n + configs.index(whole)] / config.pp
            # each stage's TP rank 0 (the leader is stage 0's)
            stage_weights[c] = [
                means[places[leaders[c]].stage_rank(k)][n + i] / share for k in range(config.pp)
            ]
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
        "ranks": world,
        "slowdown": slowdown,
        "sync_s": statistics.fmean(sync),
        "optimizer_s": statistics.fmean(opt),
        "block_s": block_s,
        "stage_weights": stage_weights,
    }


def _gather(values: list[float], world: int) -> list[list[float]]:
    """Every rank's list of floats, by rank (all ranks pass lists of one length)."""
    import torch
    import torch.distributed as dist

    mine = torch.tensor(values, dtype=torch.float64)
    gathered = [torch.zeros_like(mine) for _ in range(world)]
    dist.all_gather(gathered, mine)
    return [t.tolist() for t in gathered]


if __name__ == "__main__":
    exit_now(main())
