import pytest
from lobra.costmodel import CostModel, CostModelError, LayerTimeFit, MemoryOptions, MicroBatch, ParallelConfig
from lobra.costmodel.pipeline import pipeline_makespan, schedule
from lobra.costmodel.replica_time import ring_allreduce_s

# t(b, s) = 0.001 b s + 1  (ms per layer)
FIT = LayerTimeFit({1: (0, 0, 1e-3, 0, 0, 1.0), 2: (0, 0, 0.5e-3, 0, 0, 1.0)})


@pytest.fixture()
def cm():
    # llama2-7b shapes: 32 layers, hidden 4096; a100 links
    return CostModel.build("llama2-7b", "a100-40gb", fit=FIT, memory=MemoryOptions(num_tasks=2))


def test_micro_batch_tokens():
    assert MicroBatch.padded(4, 512).tokens == 2048
    packed = MicroBatch.of_lengths([100, 300], packed=True)
    assert (packed.tokens, packed.real_tokens, packed.seq_len) == (400, 400, 300)
    padded = MicroBatch.of_lengths([100, 300], pad_to=512)
    assert (padded.tokens, padded.real_tokens) == (1024, 400)
    with pytest.raises(CostModelError):
        MicroBatch.of_lengths([100, 600], pad_to=512)
    with pytest.raises(CostModelError):
        MicroBatch((), 16)


def outer_s(cm, tp, mbs):
    """Summed (embedding, head) seconds of these micro-batches."""
    parts = [cm.outer_ms(tp, mb) for mb in mbs]
    return sum(e for e, _ in parts) / 1e3, sum(h for _, h in parts) / 1e3


def test_no_pp_is_the_sum_of_micro_batches(cm):
    mbs = [MicroBatch.padded(2, 1000), MicroBatch.padded(1, 500)]
    t = cm.replica_time(ParallelConfig(1, 1), mbs)
    # (0.001*2000 + 1) * 32 layers + (0.001*500 + 1) * 32 = 96 + 48 ms, then the embedding and the head
    embedding, head = outer_s(cm, 1, mbs)
    assert t.compute_s == pytest.approx(0.144)
    assert (t.embedding_s, t.head_s) == pytest.approx((embedding, head)) and head > 0.0
    assert t.pp_bubble_s == 0 and t.pp_comm_s == 0 and t.dp_sync_s == 0
    assert t.busy_s == pytest.approx(0.144 + embedding + head)


def test_1f1b_follows_the_exact_schedule(cm):
    mbs = [MicroBatch.padded(2, 1000), MicroBatch.padded(1, 500)]
    config = ParallelConfig(2, 4)
    t = cm.replica_time(config, mbs)
    layers = [(0.5e-3 * 2000 + 1) * 8 / 1e3, (0.5e-3 * 500 + 1) * 8 / 1e3]  # tp=2 fit, 8 layers per stage
    times = [cm.stage_times(config, mb) for mb in mbs]
    for layer_s, mb, stage in zip(layers, mbs, times, strict=True):
        embedding, head = (x / 1e3 for x in cm.outer_ms(2, mb))
        assert stage == pytest.approx((layer_s + embedding, layer_s, layer_s, layer_s + head))
    p2p = [2000 * 4096 * 2 / 2 / 300e9 + 10e-6, 500 * 4096 * 2 / 2 / 300e9 + 10e-6]  # one crossing each
    # the last stage (the head) is the slowest: it paces the pipeline
    assert t.compute_s == pytest.approx(sum(layers)) and t.embedding_s == 0.0
    assert t.head_s == pytest.approx(outer_s(cm, 2, mbs)[1])
    assert t.busy_s == pytest.approx(pipeline_makespan(times, p2p, 4))
    assert t.compute_s + t.head_s + t.pp_bubble_s == pytest.approx(pipeline_makespan(times, [0, 0], 4))
    assert t.pp_bubble_s > 0 and t.pp_comm_s > 0


def test_pipeline_hand_computed():
    # equal micro-batches, free transfers: (M + p - 1)(f + b)
    assert pipeline_makespan([[3.0] * 4] * 8, [0.0] * 8, 4) == pytest.approx(33.0)
    assert pipeline_makespan([[3.0] * 4] * 2, [0.0] * 2, 4) == pytest.approx(15.0)
    # p=2, stage times 3 (F1 B2) and 6 (F2 B4), worked by hand: stage 0 runs F0 [0,1], F1 [1,3], B0 [4,6],
    # B1 [10,14]; stage 1 runs F0 [1,2], B0 [2,4], F1 [4,6], B1 [6,10]
    assert pipeline_makespan([[3.0, 3.0], [6.0, 6.0]], [0.0, 0.0], 2) == pytest.approx(14.0)
    # a transfer of 0.5 per crossing: F0 reaches stage 1 at 1.5, ... (each dependency waits 0.5 more)
    assert pipeline_makespan([[3.0, 3.0], [6.0, 6.0]], [0.5, 0.5], 2) > 14.0
    assert pipeline_makespan([[3.0], [6.0], [1.5]], [9.0] * 3, 1) == pytest.approx(10.5)
    assert schedule(2, 2) == [
        [("F", 0), ("F", 1), ("B", 0), ("B", 1)],
        [("F", 0), ("B", 0), ("F", 1), ("B", 1)],
    ]


