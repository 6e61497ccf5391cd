import pandas as pd
import pytest
from lobra.costmodel import MemoryOptions, ParallelConfig, load_gpu_spec, load_model_spec, max_tokens
from lobra.costmodel.memory import (
    activation_bytes_per_token_layer,
    feasible_configs,
    peak_memory,
    stage_memory,
)
from lobra.costmodel.profile import shipped_path

LLAMA7B, A100 = load_model_spec("llama2-7b"), load_gpu_spec("a100-40gb")


def test_reproduces_every_row_of_the_real_max_tokens_table():
    table = pd.read_csv(shipped_path("llama2_7b_a100_40gb_max_tokens.csv"))
    assert len(table) == 14
    opts = MemoryOptions(num_tasks=6)
    predicted = [
        max_tokens(LLAMA7B, A100, ParallelConfig(int(r.tp), int(r.pp)), opts) for r in table.itertuples()
    ]
    assert predicted == table["max_tokens"].tolist()


def test_weights_and_lora_bytes_hand_computed():
    opts = MemoryOptions(num_tasks=6)
    m = stage_memory(LLAMA7B, A100, ParallelConfig(2, 4), tokens=1024, stage=1, opts=opts)
    layer = 4 * 4096 * 4096 + 3 * 4096 * 11008 + 2 * 4096
    assert m.weights_bytes == pytest.approx(2 * 8 * layer / 2)  # middle stage: 8 layers, bf16, tp=2
    lora = 6 * 32 * 16 * (4 * 8192 + 2 * 15104)  # 6 tasks, 32 layers, rank 16 on q,k,v,o,up,down
    assert m.lora_state_bytes == pytest.approx(16 * lora / 8)
    assert m.logits_bytes == 0
    first = stage_memory(LLAMA7B, A100, ParallelConfig(2, 4), 1024, 0, opts)
    assert first.weights_bytes - m.weights_bytes == pytest.approx(2 * 32000 * 4096 / 2)  # the embedding


def test_first_stage_holds_pp_micro_batches_in_flight():
    opts = MemoryOptions()
    per = activation_bytes_per_token_layer(LLAMA7B, 1, opts)
    for pp in (1, 2, 4, 8):
        m = stage_memory(LLAMA7B, A100, ParallelConfig(1, pp), 1000, 0, opts)
        assert m.activation_bytes == pytest.approx(32 * 1000 * per)
    last = stage_memory(LLAMA7B, A100, ParallelConfig(1, 4), 1000, 3, opts)
    assert last.activation_bytes == pytest.approx(8 * 1000 * per)
    assert last.logits_bytes == pytest.approx(2 * 4 * 1000 * 32000)


def test_more_memory_or_fewer_tasks_never_hold_fewer_tokens():
    cfg = ParallelConfig(2, 1)
    assert max_tokens(LLAMA7B, load_gpu_spec("a100-80gb"), cfg) >= max_tokens(LLAMA7B, A100, cfg)
    assert max_tokens(LLAMA7B, A100, cfg, MemoryOptions(num_tasks=1)) >= max_tokens(
        LLAMA7B, A100, cfg, MemoryOptions(num_tasks=64)
    )


def test_checkpointing_and_sequence_parallel_change_activations_as_expected():
    cfg = ParallelConfig(4, 1)
    base = max_tokens(LLAMA7B, A100, cfg, cap=1 << 20)
    assert max_tokens(LLAMA7B, A100, cfg, MemoryOptions(activation_checkpointing=True), cap=1 << 20) > base
    no_sp = activation_bytes_per_token_layer(LLAMA7B, 4, MemoryOptions(sequence_parallel=False))
    assert no_sp > activation_bytes_per_token_layer(LLAMA7B, 4, MemoryOptions())
    # without TP, sequence parallelism changes nothing
    assert activation_bytes_per_token_layer(
        LLAMA7B, 1, MemoryOptions(sequence_parallel=False)
    ) == pytest.approx(activation_bytes_per_token_layer(LLAMA7B, 1, MemoryOptions()))


