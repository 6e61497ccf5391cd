"""Calibrating the CPU cost model with the executor's own code: `lobra calibrate --device cpu --target executor`.

The layer profile of calibration/layer.py times one bare decoder layer. On a CPU with the tiny model that is a small
part of what the executor spends per micro-batch: the embedding, the LM head and the loss, and the Python of the
multi-LoRA layers and of the model's forward dominate. Here the executor's own replica runs whole micro-batches,
and each is written per layer (the micro-batch's time / num_layers) in the profile schema tp,seq_len,mbs,time:
the fitted cost model then gives back the whole micro-batch (stage time = layer time x layers / pp) and the rest
of the cost model is unchanged. What a step adds on top is the host model (calibration/host.py), measured by the
same code with R = 1..max_ranks ranks.

Each job is one torchrun launch of calibration/rank.py with gloo and OMP_NUM_THREADS=1, as `lobra execute` runs:

- `<1,1>x1`: the tp=1 grid, and the host effects of 1 rank;
- `<2,1>x1`: the tp=2 grid (the executor's tensor parallelism over gloo);
- `<1,1>xR`, R = 2..max_ranks: the host effects of R ranks; `<2,1>` and `<1,2>` beside R - 2 such ranks;
- any plan given (a validation's): the contention of each of its configs with the plan's own neighbours.

A pipeline's stage weights come from a job that holds both the pipeline and a replica of the same tp without one:
each runs the reference block alone in turn, and each stage's compute is divided by the even share of the other's.
docs/calibration.md records what these measurements gave and how they fared against real runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
from lobra.calibration import derive
from lobra.calibration.host import INDEPENDENT, HostModel
from lobra.calibration.layer import profile_stem, write_profile
from lobra.calibration.measurements import Job, JobResult, RankResult
from lobra.calibration.rank import REFERENCE_BLOCK
from lobra.costmodel import LayerTimeFit, parse_plan
from lobra.costmodel.specs import load_model_spec
from lobra.executor.errors import ExecutorError
from lobra.executor.launch import free_port

DEFAULT_SEQ_LENS = (32, 64, 128, 256, 384, 512, 768, 1024)
DEFAULT_MBS = (1, 2, 4, 8)
# A tiny-cpu step holds 32 sequences of at most 1,024 tokens in up to 16 length buckets, so its micro-batches stay
# well under 4,096 tokens; bigger grid points would only lengthen the calibration.
MAX_MB_TOKENS = 4096
DEFAULT_SCENARIO = "tiny-cpu"
# Replica kinds whose contention is measured: independent ranks, a TP pair, a two-stage pipeline.
HOST_CONFIGS = (INDEPENDENT, "<2,1>", "<1,2>")


@dataclass(frozen=True)
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


def calibration_jobs(max_ranks: int, tps=(1, 2), host_configs=HOST_CONFIGS, plans=()) -> list[Job]:
    """The torchrun jobs: a grid job per tp (its replica alone); per host config c and rank count R a job of c beside
    R - |c| independent <1,1> ranks, whose target c fills the per-R tables; and a job per given plan, measured as
    itself (grid and host measurements share a job where they can). Every host job measures each config of its plan."""
    jobs: dict[str, Job] = {}

    def update(plan: str, **changes) -> None:
        job = jobs.get(plan) or Job(plan, parse_plan(plan).num_gpus)
        jobs[plan] = replace(job, **changes)

    for tp in tps:
        update(f"<{tp},1>x1", grid=True)
    for config in host_configs:
        c = parse_plan(config).replicas[0]
        for num_ranks in range(c.num_gpus, max_ranks + 1):
            others = num_ranks - c.num_gpus
            update(str(parse_plan(f"{c}x1 <1,1>x{others}" if others else f"{c}x1")), host=True, target=str(c))
    for plan in plans:
        update(str(parse_plan(plan)), host=True)
    return list(jobs.values())


@dataclass
class CalibrationJobs:
    """Calibration jobs run here, in one round or several: every round's grid samples are pooled, so a validation
    can interleave rounds with its real runs and the profile describes the machine over the same minutes
    (calibration/validate.py). The host effects are ratios measured within one job (alone vs together), so they
    need one round only."""

    scenario: str = DEFAULT_SCENARIO
    model: str | None = None
    seq_lens: tuple[int, ...] = DEFAULT_SEQ_LENS
    mbs: tuple[int, ...] = DEFAULT_MBS
    max_ranks: int = 4
    tps: tuple[int, ...] = (1, 2)
    host_configs: tuple[str, ...] = HOST_CONFIGS
    plans: tuple[str, ...] = ()  # plans whose host effects are measured as themselves (a validation's)
    results: list[JobResult] = field(default_factory=list)
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
                run_job(self._argv(job, result, repeats, host_repeats), job.nproc, Path(tmp) / f"job{k}.log")
                self.results.append(JobResult(job, repeats, self.rounds, RankResult.read(result)))
        self.elapsed_s += time.perf_counter() - start
        self.rounds += 1

    def _argv(self, job: Job, result: Path, repeats: int, host_repeats: int | None) -> list[str]:
        import json

        argv = ["--plan", job.plan, "--scenario", self.scenario, "--model", self.model]
        argv += ["--result", str(result), "--repeats", str(repeats)]
        argv += ["--points", json.dumps(self.points if job.grid else [])]
        if job.host:
            argv += ["--host", "--host-repeats", str(host_repeats or repeats)]
        return argv

    def profile(self, rounds: set[int] | None = None) -> pd.DataFrame:
        """Per shape, the mean and the minimum of every round's samples (or of these rounds'), per layer."""
        return derive.pooled_profile(self.results, self.spec.num_layers, rounds)

    def host(self) -> HostModel:
        """The host effects of the jobs run so far."""
        source = f"lobra calibrate --device cpu --target executor --scenario {self.scenario}"
        return derive.host_model(self.results, len(os.sched_getaffinity(0)), source)

    def write(self, out_dir: str | Path) -> ExecutorCalibration:
        """<model>_cpu_layer_time.csv, its fit and <model>_cpu_host.json under out_dir."""
        profile, host = self.profile(), self.host()
        stem = profile_stem(self.spec.name, "cpu")
        profile_path, fit_path, fit = write_profile(out_dir, stem, profile)
        host_path = Path(out_dir) / f"{stem}_host.json"
        host.to_json(host_path, {"measured": self._measured()})
        return ExecutorCalibration(profile, fit, host, self.elapsed_s, profile_path, fit_path, host_path)

    def _measured(self) -> dict:
        """How the calibration was measured, written beside the host model."""
        return {
            "date": time.strftime("%Y-%m-%d"),
            "seconds": round(self.elapsed_s, 1),
            "rounds": self.rounds,
            "samples_per_point": sum(r.repeats for r in self.results if r.job.grid) // len(self.tps),
            "grid_points": len(self.points),
            "block": [list(b) for b in REFERENCE_BLOCK],
            "jobs": [
                {"plan": r.job.plan, "load_avg_1m": r.measured.load_avg_1m, "host": r.host.to_dict()}
                for r in self.results
                if r.host is not None
            ],
        }


def calibrate_executor(
    out_dir: str | Path, *, repeats: int = 5, progress: bool = True, **jobs
) -> ExecutorCalibration:
    """Run every calibration job here once, `repeats` samples per grid point, and write the calibration."""
    calibration = CalibrationJobs(**jobs)
    calibration.run(repeats, host=True, progress=progress)
    return calibration.write(out_dir)


def run_job(argv: list[str], nproc: int, log: Path) -> None:
    """One torchrun launch of calibration/rank.py on `nproc` ranks; raises naming the rank's own error."""
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
        "lobra.calibration.rank",
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
        # The job's folder is temporary: the log is kept under a fresh, unpredictable name in the temp folder.
        fd, kept = tempfile.mkstemp(prefix="lobra-calibrate-failed-", suffix=f"-{log.name}")
        with os.fdopen(fd, "w") as f:
            f.write(log.read_text())
        raise ExecutorError(
            f"calibration job {argv[1]} failed (exit status {rc}): {cause.strip()} (whole log: {kept})"
        )
