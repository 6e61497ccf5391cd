"""Analytical per-layer time model for (model, GPU) pairs with no profile.

Forward+backward of one decoder layer with LoRA on one GPU of a TP group, micro-batch of b sequences of length s
(T = b s tokens). Terms are added, not overlapped (Megatron-style TP runs its collectives between the GEMMs):

  base GEMMs   4 T P_lin / tp FLOPs: forward 2 T P_lin, backward only the input gradient 2 T P_lin (the base is
               frozen: no weight gradients). P_lin = sum of in*out over q,k,v,o,gate,up,down.
  LoRA GEMMs   6 T r sum(in+out) FLOPs for the targeted linears (forward, then input and A/B gradients), not
               sharded (conservative: A or B is replicated on each TP rank).
  attention    FlashAttention, causal: forward 2 * 2 b s^2 h / tp * 1/2, backward 2.5x forward (it recomputes the
               scores), so 3.5 x 2 b s^2 h / tp FLOPs.
  efficiency   GEMM utilisation rises with the work per GEMM W (FLOPs of one of the layer's linears on this rank):
               eta(W) = eta_max W / (W + W_half). Small micro-batches run far below peak; large ones approach
               eta_max. Attention runs at a constant eta_attn of peak.
  memory       frozen weights read in forward and backward (2 x 2 bytes x P_lin / tp), elementwise traffic
               (norms, RoPE, SwiGLU, residuals: ELEMENTWISE_BYTES_PER_TOKEN_H x h bytes per token / tp) and the
               unfused LoRA branches' activations (LORA_VALUES_PER_IN/OUT) at HBM speed.
  TP comm      sequence parallel: 2 all-gathers + 2 reduce-scatters of T h bf16 forward and the same backward, each
               moving (tp-1)/tp of its bytes per GPU over NVLink at eta_comm of the per-direction bandwidth.
  stack        a fixed t0 per layer and micro-batch (kernel launches, host work): a property of the software
               stack (framework, CUDA graphs or not), not of the GPU, so it lives apart (Stack).

Outside the decoder layers (same efficiencies, `head_ms` and `embedding_ms`):

  LM head      logits forward 2 T h V / tp and their input gradient 2 T h V / tp (the head is frozen: no weight
               gradient), at the GEMM efficiency of that work; its weight read twice, the logits written, read by
               the loss, their gradient written and read (LOGIT_BYTES per logit), the final norm's elementwise
               traffic; under TP the hidden states are gathered forward and reduce-scattered backward; plus the
               share of the stack's t0 its kernel launches take (HEAD_LAUNCH_SHARE).
  embedding    a gather of T h bf16 values (frozen: no backward), reduce-scattered under TP.

The hardware efficiencies (eta_max, W_half, eta_attn, eta_comm: Efficiency) transfer with the GPU to any model; the
stack's t0 (Stack) transfers with the software. Both are calibrated on measured profiles (costmodel/calibrate.py; the
A100-40GB Llama-2-7B one ships), and for another GPU the same efficiencies apply to that GPU's peak and bandwidths.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np
from lobra.costmodel.errors import CostModelError
from lobra.costmodel.specs import GPUSpec, ModelSpec

# Bytes of elementwise traffic per token and unit of hidden size in forward+backward of one layer: ~12 elementwise
# kernels (2 norms, RoPE on q/k, SwiGLU, 2 residual adds, their backwards) each reading and writing ~h bf16 values.
ELEMENTWISE_BYTES_PER_TOKEN_H = 48.0
# fp32 logits (as the memory model holds them): written, read by the loss, their gradient written and read.
LOGIT_BYTES = 4 * 4
# The final norm, forward and backward: read and write h values, twice.
NORM_BYTES_PER_TOKEN_H = 4 * 2
# A LoRA branch beside a linear of `in` inputs and `out` outputs, unfused: forward reads x, writes x A^T (r wide,
# negligible), writes the B output and reads it back with the base output to add them (in + 3 out); backward reads
# the output gradient twice (B's gradient and the input gradient through B), reads x again for A's gradient and
# writes, then adds, the input gradient (2 in + 2 out). Under TP each rank moves its shard.
LORA_VALUES_PER_IN, LORA_VALUES_PER_OUT = 3, 5
# Stack.layer_ms is a layer's fixed cost: mostly its ~95 kernel launches (forward ~34: 2 norms, 7 base GEMMs, 3 per
# LoRA target, RoPE, attention, SwiGLU, 2 residual adds; backward about twice as many). The norm, the head and a
# vocab-parallel loss launch ~16 (norm 2, head GEMM 2, loss ~12 with its all-reduces): a sixth of a layer's.
HEAD_LAUNCH_SHARE = 16 / 95
BF16_BYTES = 2


@dataclass(frozen=True)
class Efficiency:
    """What transfers with the GPU: fractions of its peak and bandwidths that the work reaches."""

    eta_max: float = 0.7  # fraction of peak that large GEMMs reach
    w_half_gflop: float = 2.0  # work per GEMM at which half of eta_max is reached
    eta_attn: float = 0.4  # fraction of peak reached by FlashAttention
    eta_comm: float = 0.7  # fraction of link bandwidth reached by TP collectives

    def __post_init__(self) -> None:
        _check_positive(self)


@dataclass(frozen=True)
class Stack:
    """What transfers with the software stack: its fixed costs, whatever the GPU and the model."""

    layer_ms: float = 0.3  # per decoder layer and micro-batch, forward+backward (launches, host work)
    step_s: float = 0.0  # per training step (optimizer launches, bookkeeping)

    def __post_init__(self) -> None:
        _check_positive(self, allow_zero=("layer_ms", "step_s"))


def _check_positive(value, allow_zero: tuple[str, ...] = ()) -> None:
    for key, v in asdict(value).items():
        if not np.isfinite(v) or v < 0 or (v == 0 and key not in allow_zero):
            raise CostModelError(f"{type(value).__name__}.{key} must be positive, got {v!r}")


@dataclass(frozen=True)
class AnalyticalLayerTime:
    """Per-layer forward+backward time from FLOPs, bytes, calibrated efficiencies and the stack's fixed cost (same
    interface as the fit)."""

    model: ModelSpec
    gpu: GPUSpec
    eff: Efficiency = Efficiency()
    stack: Stack = Stack()
    lora_rank: int = 16
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj")

    @property
    def tps(self) -> list[int]:
        return [
            tp for tp in (1, 2, 4, 8, 16) if tp <= self.gpu.gpus_per_node and self.model.num_heads % tp == 0
        ]

    @functools.cached_property
    def _shape_terms(self) -> tuple[int, int, int, int]:
        """Base linear parameters, number of linears, LoRA parameters of one layer, and the activation values per
        token its LoRA branches move (cached: hot path)."""
        shapes = self.model.linear_shapes
        p_lin = sum(i * o for i, o in shapes.values())
        lora_values = sum(
            LORA_VALUES_PER_IN * shapes[t][0] + LORA_VALUES_PER_OUT * shapes[t][1] for t in self.lora_targets
        )
        return (
            p_lin,
            len(shapes),
            self.model.lora_params_per_layer(self.lora_rank, self.lora_targets),
            lora_values,
        )

    def _eta(self, w_per_gemm):
        """GEMM efficiency at this much work per GEMM (FLOPs)."""
        return self.eff.eta_max * w_per_gemm / (w_per_gemm + self.eff.w_half_gflop * 1e9)

    def _tp_comm_s(self, tp: int, values):
        """Seconds to move (tp-1)/tp of `values` bf16 values per GPU over NVLink in TP collectives."""
        return (tp - 1) / tp * values * BF16_BYTES / (self.gpu.nvlink_gbps * 1e9 * self.eff.eta_comm)

    def _terms_ms(self, tp: int, tokens, attn_seq_sq):
        """Time in ms for `tokens` tokens whose attention work is sum(b s^2) = attn_seq_sq (floats or arrays)."""
        m, g, e = self.model, self.gpu, self.eff
        peak = g.peak_tflops * 1e12
        p_lin, num_linear, lora_params, lora_values = self._shape_terms
        gemm_flops = 4 * tokens * p_lin / tp
        eta = self._eta(2 * tokens * p_lin / tp / num_linear)
        lora_flops = 6 * tokens * lora_params
        attn_flops = 3.5 * 2 * attn_seq_sq * m.hidden_size / tp
        compute_s = (gemm_flops + lora_flops) / (peak * eta) + attn_flops / (peak * e.eta_attn)
        hbm_bytes = (
            2 * BF16_BYTES * p_lin / tp
            + ELEMENTWISE_BYTES_PER_TOKEN_H * m.hidden_size * tokens / tp
            + BF16_BYTES * lora_values * tokens / tp
        )
        memory_s = hbm_bytes / (g.hbm_gbps * 1e9)
        comm_s = self._tp_comm_s(tp, 8 * tokens * m.hidden_size)
        return (compute_s + memory_s + comm_s) * 1e3 + self.stack.layer_ms

    def head_ms(self, tp: int, tokens: float) -> float:
        """Forward+backward ms of the final norm, the LM head and the loss for a micro-batch of `tokens` tokens."""
        m, g = self.model, self.gpu
        h, v = m.hidden_size, m.vocab_size
        gemm_flops = 4 * tokens * h * v / tp
        compute_s = gemm_flops / (g.peak_tflops * 1e12 * self._eta(gemm_flops / 2))
        hbm_bytes = (
            2 * BF16_BYTES * h * v / tp
            + LOGIT_BYTES * tokens * v / tp
            + NORM_BYTES_PER_TOKEN_H * tokens * h / tp
        )
        comm_s = self._tp_comm_s(tp, 2 * tokens * h)
        return (
            compute_s + hbm_bytes / (g.hbm_gbps * 1e9) + comm_s
        ) * 1e3 + HEAD_LAUNCH_SHARE * self.stack.layer_ms

    def embedding_ms(self, tp: int, tokens: float) -> float:
        """Forward ms of the input embedding (frozen: nothing runs backward) for `tokens` tokens."""
        h = self.model.hidden_size
        memory_s = 2 * BF16_BYTES * tokens * h / tp / (self.gpu.hbm_gbps * 1e9)
        return (memory_s + self._tp_comm_s(tp, tokens * h)) * 1e3

    def predict_ms(self, tp: int, mbs, seq_len) -> np.ndarray | float:
        b = np.asarray(mbs, dtype=float)
        s = np.asarray(seq_len, dtype=float)
        out = self._terms_ms(tp, b * s, b * s * s)
        return float(out) if np.ndim(out) == 0 else out

    def predict_packed_ms(self, tp: int, lengths) -> float:
        return float(self._terms_ms(tp, float(sum(lengths)), float(sum(n * n for n in lengths))))
