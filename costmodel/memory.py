"""Memory model: what one GPU of a replica holds, and the largest micro-batch (in tokens) that fits.

Per GPU of the binding pipeline stage:
  frozen base weights / (tp*pp), bf16       (+ the embedding on the first stage, LM head on the last)
+ LoRA parameters, gradients and Adam state of every task / (tp*pp)
+ activations: 1F1B keeps (pp - k) micro-batches in flight on stage k, each of its layers
  (ParallelConfig.stage_layers), so the first stage holds about num_layers layers' worth of one micro-batch whatever
  pp is
+ fp32 logits and their gradient on the last stage
+ a fixed reserve (CUDA context, communication buffers, allocator slack).

Activation elements saved per token per layer (Llama block, FlashAttention so no s^2 score matrix, frozen base so no
input is kept for base weight gradients; Korthikanti et al. 2022 "Reducing Activation Recomputation", Table 2):
  sharded by TP (sequence parallel on): the two residual inputs (2h), q/k/v after RoPE and the attention output
  (2h + 2 kv_dim), the SwiGLU gate, up, activation and product (4 ffn);
  replicated on every TP rank: the all-gathered normalised inputs that the LoRA A matrices of q/k/v and gate/up need
  for their gradients (2h).
With activation checkpointing (MemoryOptions for every replica, or a `<tp,pp,ckpt>` config for one) only each
layer's input is kept (2h, sharded), plus one layer's full set while it is recomputed.

Two constants are not derivable from shapes and were calibrated on the real A100-40GB table
(costmodel/profiles/llama2_7b_a100_40gb_max_tokens.csv, Llama-2-7B, 6 tasks, all 14 rows reproduced):
ACTIVATION_OVERHEAD = 2.0 (bytes kept per sharded bf16 element relative to 2: fp32 copies inside RMSNorm, RoPE and
unfused SwiGLU, plus allocator fragmentation; the table admits 1.85-2.05) and RESERVE_GIB = 1.0 (the table admits
0.75-1.25 GiB at that overhead). `lobra costmodel max-tokens` prints the result for any model and GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from lobra.costmodel.errors import CostModelError
from lobra.costmodel.parallel import ParallelConfig
from lobra.costmodel.specs import GPUSpec, ModelSpec

BF16_BYTES = 2
FP32_BYTES = 4
# fp32 LoRA weights, fp32 gradients, Adam first and second moments.
LORA_BYTES_PER_PARAM = 4 * FP32_BYTES
ACTIVATION_OVERHEAD = 2.0
RESERVE_GIB = 1.0
DEFAULT_CAP_TOKENS = 16384
MIN_TOKENS = 16
DEFAULT_LORA_RANK = 16
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class MemoryOptions:
    num_tasks: int = 1
    lora_rank: int = DEFAULT_LORA_RANK
    lora_targets: tuple[str, ...] = DEFAULT_LORA_TARGETS
    sequence_parallel: bool = True
    activation_checkpointing: bool = False
    activation_overhead: float = ACTIVATION_OVERHEAD
    reserve_gib: float = RESERVE_GIB

    def __post_init__(self) -> None:
        if not isinstance(self.num_tasks, int) or self.num_tasks < 1:
            raise CostModelError(f"num_tasks must be a positive integer, got {self.num_tasks!r}")
        if not isinstance(self.lora_rank, int) or self.lora_rank < 1:
            raise CostModelError(f"lora_rank must be a positive integer, got {self.lora_rank!r}")
        if self.activation_overhead <= 0 or self.reserve_gib < 0:
            raise CostModelError("activation_overhead must be positive and reserve_gib non-negative")


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes on one GPU of the binding stage for a micro-batch of `tokens` tokens."""

    weights_bytes: float
    lora_state_bytes: float
    activation_bytes: float
    logits_bytes: float
    reserve_bytes: float

    @property
    def total_bytes(self) -> float:
        return (
            self.weights_bytes
            + self.lora_state_bytes
            + self.activation_bytes
            + self.logits_bytes
            + self.reserve_bytes
        )


def activation_bytes_per_token_layer(model: ModelSpec, tp: int, opts: MemoryOptions) -> float:
    """Bytes one token keeps per layer on one TP rank until its backward pass."""
    h, f, kv = model.hidden_size, model.ffn_size, model.kv_dim
    if opts.activation_checkpointing:
        return BF16_BYTES * 2 * h / (tp if opts.sequence_parallel else 1)
    residual = 2 * h  # the two residual inputs: sharded by sequence parallelism, else replicated
    per_rank = (2 * h + 2 * kv + 4 * f) / tp + (residual / tp if opts.sequence_parallel else residual)
    # The gathered LoRA A inputs are plain bf16 buffers; the overhead factor covers fp32 temporaries of the
    # norm/RoPE/SwiGLU computations, which only the per-rank tensors carry.
    gathered = 2 * h
    return BF16_BYTES * (opts.activation_overhead * per_rank + gathered)


