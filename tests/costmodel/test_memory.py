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
