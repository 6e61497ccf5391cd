"""executor: runs a deployment plan for real with torch.distributed.

One process per GPU (or CPU rank); ranks are grouped into replicas in plan.replicas order; TP inside a replica with
torch.distributed.tensor.parallel, PP by hand-made stages with a 1F1B schedule; every task's LoRA adapter is trained
on one shared frozen model through a multi-adapter linear layer. The same dispatcher objects as the simulator decide
every step. Importing this package stays light (no torch): the heavy modules are imported by the ranks.

Modules, one concept each: config (options), resolve (options checked against tasks, model, plan, checkpoints),
groups (ranks and replica process groups), model (base model, LoRA injection, a pipeline stage's forward),
multilora (the multi-adapter layer), collectives (TP autograd collectives), parallel (apply_pp, apply_tp), data
(token ids and tensors of dispatched micro-batches), pipeline (one replica's micro-batches, 1F1B), sync (LoRA
gradients across replicas), step (one training step), checkpoint, peft_io, records, job (the per-rank loop),
launch (torchrun launcher and per-rank entry point).
"""

from lobra.executor.errors import ExecutorError

__all__ = ["ExecutorError"]
