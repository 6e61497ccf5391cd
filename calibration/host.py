"""The host model: what a per-layer profile does not describe when every rank of a plan is a process on a few shared
CPU cores (the executor on this machine: `lobra execute` starts one single-threaded process per rank), and how it
becomes the cost model's Overheads for one plan.

Measured with the executor's own code by `lobra calibrate --device cpu --target executor` (calibration/jobs.py),
with R = 1..max ranks running at once:

- contention[config][R]: a replica's compute time for a step-like block of micro-batches while R ranks in all run
  it (the replica's own plus independent <1,1> ranks) over the same replica running it alone, which is how its
  profile rows were measured. R ranks on fewer cores share them, a TP pair stalls when one of its ranks is
  descheduled, and pipeline stages free their core while they wait; background load shows up here too.
- plans[plan][config]: the same ratio for each config of one whole plan, all its ranks running at once. What a rank
  suffers depends on what its neighbours do, not only on how many there are (a rank beside a TP pair, which waits
  on gloo half the time, contends less than beside independent ranks): a plan measured as itself uses its own row,
  any other plan the per-R tables.
- first_run_s[tp]: the extra seconds a micro-batch costs the first time a replica of that tp degree runs its shape
  (sequences, padded length). Tensor parallelism pays it (DTensor works out its sharding per new shape); a tp=1 rank
  or a pipeline stage hardly does, and a run keeps meeting new shapes long after its warm-up steps.
- stage_weights[config]: each pipeline stage's compute per micro-batch over the even share of the whole model. The
  profile describes whole micro-batches, but the last stage also runs the final norm, the LM head and the loss,
  and every stage pays its own per-micro-batch overheads (the rotary tables, the Python of a forward, the sends).
- sync_s[R]: the executor's LoRA-gradient sync (executor/sync.py): every rank writes its gradient shards into the
  full flat fp32 buffer and one world all-reduce (gloo) sums it: R participants, not the replica count, and the
  full buffer, not a 1/(tp*pp) shard, so the analytical ring all-reduce describes neither.
- optimizer_s[R]: the executor's AdamW step of every task's adapter: Python-bound at these sizes, not
  bandwidth-bound as the analytical optimizer time assumes.

`HostModel.overheads(plan)` turns these into the plan's Overheads, and only a caller that asks for it applies
them (lobra validate): CostModel.build never does, so planners and the simulator are unchanged. What the
measurements and validations showed is in docs/calibration.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from lobra.costmodel import DeploymentPlan, Overheads, ParallelConfig, parse_plan
from lobra.costmodel.errors import CostModelError
from lobra.costmodel.profile import shipped_path

from lobra.io import write_text

# Shipped host models by (model, gpu), beside the shipped profiles (costmodel/profiles/SOURCES.md says where from).
SHIPPED_HOSTS: dict[tuple[str, str], str] = {("tiny", "cpu"): "tiny_cpu_host.json"}
INDEPENDENT = "<1,1>"


def _config(text: str) -> str:
    """A config as str(ParallelConfig) spells it."""
    return str(parse_plan(text).replicas[0])


@dataclass(frozen=True)
class HostModel:
    """Measured host effects per rank count R (see the module docstring). contention is per replica config: a config
    without its own table contends like independent ranks (<1,1>)."""

    cores: int
    contention: dict[
        str, dict[int, float]
    ]  # "<tp,pp>" -> {R: this replica's compute with R ranks busy / alone}
    sync_s: dict[int, float]
    optimizer_s: dict[int, float]
    source: str = ""
    plans: dict[str, dict[str, float]] = field(default_factory=dict)  # plan -> "<tp,pp>" -> contention in it
    first_run_s: dict[int, float] = field(default_factory=dict)  # tp -> seconds; unmeasured degrees pay none
    stage_weights: dict[str, tuple[float, ...]] = field(default_factory=dict)  # "<tp,pp>" -> one per stage

    def __post_init__(self) -> None:
        if not isinstance(self.cores, int) or self.cores < 1:
            raise CostModelError(f"host model: cores must be a positive integer, got {self.cores!r}")
        if INDEPENDENT not in self.contention:
            raise CostModelError(
                f"host model: contention needs a table for {INDEPENDENT} (independent ranks)"
            )
        tables = {f"contention {c}": t for c, t in self.contention.items()}
        tables |= {"sync_s": self.sync_s, "optimizer_s": self.optimizer_s}
        if self.first_run_s:
            tables["first_run_s"] = self.first_run_s
        for name, table in tables.items():
            if not table or any(not isinstance(r, int) or r < 1 for r in table):
                raise CostModelError(f"host model: {name} needs positive integer rank counts, got {table!r}")
            if any(not isinstance(v, int | float) or v < 0 for v in table.values()):
                raise CostModelError(f"host model: {name} values must be numbers >= 0, got {table!r}")
        if set(self.sync_s) != set(self.optimizer_s):
            raise CostModelError("host model: sync_s and optimizer_s must cover the same rank counts")
        factors = [v for t in (*self.contention.values(), *self.plans.values()) for v in t.values()]
        if any(not isinstance(v, int | float) or v <= 0 for v in factors):
            raise CostModelError(f"host model: contention factors must be positive numbers, got {factors!r}")
        for config, weights in self.stage_weights.items():
            pp = parse_plan(config).replicas[0].pp
            if len(weights) != pp or any(not isinstance(w, int | float) or w <= 0 for w in weights):
                raise CostModelError(
                    f"host model: stage_weights of {config} needs {pp} positive numbers, got {weights!r}"
                )

    @property
    def measured_num_ranks(self) -> list[int]:
        return sorted(self.sync_s)

    def contention_table(self, config: ParallelConfig) -> dict[int, float]:
        return self.contention.get(str(config), self.contention[INDEPENDENT])

    def factor(self, config: ParallelConfig, num_ranks: int, plan: str | None = None) -> float | None:
        """This replica's compute with `num_ranks` ranks busy over the same replica alone: the plan's own
        measurement if it has one, else the per-R table of its config; None if neither was measured."""
        measured = self.plans.get(plan, {}) if plan else {}
        return measured.get(str(config), self.contention_table(config).get(num_ranks))

    def check_plan(self, configs, num_ranks: int, plan: str | None = None) -> None:
        """Raise unless every config of a plan of `num_ranks` ranks has measured host effects."""
        missing = [str(c) for c in configs if self.factor(c, num_ranks, plan) is None]
        if num_ranks not in self.sync_s or missing:
            raise CostModelError(
                f"the host model has no measurements for {num_ranks} ranks"
                + (f" with replica(s) {', '.join(dict.fromkeys(missing))}" if missing else "")
                + f" (measured: {', '.join(map(str, self.measured_num_ranks))} ranks); recalibrate with a larger "
                "--max-ranks"
            )

    def overheads(self, plan: DeploymentPlan) -> Overheads:
        """The plan's Overheads: every rank of the plan is a process here, so its rank count R selects the
        contention of each config (the plan's own row where it was measured as itself), the gradient sync and the
        optimizer; the stage weights and first-run costs hold for any plan."""
        num_ranks, name = plan.num_gpus, str(plan)
        self.check_plan(plan.replicas, num_ranks, name)
        return Overheads(
            compute_factor={c: self.factor(c, num_ranks, name) for c in dict.fromkeys(plan.replicas)},
            stage_weights={parse_plan(c).replicas[0]: w for c, w in self.stage_weights.items()},
            first_run_s=dict(self.first_run_s),
            # The executor all-reduces over every rank whatever the replica count: measured at this rank count.
            dp_sync_s=self.sync_s[num_ranks],
            optimizer_s=self.optimizer_s[num_ranks],
        )

    def to_json(self, path: str | Path, extra: dict | None = None) -> None:
        payload = {
            "cores": self.cores,
            "contention": {c: {str(r): v for r, v in sorted(t.items())} for c, t in self.contention.items()},
            "sync_s": {str(r): v for r, v in sorted(self.sync_s.items())},
            "optimizer_s": {str(r): v for r, v in sorted(self.optimizer_s.items())},
            "plans": self.plans,
            "first_run_s": {str(tp): v for tp, v in sorted(self.first_run_s.items())},
            "stage_weights": {c: list(w) for c, w in self.stage_weights.items()},
            "source": self.source,
            **(extra or {}),
        }
        write_text(path, json.dumps(payload, indent=2) + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> HostModel:
        """Read a host model; files written before the renaming (slowdown, new_shape_s) read the same."""
        path = Path(path)
        if not path.is_file():
            raise CostModelError(f"host model {str(path)!r} does not exist")
        try:
            payload = json.loads(path.read_text())

            def table(d: dict) -> dict[int, float]:
                return {int(r): float(v) for r, v in d.items()}

            contention = payload["contention"] if "contention" in payload else payload["slowdown"]
            return cls(
                int(payload["cores"]),
                {c: table(t) for c, t in contention.items()},
                table(payload["sync_s"]),
                table(payload["optimizer_s"]),
                payload.get("source", path.name),
                # keyed as str(DeploymentPlan) spells a plan, whatever order the file lists its replicas in
                {
                    str(parse_plan(p)): {_config(c): float(v) for c, v in t.items()}
                    for p, t in payload.get("plans", {}).items()
                },
                table(payload.get("first_run_s", payload.get("new_shape_s", {}))),
                {
                    _config(c): tuple(float(w) for w in ws)
                    for c, ws in payload.get("stage_weights", {}).items()
                },
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError, CostModelError) as err:
            raise CostModelError(f"host model {str(path)!r} is malformed: {err!r}") from None


def shipped_host(model: str, gpu: str) -> HostModel | None:
    """The shipped host model for (model, gpu), if there is one on disk."""
    filename = SHIPPED_HOSTS.get((model, gpu))
    if filename is None:
        return None
    path = shipped_path(filename)
    return HostModel.from_json(path) if path.is_file() else None
