"""CostModel: time and memory of any replica config for one (model, GPU) pair, the object every policy consults.

Layer times come from, in order: a `--profile` CSV given by the user; the shipped profile of the pair; the
analytical model with efficiencies calibrated on the shipped A100 profile. A fitted profile that lacks a tp degree
falls back to the analytical model calibrated on that same profile. What the software stack adds on top (contention,
stage weights, a shape's first run, a measured sync and optimizer) is an Overheads value it is given: neutral unless
the caller measured one (costmodel/overheads.py).
"""

from __future__ import annotations

from pathlib import Path

from lobra.costmodel.analytical import AnalyticalLayerTime, calibrate_efficiency, reference_efficiency
from lobra.costmodel.errors import CostModelError
from lobra.costmodel.layer_time import LayerTimeFit, fit_profile
from lobra.costmodel.memory import DEFAULT_CAP_TOKENS, MemoryOptions, feasible_configs, max_tokens
from lobra.costmodel.overheads import Overheads
from lobra.costmodel.parallel import ParallelConfig
from lobra.costmodel.pipeline import pipeline_makespan
from lobra.costmodel.profile import load_profile, shipped_profile
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
    ) -> None:
        self.model, self.gpu, self.fit, self.analytical = model, gpu, fit, analytical
        self.memory = memory or MemoryOptions()
        self.cap = cap
        self.source = source
        self.overheads = overheads or Overheads()
        self._layer_cache: dict[tuple, float] = {}
        self._max_tokens: dict[ParallelConfig, int] = {}

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
    ) -> CostModel:
        model = model if isinstance(model, ModelSpec) else load_model_spec(model)
        gpu = gpu if isinstance(gpu, GPUSpec) else load_gpu_spec(gpu)
        memory = memory or MemoryOptions()
        path = Path(profile) if profile is not None else shipped_profile(model.name, gpu.name)
        if fit is None and path is not None:
            df = load_profile(path)
            fit = fit_profile(df, source=str(path))
            eff = calibrate_efficiency(model, gpu, df)
            source = f"profile {path.name}"
        else:
            eff = reference_efficiency()
            source = (
                f"fit {fit.source or '(given)'}"
                if fit is not None
                else "analytical (efficiencies calibrated on the A100-40GB Llama-2-7B profile)"
            )
        analytical = AnalyticalLayerTime(model, gpu, eff, memory.lora_rank, memory.lora_targets)
        return cls(model, gpu, fit, analytical, memory, cap, source, overheads)

    def with_memory(self, memory: MemoryOptions) -> CostModel:
        """The same time model and overheads with other memory options (e.g. fewer tasks): no refit."""
        return CostModel(
            self.model, self.gpu, self.fit, self.analytical, memory, self.cap, self.source, self.overheads
        )

    def with_overheads(self, overheads: Overheads) -> CostModel:
        """The same time and memory model with other overheads: no refit."""
        return CostModel(
            self.model, self.gpu, self.fit, self.analytical, self.memory, self.cap, self.source, overheads
        )

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

    def stage_s(self, config: ParallelConfig, mb: MicroBatch) -> float:
        """Compute seconds of one micro-batch on one pipeline stage (num_layers / pp layers), times the config's
        compute factor (1 unless the overheads measured contention; x * 1.0 is exact, so neutral changes nothing)."""
        even = self.layer_ms(config.tp, mb) * self.model.num_layers / config.pp / 1e3
        return even * self.overheads.factor(config)

    def stage_weights(self, config: ParallelConfig) -> tuple[float, ...]:
        """Each pipeline stage's compute per micro-batch over stage_s (the even share of the whole model): 1 each
        unless the overheads give measured ones, as the per-layer profiles describe decoder layers only (a real last
        stage also runs the LM head and the loss, and every stage pays its own per-micro-batch overheads)."""
        return self.overheads.stage_weights.get(config, (1.0,) * config.pp)

    def first_run_s(self, config: ParallelConfig) -> float:
        """Extra seconds a stage of this config spends the first time it runs a micro-batch shape (the simulator
        tracks which shapes each replica has run): 0 unless the overheads measured it for this tp degree."""
        extra = self.overheads.first_run_s.get(config.tp, 0.0)
        # CPU work like the rest of the stage: it contends for the cores alike
        return extra * self.overheads.factor(config) if extra else 0.0

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
        """Adam over this GPU's share of the LoRA state at HBM bandwidth; the overheads' measured step where given."""
        if self.overheads.optimizer_s is not None:
            return self.overheads.optimizer_s
        return self.lora_params() / config.num_gpus * ADAM_BYTES_PER_PARAM / (self.gpu.hbm_gbps * 1e9)

    def replica_time(
        self,
        config: ParallelConfig,
        micro_batches: list[MicroBatch],
        *,
        num_replicas: int = 1,
        spans_nodes: bool = False,
    ) -> ReplicaTime:
        """One replica's step: its micro-batches (1F1B when pp > 1), then the LoRA-gradient sync and optimizer."""
        stages = [self.stage_s(config, mb) for mb in micro_batches]
        p2p = [self.p2p_s(config, mb) for mb in micro_batches]
        weights = self.stage_weights(config)
        # The exact 1F1B schedule, once without transfers (the bubble) and once with them (their cost).
        without_comm = pipeline_makespan(stages, [0.0] * len(stages), config.pp, weights)
        with_comm = pipeline_makespan(stages, p2p, config.pp, weights)
        compute = sum(stages) * max(weights)  # the slowest stage's: the others wait for it
        return ReplicaTime(
            compute_s=compute,
            pp_bubble_s=without_comm - compute,
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
        return feasible_configs(self.model, self.gpu, max_gpus, self.memory, self.cap)
