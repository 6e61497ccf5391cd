"""Scenarios: a task set plus the model, GPU type and GPU count it runs on, selectable by name.

The task sets live as YAML under traces/scenarios/; the registry below adds the hardware. Every command takes
either a scenario name (optionally with another GPU count) or a tasks file with model, GPU and GPU count:
`resolve_scenario` is that one rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from lobra.costmodel.specs import GPUS, MODEL_CONFIGS
from lobra.traces.errors import TraceError
from lobra.traces.tasks import Workload, load_workload

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass(frozen=True, eq=False)
class Scenario:
    name: str
    description: str
    model: str  # a costmodel.specs.MODEL_CONFIGS name or a config .json path
    gpu: str  # a costmodel.specs.GPUS name or a GPU spec .json path
    num_gpus: int
    workload: Workload

    def __post_init__(self) -> None:
        for key in ("name", "model", "gpu"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise TraceError(f"scenario {key} must be a non-empty string, got {getattr(self, key)!r}")
        if not _is_int(self.num_gpus) or self.num_gpus < 1:
            raise TraceError(
                f"scenario {self.name!r}: num_gpus must be a positive integer, got {self.num_gpus!r}"
            )
        if not isinstance(self.workload, Workload):
            raise TraceError(f"scenario {self.name!r}: workload must be a Workload")


@dataclass(frozen=True)
class ScenarioDef:
    """A registered scenario: its task file under traces/scenarios/ and the hardware it runs on."""

    name: str
    description: str
    tasks_file: str
    model: str
    gpu: str
    num_gpus: int
    min_gpus: int = 1
    max_gpus: int = 4096
    gpus_why: str = ""  # why the GPU range is what it is (said when a count outside it is refused)

    def __post_init__(self) -> None:
        if not _is_int(self.num_gpus) or not 1 <= self.min_gpus <= self.num_gpus <= self.max_gpus:
            raise TraceError(
                f"scenario {self.name!r}: need 1 <= min_gpus <= num_gpus <= max_gpus, got "
                f"{self.min_gpus}, {self.num_gpus}, {self.max_gpus}"
            )
        if self.model not in MODEL_CONFIGS or self.gpu not in GPUS:
            raise TraceError(f"scenario {self.name!r}: unknown model {self.model!r} or GPU {self.gpu!r}")


SCENARIOS: dict[str, ScenarioDef] = {}


def register_scenario(defn: ScenarioDef) -> ScenarioDef:
    if defn.name in SCENARIOS:
        raise TraceError(f"scenario {defn.name!r} is already registered")
    SCENARIOS[defn.name] = defn
    return defn


for _defn in [
    ScenarioDef(
        "paper-7b",
        "LobRA 7B: Llama-2-7B, 6 tasks (moment-matched synthetic traces of the paper's datasets)",
        "paper-7b.yaml",
        "llama2-7b",
        "a100-40gb",
        16,
    ),
    ScenarioDef(
        "paper-70b",
        "LobRA 70B: Llama-2-70B, all 12 tasks (moment-matched synthetic traces)",
        "paper-70b.yaml",
        "llama2-70b",
        "a800-80gb",
        64,
    ),
    ScenarioDef(
        "paper-70b-4task",
        "LobRA scalability study: Llama-2-70B, 4 tasks, 16..256 GPUs",
        "paper-70b-4task.yaml",
        "llama2-70b",
        "a800-80gb",
        64,
        min_gpus=16,
        max_gpus=256,
        gpus_why="the range of the paper's scalability study",
    ),
    ScenarioDef(
        "real-7b",
        "Llama-2-7B, 6 tasks from the shipped real traces, short to very long (16K, truncated)",
        "real-7b.yaml",
        "llama2-7b",
        "a100-40gb",
        16,
    ),
    ScenarioDef(
        "online-7b",
        "online tenants on Llama-2-7B: 2 tasks at once, 2 arriving later, each leaving after its steps",
        "online-7b.yaml",
        "llama2-7b",
        "a100-40gb",
        16,
    ),
    ScenarioDef(
        "scale-1k",
        "thousand-GPU what-if: Llama-3-70B on 1,024 H100s (128 nodes of 8), 64 tenants drawn from the paper's 12",
        "scale-1k.yaml",
        "llama3-70b",
        "h100-80gb",
        1024,
    ),
    ScenarioDef(
        "tiny-cpu",
        "executor validation on a CPU: the tiny model, 4 ranks, 3 small real-trace tasks",
        "tiny-cpu.yaml",
        "tiny",
        "cpu",
        4,
        max_gpus=16,
        gpus_why="each GPU is a process on this machine's CPU cores",
    ),
]:
    register_scenario(_defn)


@lru_cache(maxsize=16)
def _scenario_workload(tasks_file: str) -> Workload:
    # Workloads are immutable (frozen, read-only arrays): one load serves every caller.
    return load_workload(SCENARIO_DIR / tasks_file)


def load_scenario(name: str, num_gpus: int | None = None) -> Scenario:
    """A registered scenario, optionally on another number of GPUs (within its range)."""
    if name not in SCENARIOS:
        raise TraceError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    defn = SCENARIOS[name]
    if num_gpus is not None:
        if not _is_int(num_gpus) or not defn.min_gpus <= num_gpus <= defn.max_gpus:
            why = f" ({defn.gpus_why})" if defn.gpus_why else ""
            raise TraceError(
                f"scenario {name!r} runs on {defn.min_gpus}..{defn.max_gpus} GPUs{why}, got num_gpus {num_gpus!r};"
                f" for another count use its tasks: --tasks {SCENARIO_DIR / defn.tasks_file} --model {defn.model}"
                f" --gpu {defn.gpu} --num-gpus N"
            )
    return Scenario(
        name,
        defn.description,
        defn.model,
        defn.gpu,
        num_gpus or defn.num_gpus,
        _scenario_workload(defn.tasks_file),
    )


def check_model(model: str) -> str:
    """A known model name, or an existing config.json path (or a directory holding one)."""
    if model in MODEL_CONFIGS:
        return model
    path = Path(model)
    if (path.suffix == ".json" and path.is_file()) or (path.is_dir() and (path / "config.json").is_file()):
        return model
    if path.suffix == ".json" or path.is_dir():  # meant as a path: say what is missing, not "unknown model"
        missing = path if path.suffix == ".json" else path / "config.json"
        raise TraceError(f"model config {str(missing)!r} does not exist")
    raise TraceError(
        f"unknown model {model!r}; choose from {', '.join(MODEL_CONFIGS)} or an existing config .json"
    )


def check_gpu(gpu: str) -> str:
    """A known GPU name, or an existing GPU spec .json path."""
    if gpu in GPUS or (Path(gpu).suffix == ".json" and Path(gpu).is_file()):
        return gpu
    if Path(gpu).suffix == ".json":
        raise TraceError(f"GPU spec {gpu!r} does not exist")
    raise TraceError(f"unknown GPU {gpu!r}; choose from {', '.join(GPUS)} or an existing GPU spec .json")


def resolve_scenario(
    scenario: str | None = None,
    tasks: str | Path | None = None,
    model: str | None = None,
    gpu: str | None = None,
    num_gpus: int | None = None,
) -> Scenario:
    """A scenario name (num_gpus overrides its count), or a tasks file with model, gpu and num_gpus."""
    if scenario is not None and tasks is not None:
        raise TraceError("give either a scenario name or a tasks file, not both")
    if scenario is not None:
        extra = [flag for flag, value in (("model", model), ("gpu", gpu)) if value is not None]
        if extra:
            raise TraceError(
                f"scenario {scenario!r} fixes the {' and '.join(extra)}; use a tasks file to choose"
            )
        return load_scenario(scenario, num_gpus)
    if tasks is None:
        raise TraceError(
            f"give a scenario name ({', '.join(SCENARIOS)}) or a tasks file with model, gpu and num_gpus"
        )
    missing = [k for k, v in (("model", model), ("gpu", gpu), ("num_gpus", num_gpus)) if v is None]
    if missing:
        raise TraceError(f"a tasks file needs model, gpu and num_gpus (missing: {', '.join(missing)})")
    if not _is_int(num_gpus) or num_gpus < 1:
        raise TraceError(f"num_gpus must be a positive integer, got {num_gpus!r}")
    model, gpu = check_model(model), check_gpu(gpu)
    workload = load_workload(tasks)
    return Scenario(
        Path(tasks).stem, workload.description or f"tasks from {tasks}", model, gpu, num_gpus, workload
    )
