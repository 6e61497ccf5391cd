"""CostModel: time and memory of any replica config for one (model, GPU) pair, the object every policy consults.

Layer times come from, in order: a `--profile` given by the user (a CSV of this model, or an analytical calibration
JSON of any model: costmodel/calibrate.py); the shipped profile of the pair; the analytical model calibrated on the
shipped A100 profile. A fitted profile that lacks a tp degree (or has too few rows for the quadratic) falls back to
the analytical model calibrated on that same profile.

The whole model runs, not only its decoder layers: a pipeline stage holds its share of the layers
(ParallelConfig.stage_layers), the first stage also the embedding and the last the final norm, the LM head and the
loss. Those come from the profile's pre_post_time column where it has one, else from FLOPs and bytes at the
calibrated efficiencies (AnalyticalLayerTime.head_ms). In 1F1B the slowest stage paces every micro-batch, which for
a 128K vocabulary is the last one.

What the software stack adds on top (contention, per-stage weights measured on a host, a shape's first run, a
measured sync and optimizer) is an Overheads value it is given: neutral unless the caller measured one
(costmodel/overheads.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lobra.costmodel.analytical import AnalyticalLayerTime
from lobra.costmodel.calibrate import (
    AnalyticalCalibration,
    calibrate,
    is_calibration_file,
    reference_calibration,
)
from lobra.costmodel.errors import CostModelError
from lobra.costmodel.layer_time import NUM_COEFFS, LayerTimeFit, fit_profile
from lobra.costmodel.memory import (
    CHECKPOINTING,
    DEFAULT_CAP_TOKENS,
    MemoryOptions,
    feasible_configs,
    max_tokens,
)
from lobra.costmodel.outer_time import OuterTimeFit
from lobra.costmodel.overheads import Overheads
from lobra.costmodel.parallel import ParallelConfig
from lobra.costmodel.pipeline import FORWARD_SHARE, pipeline_makespans
from lobra.costmodel.profile import check_profile_model, load_profile, shipped_profile
from lobra.costmodel.replica_time import MicroBatch, ReplicaTime, ring_allreduce_s
from lobra.costmodel.specs import GPUSpec, ModelSpec, load_gpu_spec, load_model_spec

BF16_BYTES, FP32_BYTES = 2, 4
P2P_LATENCY_S = 10e-6
# Adam on fp32 LoRA state: read param, grad, m, v and write param, m, v.
ADAM_BYTES_PER_PARAM = 7 * FP32_BYTES


class CostModel:
    def __init__(
        self,
        model: ModelSpec,
        gpu: GPUSpec,
        fit: LayerTimeFit | None,
        analytical: AnalyticalLayerTime,
        memory: MemoryOptions | None = None,
        cap: int = DEFAULT_CAP_TOKENS,
        source: str = "analytical",
        overheads: Overheads | None = None,
        outer: OuterTimeFit | None = None,
        checkpointing: str = "needed",
    ) -> None:
        self.model, self.gpu, self.fit, self.analytical = model, gpu, fit, analytical
        self.outer = outer
        if checkpointing not in CHECKPOINTING:
            raise CostModelError(
                f"checkpointing must be one of {', '.join(CHECKPOINTING)}, got {checkpointing!r}"
            )
        # which configs feasible_configs offers with activation checkpointing (costmodel/memory.py)
        self.checkpointing = checkpointing
        self.memory = memory or MemoryOptions()
        self.cap = cap
        self.source = source
        self.overheads = overheads or Overheads()
        self._layer_cache: dict[tuple, float] = {}
        self._outer_cache: dict[tuple[int, int], tuple[float, float]] = {}
        self._max_tokens: dict[ParallelConfig, int] = {}

    def __getstate__(self) -> dict:
        # What goes to a worker process: the model without its per-micro-batch memo, which grows to megabytes
        # over a planner's dispatches and is cheaper to recompute than to send.
        return {**self.__dict__, "_layer_cache": {}, "_outer_cache": {}}

    @classmethod
    def build(
        cls,
        model: str | ModelSpec,
        gpu: str | GPUSpec,
        *,
        profile: str | Path | None = None,
        fit: LayerTimeFit | None = None,
        memory: MemoryOptions | None = None,
        cap: int = DEFAULT_CAP_TOKENS,
        overheads: Overheads | None = None,
        outer: OuterTimeFit | None = None,
        checkpointing: str = "needed",
    ) -> CostModel:
        """`outer`: the measured time outside the decoder layers, for a `fit` given without its profile (a
        profile's own pre_post_time column is read from it)."""
        model = model if isinstance(model, ModelSpec) else load_model_spec(model)
        gpu = gpu if isinstance(gpu, GPUSpec) else load_gpu_spec(gpu)
        memory = memory or MemoryOptions()
        path = Path(profile) if profile is not None else shipped_profile(model.name, gpu.name)
        if path is not None and is_calibration_file(path):
            cal = AnalyticalCalibration.from_json(path)
            source = f"analytical, {cal.describe_stack()}"
        elif fit is None and path is not None:
            df = load_profile(path)
            check_profile_model(path, model.name)
            reference = shipped_profile("llama2-7b", "a100-40gb")
            # the shipped A100 profile is calibrated once per process (reference_calibration caches it)
            same = (model.name, gpu.name) == ("llama2-7b", "a100-40gb") and path == reference
            cal = reference_calibration() if same else calibrate(model, gpu, df, source=path.name)
            outer = OuterTimeFit.of_profile(df)
            if df.groupby("tp").size().min() >= NUM_COEFFS:
                fit = fit_profile(df, source=str(path))
                source = f"profile {path.name}"
            else:  # too few rows for the quadratic: the analytical model calibrated on them
                source = f"analytical, calibrated on profile {path.name} ({len(df)} rows)"
        else:
            cal = reference_calibration()
            source = (
                f"fit {fit.source or '(given)'}" if fit is not None else f"analytical, {cal.describe_stack()}"
            )
        analytical = cal.layer_time(model, gpu, lora_rank=memory.lora_rank, lora_targets=memory.lora_targets)
        return cls(model, gpu, fit, analytical, memory, cap, source, overheads, outer, checkpointing)

    def with_memory(self, memory: MemoryOptions) -> CostModel:
        """The same time model and overheads with other memory options (e.g. fewer tasks): no refit."""
        return self._with(memory=memory)

    def with_overheads(self, overheads: Overheads) -> CostModel:
        """The same time and memory model with other overheads: no refit."""
        return self._with(overheads=overheads)

    def _with(self, **changes) -> CostModel:
        keep = {
            "memory": self.memory,
            "cap": self.cap,
            "source": self.source,
            "overheads": self.overheads,
            "outer": self.outer,
            "checkpointing": self.checkpointing,
        }
        return CostModel(self.model, self.gpu, self.fit, self.analytical, **(keep | changes))

    # -- time ---------------------------------------------------------------------------------------------------
    def layer_model(self, tp: int) -> LayerTimeFit | AnalyticalLayerTime:
        """The fit where it covers tp, else the analytical model."""
        return self.fit if self.fit is not None and tp in self.fit.coeffs else self.analytical

    def layer_ms(self, tp: int, mb: MicroBatch) -> float:
        """Forward+backward ms of one decoder layer for one micro-batch on a TP group of `tp`."""
        key = (tp, mb.lengths if mb.packed else (mb.num_seqs, mb.seq_len), mb.packed)
        cached = self._layer_cache.get(key)
        if cached is None:
            layer = self.layer_model(tp)
            if mb.packed:
                cached = layer.predict_packed_ms(tp, mb.lengths)
            else:
                cached = layer.predict_ms(tp, mb.num_seqs, mb.seq_len)
            self._layer_cache[key] = cached
        return cached

    def outer_ms(self, tp: int, mb: MicroBatch) -> tuple[float, float]:
        """(embedding, final norm + LM head + loss) forward+backward ms of one micro-batch on a TP group of `tp`:
        the profile's measured pre_post_time where it covers tp (less the embedding's analytical share), else
        FLOPs and bytes at the calibrated efficiencies."""
        key = (tp, mb.tokens)
        cached = self._outer_cache.get(key)
        if cached is None:
            embedding = self.analytical.embedding_ms(tp, mb.tokens)
            measured = self.outer.predict_ms(tp, mb.tokens) if self.outer is not None else None
            if measured is not None:
                embedding = min(embedding, measured)
                cached = (embedding, measured - embedding)
            else:
                cached = (embedding, self.analytical.head_ms(tp, mb.tokens))
            self._outer_cache[key] = cached
        return cached

    def stage_times(self, config: ParallelConfig, mb: MicroBatch, extra_s: float = 0.0) -> tuple[float, ...]:
        """Forward+backward seconds of one micro-batch on each pipeline stage: its layers, the embedding on the
        first, the head on the last, plus `extra_s` on each (a shape's first run), with a checkpointing config's
        recomputed forwards (FORWARD_SHARE of each layer's time once more), times the config's compute
        factor (1 unless the overheads measured contention). Where the overheads measured this config's stage
        weights (head and embedding included), stage k takes weight k times the even share of the layers."""
        return self.stage_times_of(config, (mb,), (extra_s,))[0]

    def stage_times_of(
        self, config: ParallelConfig, mbs: Sequence[MicroBatch], extras_s: Sequence[float] | None = None
    ) -> list[tuple[float, ...]]:
        """stage_times of each micro-batch (extras_s[m] its extra_s; none: 0), what the config decides looked up
        once: the simulator asks for every micro-batch of a replica at a time."""
        extras = [0.0] * len(mbs) if extras_s is None else extras_s
        tp, factor = config.tp, self.overheads.factor(config)
        weights = self.overheads.stage_weights.get(config)
        if weights is not None:
            num_layers, pp = self.model.num_layers, config.pp
            out = []
            for mb, extra_s in zip(mbs, extras, strict=True):
                even = self.layer_ms(tp, mb) / 1e3 * num_layers / pp * factor + extra_s * factor
                out.append(tuple(even * w for w in weights))
            return out
        layers = config.stage_layers(self.model.num_layers)
        # ckpt: each layer's forward runs again in its backward
        recompute = 1 + FORWARD_SHARE if config.ckpt else 1.0
        out = []
        for mb, extra_s in zip(mbs, extras, strict=True):
            layer_s = self.layer_ms(tp, mb) / 1e3 * recompute
            embedding_ms, head_ms = self.outer_ms(tp, mb)
            times = [n * layer_s + extra_s for n in layers]
            times[0] += embedding_ms / 1e3
            times[-1] += head_ms / 1e3
            out.append(tuple(times) if factor == 1.0 else tuple(t * factor for t in times))  # x 1.0 is exact
        return out

    def micro_batch_s(self, config: ParallelConfig, mb: MicroBatch) -> float:
        """Seconds one micro-batch holds a replica's pipeline: on its slowest stage, plus one crossing."""
        return max(self.stage_times(config, mb)) + self.p2p_s(config, mb)

    def first_run_s(self, config: ParallelConfig) -> float:
        """Extra seconds a stage of this config spends the first time it runs a micro-batch shape (the simulator
        tracks which shapes each replica has run; stage_times' extra_s): 0 unless the overheads measured it."""
        return self.overheads.first_run_s.get(config.tp, 0.0)

    def p2p_bytes(self, config: ParallelConfig, mb: MicroBatch) -> float:
        """Bytes each TP rank sends across one stage boundary for one micro-batch (its 1/tp share under sequence
        parallelism): activations forward, the same size of gradients backward."""
        return mb.tokens * self.model.hidden_size * BF16_BYTES / config.tp

    def p2p_s(self, config: ParallelConfig, mb: MicroBatch, link_gbps: float | None = None) -> float:
        """One crossing of one stage boundary (forward or backward); over NVLink unless the replica spans nodes."""
        if config.pp == 1:
            return 0.0
        if link_gbps is None:
            link_gbps = self.gpu.link_gbps(spans_nodes=config.num_gpus > self.gpu.gpus_per_node)
        return self.p2p_bytes(config, mb) / (link_gbps * 1e9) + P2P_LATENCY_S

    def lora_params(self) -> int:
        """LoRA parameters of all tasks, whole model."""
        per_layer = self.model.lora_params_per_layer(self.memory.lora_rank, self.memory.lora_targets)
        return self.memory.num_tasks * self.model.num_layers * per_layer

    def dp_sync_s(self, config: ParallelConfig, num_replicas: int, spans_nodes: bool) -> float:
        """Each GPU all-reduces its 1/(tp*pp) shard of the fp32 LoRA gradients with its peers in the other
        replicas, over the slowest link among them; the overheads' measured sync instead where given."""
        if self.overheads.dp_sync_s is not None:
            return self.overheads.dp_sync_s
        shard_bytes = self.lora_params() * FP32_BYTES / config.num_gpus
        return ring_allreduce_s(shard_bytes, num_replicas, self.gpu.link_gbps(spans_nodes))

    def optimizer_s(self, config: ParallelConfig) -> float:
        """Adam over this GPU's share of the LoRA state at HBM bandwidth, plus the stack's fixed cost per step; the
        overheads' measured step where given."""
        if self.overheads.optimizer_s is not None:
            return self.overheads.optimizer_s
        adam_s = self.lora_params() / config.num_gpus * ADAM_BYTES_PER_PARAM / (self.gpu.hbm_gbps * 1e9)
        return adam_s + self.analytical.stack.step_s

    def replica_time(
        self,
        config: ParallelConfig,
        micro_batches: list[MicroBatch],
        *,
        num_replicas: int = 1,
        spans_nodes: bool = False,
    ) -> ReplicaTime:
        """One replica's step: its micro-batches (1F1B when pp > 1), then the LoRA-gradient sync and optimizer."""
        times = self.stage_times_of(config, micro_batches)
        p2p = [self.p2p_s(config, mb) for mb in micro_batches]
        # The exact 1F1B schedule, once without transfers (the bubble) and once with them (their cost).
        without_comm, with_comm = pipeline_makespans(times, [[0.0] * len(times), p2p], config.pp)
        per_stage = [sum(t[k] for t in times) for k in range(config.pp)]
        slowest = max(range(config.pp), key=per_stage.__getitem__)  # the others wait for it
        embedding_s = head_s = 0.0
        if config not in self.overheads.stage_weights:
            factor = self.overheads.factor(config)
            outer = [self.outer_ms(config.tp, mb) for mb in micro_batches]
            embedding_s = sum(e for e, _ in outer) * factor / 1e3 if slowest == 0 else 0.0
            head_s = sum(h for _, h in outer) * factor / 1e3 if slowest == config.pp - 1 else 0.0
        return ReplicaTime(
            compute_s=per_stage[slowest] - embedding_s - head_s if micro_batches else 0.0,
            embedding_s=embedding_s,
            head_s=head_s,
            pp_bubble_s=without_comm - per_stage[slowest] if micro_batches else 0.0,
            pp_comm_s=with_comm - without_comm,
            dp_sync_s=self.dp_sync_s(config, num_replicas, spans_nodes),
            optimizer_s=self.optimizer_s(config) if micro_batches or num_replicas > 1 else 0.0,
        )

    # -- memory -------------------------------------------------------------------------------------------------
    def check_config(self, config: ParallelConfig) -> None:
        """Raise, naming the reason, unless the config can shard this model on this GPU type."""
        config.check_fits(
            num_layers=self.model.num_layers,
            num_heads=self.model.num_heads,
            num_kv_heads=self.model.num_kv_heads,
            gpus_per_node=self.gpu.gpus_per_node,
        )

    def max_tokens(self, config: ParallelConfig) -> int:
        """Largest micro-batch (tokens) that fits; 0 when the config cannot hold the model."""
        if config not in self._max_tokens:
            try:
                self._max_tokens[config] = max_tokens(self.model, self.gpu, config, self.memory, self.cap)
            except CostModelError:
                self._max_tokens[config] = 0
        return self._max_tokens[config]

    def feasible_configs(self, max_gpus: int) -> dict[ParallelConfig, int]:
        return feasible_configs(self.model, self.gpu, max_gpus, self.memory, self.cap, self.checkpointing)