def stage_memory(
    model: ModelSpec, gpu: GPUSpec, config: ParallelConfig, tokens: int, stage: int, opts: MemoryOptions
) -> MemoryBreakdown:
    tp, pp = config.tp, config.pp
    layers = config.stage_layers(model.num_layers)[stage]
    embed = model.vocab_size * model.hidden_size
    weights = layers * model.params_per_layer
    if stage == 0:
        weights += embed
    if stage == pp - 1:
        weights += embed  # LM head
    lora = opts.num_tasks * model.num_layers * model.lora_params_per_layer(opts.lora_rank, opts.lora_targets)
    per_token_layer = activation_bytes_per_token_layer(model, tp, opts)
    in_flight = pp - stage
    if opts.activation_checkpointing:
        activations = in_flight * layers * tokens * per_token_layer
        full = MemoryOptions(**{**opts.__dict__, "activation_checkpointing": False})
        activations += tokens * activation_bytes_per_token_layer(
            model, tp, full
        )  # the layer being recomputed
    else:
        activations = in_flight * layers * tokens * per_token_layer
    logits = 2 * FP32_BYTES * tokens * model.vocab_size / tp if stage == pp - 1 else 0.0
    return MemoryBreakdown(
        weights_bytes=BF16_BYTES * weights / tp,
        lora_state_bytes=LORA_BYTES_PER_PARAM * lora / (tp * pp),
        activation_bytes=activations,
        logits_bytes=logits,
        reserve_bytes=opts.reserve_gib * 2**30,
    )


def peak_memory(
    model: ModelSpec, gpu: GPUSpec, config: ParallelConfig, tokens: int, opts: MemoryOptions
) -> MemoryBreakdown:
    """The stage with the largest footprint for a micro-batch of `tokens` tokens."""
    if config.ckpt:
        opts = replace(opts, activation_checkpointing=True)
    return max(
        (stage_memory(model, gpu, config, tokens, k, opts) for k in range(config.pp)),
        key=lambda m: m.total_bytes,
    )


def max_tokens(
    model: ModelSpec,
    gpu: GPUSpec,
    config: ParallelConfig,
    opts: MemoryOptions | None = None,
    cap: int = DEFAULT_CAP_TOKENS,
) -> int:
    """The largest power-of-two token count of one micro-batch that fits on every GPU of the replica, capped at
    `cap` (the real table's profiling stopped at 16K); 0 when not even MIN_TOKENS fit."""
    opts = opts or MemoryOptions()
    if cap < MIN_TOKENS:
        raise CostModelError(f"cap must be at least {MIN_TOKENS} tokens, got {cap}")
    config.check_fits(
        num_layers=model.num_layers,
        num_heads=model.num_heads,
        num_kv_heads=model.num_kv_heads,
        gpus_per_node=gpu.gpus_per_node,
    )
    best, tokens = 0, MIN_TOKENS
    while tokens <= cap and peak_memory(model, gpu, config, tokens, opts).total_bytes <= gpu.memory_bytes:
        best, tokens = tokens, tokens * 2
    return best


# Which configs may checkpoint activations: "needed" (the default) only when no config of the cluster holds `cap`
# tokens without it, so that the longest sequences are not truncated; "any" wherever it holds more (the planners
# then weigh recomputation against tensor parallelism); "off" never.
CHECKPOINTING = ("needed", "any", "off")


def feasible_configs(
    model: ModelSpec,
    gpu: GPUSpec,
    max_gpus: int,
    opts: MemoryOptions | None = None,
    cap: int = DEFAULT_CAP_TOKENS,
    checkpointing: str = "needed",
) -> dict[ParallelConfig, int]:
    """Every power-of-two (tp, pp) with tp*pp <= max_gpus that shards the model and holds at least one micro-batch,
    with its max_tokens; and, as `checkpointing` allows, its twin <tp,pp,ckpt> where that holds more."""
    if checkpointing not in CHECKPOINTING:
        raise CostModelError(
            f"checkpointing must be one of {', '.join(CHECKPOINTING)}, got {checkpointing!r}"
        )
    plain, twins = {}, {}
    tp = 1
    while tp <= min(max_gpus, gpu.gpus_per_node):
        pp = 1
        while tp * pp <= max_gpus and pp <= model.num_layers:
            tokens = _max_tokens_or_0(model, gpu, ParallelConfig(tp, pp), opts, cap)
            if tokens:
                plain[ParallelConfig(tp, pp)] = tokens
            if tokens < cap and not (opts and opts.activation_checkpointing):
                ckpt = _max_tokens_or_0(model, gpu, ParallelConfig(tp, pp, ckpt=True), opts, cap)
                if ckpt > tokens:
                    twins[ParallelConfig(tp, pp, ckpt=True)] = ckpt
            pp *= 2
        tp *= 2
    needed = max(plain.values(), default=0) < cap
    if checkpointing == "any" or (checkpointing == "needed" and needed):
        return plain | twins
    return plain


def _max_tokens_or_0(model, gpu, config, opts, cap) -> int:
    try:
        return max_tokens(model, gpu, config, opts, cap)
    except CostModelError:
        return 0
