"""The real-GPU check (issue 20), one run: layer profiles, executor vs simulator on one GPU, multi-LoRA overhead,
environment facts. bench/gpu/run.sh installs what the machine lacks and calls this.

Every step is a subprocess with its own time limit, so a step that fails or overruns costs only itself; its exit
status, wall time and output tail go to summary.json and its whole output to log.txt. At the end everything else
under OUT is packed into results.tar.gz (less the trained adapters and checkpoints: an 8B model's are ~1 GB), so what
comes back is three files: summary.json, log.txt, results.tar.gz.

    python3 bench/gpu/check.py --device cuda --out OUT      # on the GPU machine (under 8 minutes)
    .venv/bin/python bench/gpu/check.py --device cpu --out /tmp/gpucheck   # the same path, tiny shapes, here
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLAN = "<1,1>x1"
STEPS, WARMUP = 10, 2  # 8 measured steps after 2 warm-up steps


@dataclass(frozen=True)
class Shapes:
    """What one device runs: the main model and its grid, the transfer shapes and their grid, the tenants."""

    model: str  # built-in model whose shape the executor runs (with `layers` decoder layers)
    layers: int
    seq_lens: str | None  # None: calibrate's default grid for the device
    mbs: str | None
    others: tuple[str, ...]  # models whose layer alone is timed at a few points
    other_seq_lens: str
    other_mbs: str
    max_len: tuple[int, int, int]  # short, medium, long tenant
    batch: tuple[int, int, int]
    gpu: str  # the spec the cost model uses
    repeats: int
    multilora_shape: str  # bench/multilora_vs_peft.py --shape


SHAPES = {
    "cuda": Shapes(
        model="llama3-8b",
        layers=32,
        seq_lens=None,
        mbs=None,
        others=("llama2-7b", "llama3-70b"),
        other_seq_lens="512,2048,4096,8192",
        other_mbs="1,4",
        max_len=(1024, 2048, 8192),
        batch=(16, 8, 4),
        gpu="h200-141gb",
        repeats=5,
        multilora_shape="cuda",
    ),
    # Tiny shapes, the same code path: the CPU run is the script's test, not a measurement.
    "cpu": Shapes(
        model="tiny",
        layers=2,
        seq_lens="32,64,128",
        mbs="1,2,4",
        others=("tiny",),
        other_seq_lens="64,128,256",
        other_mbs="1,2",
        max_len=(128, 192, 256),
        batch=(4, 2, 2),
        gpu="cpu",
        repeats=1,
        multilora_shape="tiny",
    ),
}
TENANTS = (("short", "codealpaca_2k"), ("medium", "alpacaeval_gpt4turbo"), ("long", "azure_llm_code_2023"))


class Run:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.log = (out / "log.txt").open("a")
        self.steps: dict[str, dict] = {}

    def step(self, name: str, argv: list[str], limit_s: float) -> subprocess.CompletedProcess | None:
        """Run one step; record its status, time and output tail; never raise."""
        start = time.perf_counter()
        self.log.write(f"\n=== {name}: {' '.join(argv)}\n")
        self.log.flush()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_MININTERVAL": "5"}
        try:
            # Not from the repository root: there `lobra/` (the CLI package alone) would shadow the laid-out namespace.
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=limit_s, env=env, cwd=self.out
            )
            rc, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as err:
            proc, rc = None, "timeout"
            stdout, stderr = _text(err.stdout), _text(err.stderr)
        wall = time.perf_counter() - start
        self.log.write(stdout + stderr + f"\n=== {name}: exit {rc} after {wall:.1f} s\n")
        self.log.flush()
        tail = (stdout + stderr).strip().splitlines()[-15:]
        self.steps[name] = {"rc": rc, "wall_s": round(wall, 1), "tail": tail}
        print(f"{name}: exit {rc} after {wall:.1f} s", flush=True)
        return proc if rc == 0 else None


def _text(data) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")


def lobra(*args: str) -> list[str]:
    return [sys.executable, "-m", "lobra.cli", *args]


def environment(device: str) -> dict:
    """Versions, the GPU as nvidia-smi sees it, and the achieved bf16 (fp32 on a CPU) matmul rate."""
    import torch

    facts = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "host_cpus": os.cpu_count(),
        "lobra_from": str(Path(__import__("lobra").__file__).parent),
    }
    for pkg in ("transformers", "peft", "simpy", "pandas", "scipy"):
        try:
            facts[pkg] = __import__(pkg).__version__
        except ImportError:
            facts[pkg] = None
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(["nvidia-smi"], capture_output=True, text=True)
        facts["nvidia_smi"] = smi.stdout.splitlines()
    dev = torch.device(device)
    dtype, n = (torch.bfloat16, 8192) if device == "cuda" else (torch.float32, 1024)
    if device == "cuda":
        facts["gpu"] = torch.cuda.get_device_name()
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    times = []
    for _ in range(13):  # 3 warm-ups, then the mean of 10 as one timing
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    facts["matmul"] = {
        "n": n,
        "dtype": str(dtype).removeprefix("torch."),
        "tflops": round(2 * n**3 / (sum(times[3:]) / 10) / 1e12, 1),
    }
    return facts


def write_inputs(out: Path, shapes: Shapes) -> tuple[Path, Path]:
    """The tenants' task file and the executor's model config (the model's shape, `layers` decoder layers; the
    folder is named after the model so that its profile is accepted as this model's)."""
    from lobra.costmodel.specs.models import MODEL_CONFIGS

    tasks = out / "inputs" / "tasks.yaml"
    tasks.parent.mkdir(parents=True, exist_ok=True)
    lines = ["tasks:"]
    for (name, trace), max_len, gbs in zip(TENANTS, shapes.max_len, shapes.batch, strict=True):
        lines.append(f"  - {{name: {name}, trace: {trace}, max_len: {max_len}, global_batch_size: {gbs}}}")
    tasks.write_text("\n".join(lines) + "\n")
    config = {**MODEL_CONFIGS[shapes.model], "num_hidden_layers": shapes.layers}
    model_dir = out / "inputs" / shapes.model
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return tasks, model_dir


def compare_steps(out: Path) -> dict:
    """Per-step real (executor) and simulated times of the same sampled steps; written to sim_vs_real.csv."""
    from lobra.calibration.metrics import step_metrics, step_pairs
    from lobra.costmodel import parse_plan
    from lobra.executor.records import Records

    real = Records.read(out / "execute").frame("steps")
    sim = Records.read(out / "simulate").frame("steps")
    pairs = step_pairs(parse_plan(PLAN), [real], [sim], WARMUP)
    pairs["error_pct"] = (pairs["sim_step_s"] / pairs["real_step_s"] - 1) * 100
    pairs.to_csv(out / "sim_vs_real.csv", index=False)
    metrics = step_metrics(pairs[~pairs["warmup"]])
    cols = ["step", "warmup", "num_sequences", "tokens", "real_step_s", "sim_step_s", "error_pct"]
    return {**metrics, "steps": pairs[cols].round(4).to_dict(orient="records")}


def main() -> int:
    parser = argparse.ArgumentParser(description="the real-GPU check of issue 20, in one run")
    parser.add_argument(
        "--device", choices=sorted(SHAPES), default="cuda", help="cuda, or cpu to test the path"
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (emptied first)")
    args = parser.parse_args()
    device, shapes, out = args.device, SHAPES[args.device], args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    run = Run(out)
    summary: dict = {
        "device": device,
        "plan": PLAN,
        "steps": STEPS,
        "warmup": WARMUP,
        "shapes": shapes.__dict__,
    }
    started = time.perf_counter()

    # 4 first (it is cheap and says what machine the rest ran on)
    try:
        summary["environment"] = environment(device)
    except Exception as err:  # noqa: BLE001 - a fact we could not read is recorded, not fatal
        summary["environment"] = {"error": repr(err)}
    print(json.dumps(summary["environment"].get("matmul")), flush=True)

    where = run.step("lobra", [sys.executable, "-c", "import lobra.costmodel as c; print(c.__file__)"], 60)
    summary["lobra_in_steps"] = where.stdout.strip() if where else None

    # 1. layer profile of the main shape (with pre_post_time and packed rows), its fit's held-out error
    profiles = out / "profiles"
    grid = [a for flag, v in (("--seq-lens", shapes.seq_lens), ("--mbs", shapes.mbs)) if v for a in (flag, v)]
    run.step(
        "calibrate",
        lobra(
            "calibrate",
            "--device",
            device,
            "--model",
            shapes.model,
            "--packed",
            "--out",
            str(profiles),
            "--repeats",
            str(shapes.repeats),
            *grid,
        ),
        limit_s=180,
    )
    profile = next(iter(sorted(profiles.glob(f"{shapes.model.replace('-', '_')}_*_layer_time.csv"))), None)
    if profile is not None:
        checked = run.step("heldout", lobra("costmodel", "check", "--profile", str(profile), "--json"), 60)
        if checked is not None:
            summary["fit_check"] = json.loads(checked.stdout)

    # 2. the executor on one GPU, then the simulator on the same sampled steps and dispatch, with that profile
    tasks, model_dir = write_inputs(out, shapes)
    common = [
        "--tasks",
        str(tasks),
        "--model",
        str(model_dir),
        "--plan",
        PLAN,
        "--steps",
        str(STEPS),
        "--seed",
        "0",
        "--dispatcher",
        "balanced",
        "--gpu",
        shapes.gpu,
    ]
    if profile is not None:
        common += ["--profile", str(profile)]
    executed = run.step(
        "execute",
        lobra(
            "execute",
            *common,
            "--device",
            device,
            "--checkpoint-every",
            str(STEPS),
            "--out",
            str(out / "execute"),
        ),
        limit_s=240,
    )
    simulated = run.step(
        "simulate", lobra("simulate", *common, "--num-gpus", "1", "--out", str(out / "simulate")), 90
    )
    if executed is not None and simulated is not None:
        try:
            summary["sim_vs_real"] = compare_steps(out)
        except Exception as err:  # noqa: BLE001 - recorded for the note; the other steps still run
            summary["sim_vs_real"] = {"error": repr(err)}

    # 3. multi-LoRA (4 tasks in one micro-batch) against single-adapter peft, on the device
    bench = out / "multilora_vs_peft.json"
    argv = [
        sys.executable,
        str(REPO / "bench" / "multilora_vs_peft.py"),
        "--device",
        device,
        "--shape",
        shapes.multilora_shape,
        "--repeats",
        str(2 * shapes.repeats + 2),
        "--out",
        str(bench),
    ]
    if run.step("multilora", argv, 120):
        summary["multilora_vs_peft"] = json.loads(bench.read_text())

    # 1 (continued). the layer alone for other shapes, at a few points: cross-model transfer on this GPU
    for model in shapes.others:
        run.step(
            f"calibrate {model}",
            lobra(
                "calibrate",
                "--device",
                device,
                "--model",
                model,
                "--seq-lens",
                shapes.other_seq_lens,
                "--mbs",
                shapes.other_mbs,
                "--repeats",
                str(shapes.repeats),
                "--out",
                str(out / "profiles" / "others" / model),
            ),
            limit_s=90,
        )

    summary["wall_s"] = round(time.perf_counter() - started, 1)
    summary["step_status"] = run.steps
    run.log.close()
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")

    def small(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        return None if info.name.endswith((".safetensors", "/checkpoints", "/adapters")) else info

    with tarfile.open(out / "results.tar.gz", "w:gz") as tar:
        for path in sorted(out.iterdir()):
            if path.name not in ("summary.json", "log.txt", "results.tar.gz"):
                tar.add(path, arcname=path.name, filter=small)
    for path in list(out.iterdir()):
        if path.name not in ("summary.json", "log.txt", "results.tar.gz"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    failed = [name for name, s in run.steps.items() if s["rc"] != 0]
    print(
        f"done in {summary['wall_s']} s; " + (f"failed: {', '.join(failed)}" if failed else "every step ok")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