def test_a_slower_last_stage_paces_every_micro_batch():
    """Stage 0 takes 3 (F 1, B 2), the last stage 4.5 (its layers and the head): after stage 0's first forward the
    last stage never waits, so 4 micro-batches end at 1 + 4 x 4.5 + stage 0's last backward 2 = 21, not the even
    pipeline's (4 + 1) x 4.5 = 22.5 nor its (4 + 1) x 3 = 15."""
    assert pipeline_makespan([[3.0, 4.5]] * 4, [0.0] * 4, 2) == pytest.approx(21.0)


def test_an_uneven_split_is_timed_layer_by_layer(cm):
    """32 layers on 3 stages: 11, 11, 10, the shorter stage last (it also runs the head)."""
    config = ParallelConfig(1, 3)
    assert config.stage_layers(32) == (11, 11, 10) and ParallelConfig(1, 4).stage_layers(32) == (8,) * 4
    mb = MicroBatch.padded(1, 1000)
    layer_s = (0.001 * 1000 + 1) / 1e3
    embedding, head = (x / 1e3 for x in cm.outer_ms(1, mb))
    assert cm.stage_times(config, mb) == pytest.approx(
        (11 * layer_s + embedding, 11 * layer_s, 10 * layer_s + head)
    )


def test_the_head_grows_with_the_vocabulary():
    """Llama-3's 128K vocabulary against Llama-2's 32K, same hidden size: about 4x the head's GEMM work, and on the
    H100 the measured embedding+head+loss of Llama-3.1-8B is about 2x one decoder layer at micro-batch 1..16."""
    small = CostModel.build("llama2-7b", "h100-80gb")
    large = CostModel.build("llama3-8b", "h100-80gb")
    mb = MicroBatch.padded(4, 512)
    assert large.outer_ms(1, mb)[1] > 2.5 * small.outer_ms(1, mb)[1]
    ratio = large.outer_ms(1, mb)[1] / large.layer_ms(1, mb)
    assert 1.0 < ratio < 4.0


def test_ring_allreduce_formula():
    assert ring_allreduce_s(1e9, 1, 100) == 0
    assert ring_allreduce_s(1e9, 4, 100, latency_s=0) == pytest.approx(2 * 3 / 4 * 1e9 / 100e9)
    assert ring_allreduce_s(1e9, 4, 100, latency_s=1e-3) == pytest.approx(0.015 + 6e-3)


def test_dp_sync_uses_the_slowest_link_and_shards(cm):
    lora_bytes = 2 * 32 * 16 * (4 * 8192 + 2 * 15104) * 4  # 2 tasks, fp32 gradients
    inside = cm.dp_sync_s(ParallelConfig(2, 1), num_replicas=3, spans_nodes=False)
    across = cm.dp_sync_s(ParallelConfig(2, 1), num_replicas=3, spans_nodes=True)
    assert inside == pytest.approx(ring_allreduce_s(lora_bytes / 2, 3, 300.0))
    assert across == pytest.approx(ring_allreduce_s(lora_bytes / 2, 3, 25.0))
    t = cm.replica_time(ParallelConfig(2, 1), [MicroBatch.padded(1, 128)], num_replicas=3, spans_nodes=True)
    assert t.dp_sync_s == pytest.approx(across)
    assert t.optimizer_s == pytest.approx(lora_bytes / 4 / 2 * 28 / 1555e9)
    assert t.total_s == pytest.approx(t.busy_s + across + t.optimizer_s)


def test_packed_micro_batches_use_their_own_lengths(cm):
    packed = cm.replica_time(ParallelConfig(1, 1), [MicroBatch.of_lengths([100, 300], packed=True)])
    padded = cm.replica_time(ParallelConfig(1, 1), [MicroBatch.of_lengths([100, 300])])
    assert packed.compute_s == pytest.approx((0.001 * 400 + 1) * 32 / 1e3)
    assert padded.compute_s == pytest.approx((0.001 * 600 + 1) * 32 / 1e3)
    assert packed.head_s < padded.head_s  # the head runs on the padding too


def test_missing_tp_falls_back_to_the_analytical_model(cm):
    mb = MicroBatch.padded(1, 1024)
    assert cm.layer_model(4) is cm.analytical
    assert cm.layer_ms(4, mb) == pytest.approx(cm.analytical.predict_ms(4, 1, 1024))
