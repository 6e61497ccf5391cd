"""Parallelism applied to the model from outside, in ordered steps (torchtitan's parallelize.py style):
apply_pp keeps one pipeline stage's layers, then apply_tp shards what is left over the replica's TP mesh.

TP (Megatron's layout, the one HF's own tp_plan gives Llama): q/k/v and gate/up are ColwiseParallel (each rank
holds a slice of the heads / FFN columns, output stays local), o and down are RowwiseParallel (local input, output
all-reduced). The attention reshapes with -1 heads, so it runs on the local heads unchanged. Embedding, final norm
and LM head stay whole on every TP rank (the tiny vocabularies here do not pay for a sharded LM head).
"""

from __future__ import annotations

from lobra.costmodel import ParallelConfig
from lobra.executor.model import MODULE_PARENT, decoder_layers
from lobra.executor.multilora import COLWISE, ROWWISE, MultiLoraLinear, TpShard
from torch import nn

TP_MODES = {
    "q_proj": COLWISE,
    "k_proj": COLWISE,
    "v_proj": COLWISE,
    "gate_proj": COLWISE,
    "up_proj": COLWISE,
    "o_proj": ROWWISE,
    "down_proj": ROWWISE,
}


def stage_layers(num_layers: int, pp: int, stage: int) -> range:
    """The decoder layers of a stage: the split the cost model times (ParallelConfig.stage_layers)."""
    counts = ParallelConfig(1, pp).stage_layers(num_layers)
    start = sum(counts[:stage])
    return range(start, start + counts[stage])


def apply_pp(model: nn.Module, pp: int, stage: int) -> range:
    """Drop the layers, embedding, norm and LM head that other stages hold."""
    keep = stage_layers(len(decoder_layers(model)), pp, stage)
    inner = model.model
    inner.layers = nn.ModuleList([inner.layers[i] for i in keep])
    if stage != 0:
        inner.embed_tokens = None
    if stage != pp - 1:
        inner.norm = None
        model.lm_head = None
    return keep


def apply_tp(model: nn.Module, mesh, group) -> None:
    """Shard every decoder linear over the 1-D TP mesh and the adapters on it to match."""
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    size, rank = mesh.size(), mesh.get_local_rank()
    styles = {COLWISE: ColwiseParallel, ROWWISE: RowwiseParallel}
    for layer in decoder_layers(model):
        for module, mode in TP_MODES.items():
            parent = getattr(layer, MODULE_PARENT[module])
            linear = getattr(parent, module)
            base = linear.base if isinstance(linear, MultiLoraLinear) else linear
            # src_data_rank=None: every rank already holds the same full weight, slice locally, no scatter.
            parallelize_module(base, mesh, styles[mode](), src_data_rank=None)
            if isinstance(linear, MultiLoraLinear):
                linear.shard_adapters(TpShard(mode, rank, size, group))