def test_cap_and_impossible_configs():
    assert max_tokens(LLAMA7B, A100, ParallelConfig(8, 1), cap=4096) == 4096
    assert max_tokens(load_model_spec("llama2-70b"), A100, ParallelConfig(1, 1)) == 0  # 140 GB of weights
    peak = peak_memory(LLAMA7B, A100, ParallelConfig(1, 1), 2048, MemoryOptions(num_tasks=6))
    assert peak.total_bytes <= A100.memory_bytes
    assert (
        peak_memory(LLAMA7B, A100, ParallelConfig(1, 1), 4096, MemoryOptions(num_tasks=6)).total_bytes
        > A100.memory_bytes
    )


def test_feasible_configs_respect_node_and_gpu_budget():
    configs = feasible_configs(load_model_spec("llama2-70b"), load_gpu_spec("a800-80gb"), 64)
    assert configs and all(c.tp <= 8 and c.num_gpus <= 64 for c in configs)
    assert ParallelConfig(1, 1) not in configs
    assert all(n > 0 for n in configs.values())


def test_checkpointing_is_a_config_that_holds_more_and_pays_a_forward_again():
    """<tp,pp,ckpt>: its max_tokens from the checkpointing memory model, its stage time the layers' forward once
    more (FORWARD_SHARE of fwd+bwd), the head unchanged."""
    from lobra.costmodel import CostModel, LayerTimeFit, MicroBatch, parse_plan
    from lobra.costmodel.pipeline import FORWARD_SHARE

    plan = parse_plan("<8,1,ckpt>x2 <8,1>")
    assert str(plan) == "<8,1>x1 <8,1,ckpt>x2" and parse_plan(str(plan)) == plan
    fit = LayerTimeFit({1: (0, 0, 1e-3, 0, 0, 1.0)})  # t(b, s) = 0.001 b s + 1 ms
    cost = CostModel.build("llama2-7b", "a100-40gb", fit=fit)
    plain, ckpt = ParallelConfig(1, 1), ParallelConfig(1, 1, ckpt=True)
    assert cost.max_tokens(ckpt) > cost.max_tokens(plain)
    mb = MicroBatch.padded(1, 1000)
    head = sum(cost.outer_ms(1, mb)) / 1e3
    assert cost.stage_times(plain, mb)[0] == pytest.approx(32 * 2.0 / 1e3 + head)
    assert cost.stage_times(ckpt, mb)[0] == pytest.approx(32 * 2.0 * (1 + FORWARD_SHARE) / 1e3 + head)


def test_planners_are_offered_checkpointing_where_it_is_needed_or_asked_for():
    from lobra.costmodel import CostModel, CostModelError

    # Llama-2-7B on 16 A100s: <8,1> holds 16K without it, so by default no config checkpoints
    a100 = CostModel.build("llama2-7b", "a100-40gb")
    assert not any(c.ckpt for c in a100.feasible_configs(16))
    anywhere = CostModel.build("llama2-7b", "a100-40gb", checkpointing="any").feasible_configs(16)
    assert anywhere[ParallelConfig(1, 1, ckpt=True)] > anywhere[ParallelConfig(1, 1)]
    assert ParallelConfig(8, 1, ckpt=True) not in anywhere  # <8,1> already holds the cap
    # Llama-3-70B on H100s: nothing holds 16K without it, so the twins that hold more are offered
    h100 = CostModel.build("llama3-70b", "h100-80gb").feasible_configs(64)
    assert max(n for c, n in h100.items() if not c.ckpt) < 16384 == max(h100.values())
    off = CostModel.build("llama3-70b", "h100-80gb", checkpointing="off").feasible_configs(64)
    assert not any(c.ckpt for c in off)
    with pytest.raises(CostModelError, match="checkpointing must be one of"):
        CostModel.build("tiny", "cpu", checkpointing="sometimes")
