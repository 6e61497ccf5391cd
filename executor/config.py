"""ExecutorConfig: the options of one executor run, shared by `lobra execute` and the per-rank entry point.

The launcher turns a validated config back into argv for `python -m lobra.executor.launch` under torchrun, so both sides
parse the same flags (add_arguments). `__post_init__` checks values only; `resolve` does the I/O (task file, model,
plan against the model and the ranks, checkpoints) and is run by the CLI before anything is launched or written.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from lobra.executor.errors import ExecutorError
from lobra.policies.dispatchers import DispatcherConfig, dispatch_from_args

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "float64", "bfloat16")
DEFAULT_OUT = "out/execute"
DEFAULT_MODEL = "tiny"
# A collective that waits longer than this ends the run with a message (a rank stopped, hung or far slower):
# minutes on CPUs, where nothing legitimately takes long; more on CUDA, where a first step may compile and load.
DEFAULT_COLLECTIVE_TIMEOUT_S = {"cpu": 180.0, "cuda": 900.0}
FAIL_MODES = ("crash", "stall")


@dataclass(frozen=True)
class ExecutorConfig:
    plan: str
    steps: int
    scenario: str | None = None
    tasks: str | None = None
    model: str | None = None  # None: the scenario's model, else "tiny"
    gpu: str | None = None  # the cost model's GPU for dispatch; None: "cpu" on a CPU, detected on CUDA
    profile: str | None = None  # the dispatcher's layer-time profile CSV; None: the pair's default
    out: str = DEFAULT_OUT
    resume: bool = False
    checkpoint_every: int = 10
    keep_checkpoints: int = 2
    seed: int = 0
    lr: float = 1e-3
    dispatcher: str = "balanced"
    # Every rank builds its dispatcher from the name and these settings: all of them must travel in the argv.
    dispatch: DispatcherConfig = field(default_factory=DispatcherConfig)
    device: str = "auto"
    dtype: str = "auto"
    data: str | None = None
    dump_grads: bool = False
    collective_timeout: float | None = None  # seconds; None: DEFAULT_COLLECTIVE_TIMEOUT_S of the device
    fail_at_step: int | None = None  # testing: one rank dies (or stalls) in this step (0-based)
    fail_rank: int = 0
    fail_mode: str = "crash"  # testing: "crash" exits like a killed process, "stall" hangs like a stopped one

    def __post_init__(self) -> None:
        if (self.scenario is None) == (self.tasks is None):
            raise ExecutorError("give exactly one of --scenario NAME or --tasks FILE")
        if not isinstance(self.plan, str) or not self.plan.strip():
            raise ExecutorError(f"plan must be a non-empty string like '<2,1>x1 <1,1>x2', got {self.plan!r}")
        for name, low in (("steps", 1), ("checkpoint_every", 1), ("keep_checkpoints", 1), ("seed", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ExecutorError(f"{name} must be an integer >= {low}, got {value!r}")
        if not isinstance(self.lr, int | float) or not math.isfinite(self.lr) or self.lr <= 0:
            raise ExecutorError(f"lr must be a positive number, got {self.lr!r}")
        if not isinstance(self.dispatch, DispatcherConfig):
            raise ExecutorError(f"dispatch must be a DispatcherConfig, got {self.dispatch!r}")
        if self.device not in DEVICES:
            raise ExecutorError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.dtype not in DTYPES:
            raise ExecutorError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.fail_at_step is not None and (
            not isinstance(self.fail_at_step, int) or self.fail_at_step < 0
        ):
            raise ExecutorError(f"fail_at_step must be an integer >= 0, got {self.fail_at_step!r}")
        if not isinstance(self.fail_rank, int) or self.fail_rank < 0:
            raise ExecutorError(f"fail_rank must be an integer >= 0, got {self.fail_rank!r}")
        if self.fail_mode not in FAIL_MODES:
            raise ExecutorError(f"fail_mode must be one of {', '.join(FAIL_MODES)}, got {self.fail_mode!r}")
        timeout = self.collective_timeout
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < math.inf
        ):
            raise ExecutorError(f"collective_timeout must be a positive number of seconds, got {timeout!r}")

    # -- argv round trip --------------------------------------------------------------------------------------
    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ExecutorConfig:
        dispatcher, dispatch = dispatch_from_args(args)
        plain = {
            f.name: getattr(args, f.name) for f in fields(cls) if f.name not in ("dispatcher", "dispatch")
        }
        return cls(**plain, dispatcher=dispatcher, dispatch=dispatch)

    def to_argv(self) -> list[str]:
        """Flags that add_arguments parses back into this config (for the ranks started by torchrun)."""
        argv: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, DispatcherConfig):
                argv += value.to_argv()
            elif isinstance(value, bool):
                argv += [flag] if value else []
            elif value is not None:
                argv += [flag, repr(value) if isinstance(value, float) else str(value)]
        return argv

    @property
    def out_dir(self) -> Path:
        return Path(self.out)

    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / "checkpoints"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The executor's flags (the CLI adds --nproc; the ranks get the rest verbatim)."""
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--scenario", help="a scenario name (its tasks; its model unless --model)")
    src.add_argument("--tasks", metavar="FILE", help="a tasks YAML file")
    parser.add_argument("--plan", required=True, help="deployment plan, e.g. '<2,1>x1 <1,1>x2'")
    parser.add_argument(
        "--model", help="built-in model name (tiny, ...) or a local directory/config.json (default: tiny)"
    )
    parser.add_argument("--steps", type=int, required=True, help="training steps to run (in all)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint under --out")
    parser.add_argument(
        "--checkpoint-every", type=int, default=10, help="checkpoint every K steps (and at the end)"
    )
    parser.add_argument(
        "--keep-checkpoints", type=int, default=2, help="how many recent checkpoints to keep (default 2)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the sampler, data and LoRA init (default 0)"
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default 1e-3)")
    DispatcherConfig.add_arguments(parser, dispatcher="balanced; with --mbs fixed-mbs")
    parser.add_argument(
        "--gpu", help="GPU spec the dispatcher's cost model uses (default: cpu on a CPU, detected on CUDA)"
    )
    parser.add_argument(
        "--profile",
        help="layer-time profile CSV the dispatcher's cost model uses (default: the pair's shipped one)",
    )
    parser.add_argument("--device", choices=DEVICES, default="auto", help="cpu (gloo) or cuda (nccl)")
    parser.add_argument(
        "--dtype",
        choices=DTYPES,
        default="auto",
        help="base model dtype (auto: bfloat16 on CUDA, else float32)",
    )
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="tokenized datasets: DIR/<task>.jsonl or .parquet with an input_ids column",
    )
    parser.add_argument(
        "--dump-grads", action="store_true", help="also write every step's synced LoRA gradients (debugging)"
    )
    parser.add_argument(
        "--collective-timeout",
        type=float,
        metavar="S",
        help="end the run when a collective waits longer than S seconds, e.g. on a stopped rank (default "
        + ", ".join(f"{s:g} on {d}" for d, s in DEFAULT_COLLECTIVE_TIMEOUT_S.items())
        + ")",
    )
    parser.add_argument("--fail-at-step", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fail-rank", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--fail-mode", choices=FAIL_MODES, default="crash", help=argparse.SUPPRESS)
