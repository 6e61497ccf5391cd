"""Host effects: what a per-layer profile does not describe when every rank of a plan is a process on a few shared
CPU cores (the executor on this machine: `lobra execute` starts one single-threaded process per rank).

All are measured with the executor's own code by `lobra calibrate --device cpu --target executor`
(executor/calibrate.py), with R = 1..max ranks running at once:

- slowdown[config][R]: a replica's compute time for a step-like block of micro-batches while R ranks in all run it
  (the replica's own plus independent <1,1> ranks) over the same replica running it alone, which is how its profile
  rows were measured. R ranks on fewer cores share them, a TP pair stalls when one of its ranks is descheduled, and
  pipeline stages free their core while they wait; background load on the machine shows up here too.
- plans[plan][config]: the same ratio for each config of one whole plan, all its ranks running at once. What a rank
  suffers depends on what its neighbours do, not only on how many there are: a <1,1> rank beside a TP pair (which
  waits on gloo half the time) ran its block 1.10x slower, beside two independent ranks 1.44x (2026-11-29). A plan
  measured as itself uses its own row; any other plan the per-R tables.
- new_shape_s[tp]: the extra seconds a micro-batch costs the first time a replica of that tp degree runs its shape
  (sequences, padded length): the first pass of each calibration grid over its second and later. Tensor
  parallelism pays it (DTensor works out its sharding per new shape; 43 ms in the median over 350 shapes first met
  after step 2 in the <2,1>x1 runs of four validations, 2026-11-29), a tp=1 rank or pipeline stage does not (0.2 ms);
  a run keeps meeting new shapes, 29% of a <2,1>x1 step's micro-batches after its 4 warm-up steps.
- stage_weights[config]: each pipeline stage's compute per micro-batch over the even share of the whole model
  (1/pp of a <tp,1> replica's compute on the same block, both alone in one job). The profile describes whole
  micro-batches, but a stage runs more than its share: the last stage also runs the final norm, the LM head and the
  loss, and every stage pays its own per-micro-batch overheads (the rotary tables, the Python of a forward, the
  hand-offs' sends). The even share had put every <1,2>x1 validation under its real steps, by 4.5-17.8%. Measured in
  six validations (2026-11-29): <1,2> weighs [0.97-1.06, 1.08-1.21], and its last over its first stage was 1.07-1.22
  where the real runs recorded 1.09-1.25 (micro_batches.csv, last_stage_s over time_s); <1,2>x1 came out -15.3%
  (a run where every plan was 5-15% under), then +2.3, +3.8, +4.9, -3.8 and -8.4%.
- sync_s[R]: the executor's LoRA-gradient sync (executor/sync.py): every rank writes its gradient shards into the
  full flat fp32 buffer and one world all-reduce (gloo) sums it. R participants, not the replica count, and the full
  buffer, not a 1/(tp*pp) shard: the analytical ring all-reduce of CostModel.dp_sync_s describes neither.
- optimizer_s[R]: the executor's AdamW step of every task's adapter: Python-bound at these sizes, not
  bandwidth-bound as CostModel.optimizer_s assumes.

HostCostModel applies them to a plan of R ranks (the simulator adds new_shape_s where a replica meets a new shape and
weighs each pipeline stage by stage_weights), and only when the caller asks for it (lobra validate): CostModel.build
never adds them, so planners and the simulator are unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from lobra.costmodel.cost_model import CostModel
from lobra.costmodel.errors import CostModelError
from lobra.costmodel.memory import MemoryOptions
from lobra.costmodel.parallel import ParallelConfig, parse_plan
from lobra.costmodel.profile import shipped_path
from lobra.costmodel.replica_time import MicroBatch

# Shipped host models by (model, gpu), beside the shipped profiles (costmodel/profiles/SOURCES.md says where from).
SHIPPED_HOSTS: dict[tuple[str, str], str] = {("tiny", "cpu"): "tiny_cpu_host.json"}
INDEPENDENT = "<1,1>"


@dataclass(frozen=True)
class HostModel:
    """Measured host effects per rank count R (see the module docstring). slowdown is per replica config: a replica
    of tensor-parallel ranks stalls whenever one of them is descheduled, pipeline stages leave cores idle while they
    wait for each other; a config without its own table falls back to independent ranks (<1,1>)."""

    cores: int
    slowdown: dict[
        str, dict[int, float]
    ]  # "<tp,pp>" -> {R: this replica's compute with R ranks busy / alone}
    sync_s: dict[int, float]
    optimizer_s: dict[int, float]
    source: str = ""
    plans: dict[str, dict[str, float]] = field(default_factory=dict)  # plan -> "<tp,pp>" -> slowdown in it
    new_shape_s: dict[int, float] = field(default_factory=dict)  # tp -> seconds; unmeasured degrees pay none
    stage_weights: dict[str, tuple[float, ...]] = field(default_factory=dict)  # "<tp,pp>" -> one per stage

    def __post_init__(self) -> None:
        if not isinstance(self.cores, int) or self.cores < 1:
            raise CostModelError(f"host model: cores must be a positive integer, got {self.cores!r}")
        if INDEPENDENT not in self.slowdown:
            raise CostModelError(f"host model: slowdown needs a table for {INDEPENDENT} (independent ranks)")
        tables = {f"slowdown {c}": t for c, t in self.slowdown.items()}
        tables |= {"sync_s": self.sync_s, "optimizer_s": self.optimizer_s}
        if self.new_shape_s:
            tables["new_shape_s"] = self.new_shape_s
        for name, table in tables.items():
            if not table or any(not isinstance(r, int) or r < 1 for r in table):
                raise CostModelError(f"host model: {name} needs positive integer rank counts, got {table!r}")
            if any(not isinstance(v, int | float) or v < 0 for v in table.values()):
                raise CostModelError(f"host model: {name} values must be numbers >= 0, got {table!r}")
        if set(self.sync_s) != set(self.optimizer_s):
            raise CostModelError("host model: sync_s and optimizer_s must cover the same rank counts")
        factors = [v for t in (*self.slowdown.values(), *self.plans.values()) for v in t.values()]
        if any(not isinstance(v, int | float) or v <= 0 for v in factors):
            raise CostModelError(f"host model: slowdown factors must be positive numbers, got {factors!r}")
        for config, weights in self.stage_weights.items():
            pp = parse_plan(config).replicas[0].pp
            if len(weights) != pp or any(not isinstance(w, int | float) or w <= 0 for w in weights):
                raise CostModelError(
                    f"host model: stage_weights of {config} needs {pp} positive numbers, got {weights!r}"
                )

    @property
    def ranks(self) -> list[int]:
        return sorted(self.sync_s)

    def slowdown_table(self, config: ParallelConfig) -> dict[int, float]:
        return self.slowdown.get(str(config), self.slowdown[INDEPENDENT])

    def factor(self, config: ParallelConfig, ranks: int, plan: str | None = None) -> float | None:
        """This replica's compute with `ranks` ranks busy over the same replica alone: the plan's own measurement
        if it has one, else the per-R table of its config; None if neither was measured."""
        measured = self.plans.get(plan, {}) if plan else {}
        return measured.get(str(config), self.slowdown_table(config).get(ranks))

    def check_plan(self, configs, ranks: int, plan: str | None = None) -> None:
        """Raise unless every config of a plan of `ranks` ranks has measured host effects."""
        missing = [str(c) for c in configs if self.factor(c, ranks, plan) is None]
        if ranks not in self.sync_s or missing:
            raise CostModelError(
                f"the host model has no measurements for {ranks} ranks"
                + (f" with replica(s) {', '.join(dict.fromkeys(missing))}" if missing else "")
                + f" (measured: {', '.join(map(str, self.ranks))} ranks); recalibrate with a larger --max-ranks"
            )

    def to_json(self, path: str | Path, extra: dict | None = None) -> None:
        payload = {
            "cores": self.cores,
            "slowdown": {c: {str(r): v for r, v in sorted(t.items())} for c, t in self.slowdown.items()},
            "sync_s": {str(r): v for r, v in sorted(self.sync_s.items())},
            "optimizer_s": {str(r): v for r, v in sorted(self.optimizer_s.items())},
            "plans": self.plans,
            "new_shape_s": {str(tp): v for tp, v in sorted(self.new_shape_s.items())},
            "stage_weights": {c: list(w) for c, w in self.stage_weights.items()},
            "source": self.source,
            **(extra or {}),
        }
        Path(path).write_text(json.dumps(payload, indent=2) + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> HostModel:
        path = Path(path)
        if not path.is_file():
            raise CostModelError(f"host model {str(path)!r} does not exist")
        try:
            payload = json.loads(path.read_text())

            def table(d: dict) -> dict[int, float]:
                return {int(r): float(v) for r, v in d.items()}

            return cls(
                int(payload["cores"]),
                {c: table(t) for c, t in payload["slowdown"].items()},
                table(payload["sync_s"]),
                table(payload["optimizer_s"]),
                payload.get("source", path.name),
                # keyed as str(DeploymentPlan) spells a plan, whatever order the file lists its replicas in
                {
                    str(parse_plan(p)): {str(parse_plan(c).replicas[0]): float(v) for c, v in t.items()}
                    for p, t in payload.get("plans", {}).items()
                },
                table(payload.get("new_shape_s", {})),
                {
                    str(parse_plan(c).replicas[0]): tuple(float(w) for w in ws)
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


class HostCostModel(CostModel):
    """A cost model for a plan of `ranks` processes sharing the host: each replica's stage compute scaled by the
    contention its config suffers at that rank count, the measured gradient sync and optimizer in place of the
    analytical ones. `base` is the cost model without host effects (what the executor's dispatcher uses)."""

    def __init__(
        self, base: CostModel, host: HostModel, ranks: int, configs=(), plan: str | None = None
    ) -> None:
        host.check_plan(configs, ranks, plan)
        super().__init__(
            base.model, base.gpu, base.fit, base.analytical, base.memory, base.cap, f"{base.source} + host"
        )
        self.base, self.host, self.ranks, self.plan = base, host, ranks, plan

    @classmethod
    def for_plan(cls, base: CostModel, host: HostModel, plan) -> HostCostModel:
        return cls(base, host, plan.num_gpus, plan.replicas, str(plan))

    def with_memory(self, memory: MemoryOptions) -> HostCostModel:
        return HostCostModel(self.base.with_memory(memory), self.host, self.ranks, plan=self.plan)

    def compute_factor(self, config: ParallelConfig) -> float:
        """This replica's compute with `ranks` ranks busy over the same replica alone, which is how its profile
        rows were measured (executor/calibrate.py)."""
        factor = self.host.factor(config, self.ranks, self.plan)
        if factor is None:
            raise CostModelError(f"the host model has no slowdown of {config} with {self.ranks} ranks")
        return factor

    def stage_s(self, config: ParallelConfig, mb: MicroBatch) -> float:
        return super().stage_s(config, mb) * self.compute_factor(config)

    def stage_weights(self, config: ParallelConfig) -> tuple[float, ...]:
        return self.host.stage_weights.get(str(config), super().stage_weights(config))

    def new_shape_s(self, config: ParallelConfig) -> float:
        # CPU work like the rest of the stage: it contends for the cores alike
        return self.host.new_shape_s.get(config.tp, 0.0) * self.compute_factor(config)

    def dp_sync_s(self, config: ParallelConfig, num_replicas: int, spans_nodes: bool) -> float:
        # The executor all-reduces over every rank whatever the replica count: measured at this rank count.
        return self.host.sync_s[self.ranks]

    def optimizer_s(self, config: ParallelConfig) -> float:
        return self.host.optimizer_s[self.ranks]
