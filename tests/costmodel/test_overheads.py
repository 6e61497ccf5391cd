import pytest
from lobra.costmodel import CostModel, LayerTimeFit, MemoryOptions, MicroBatch, Overheads, ParallelConfig
from lobra.costmodel.errors import CostModelError

FIT = LayerTimeFit({1: (0, 0, 0, 0, 1.0, 0), 2: (0, 0, 0, 0, 1.0, 0)})
CONFIGS = [ParallelConfig(1, 1), ParallelConfig(2, 1), ParallelConfig(1, 2), ParallelConfig(8, 1)]


def test_neutral_overheads_change_no_float():
    """Overheads() is the default: every time the cost model gives is bit-identical with it given explicitly."""
    plain = CostModel.build("llama2-7b", "a100-40gb")
    neutral = plain.with_overheads(Overheads())
    mbs = [MicroBatch.padded(3, 1024), MicroBatch.padded(1, 4096), MicroBatch((100, 300), 300, True)]
    for config in CONFIGS:
        assert neutral.first_run_s(config) == 0.0
        assert [neutral.stage_times(config, mb) for mb in mbs] == [
            plain.stage_times(config, mb) for mb in mbs
        ]
        assert neutral.replica_time(config, mbs, num_replicas=3, spans_nodes=True) == plain.replica_time(
            config, mbs, num_replicas=3, spans_nodes=True
        )


def test_overheads_are_applied_and_survive_with_memory():
    one, piped = ParallelConfig(1, 1), ParallelConfig(1, 2)
    overheads = Overheads(
        compute_factor={one: 2.0},
        stage_weights={piped: (1.0, 1.5)},
        first_run_s={1: 0.25},
        dp_sync_s=0.125,
        optimizer_s=0.5,
    )
    base = CostModel.build("tiny", "cpu", fit=FIT)
    cost = base.with_overheads(overheads)
    mb = MicroBatch.padded(3, 16)
    # The layers, embedding and head of <1,1> at twice the base's time; a shape's first run too.
    assert cost.stage_times(one, mb)[0] == pytest.approx(2.0 * base.stage_times(one, mb)[0])
    assert cost.first_run_s(one) == 0.25 and cost.first_run_s(piped) == 0.25
    extra = cost.stage_times(one, mb, 0.25)[0] - cost.stage_times(one, mb)[0]
    assert extra == pytest.approx(0.5)
    # Measured stage weights replace the model's split: the even share of the layers (3 ms) times each weight.
    assert cost.stage_times(piped, mb) == pytest.approx((0.003, 0.0045))
    assert base.stage_times(piped, mb)[1] > base.stage_times(piped, mb)[0] > 0.003  # embedding, head
    assert cost.dp_sync_s(one, 4, True) == 0.125 and cost.optimizer_s(one) == 0.5
    assert cost.with_memory(MemoryOptions(num_tasks=2)).overheads is overheads


def test_stage_times_of_a_replica_are_each_micro_batchs_stage_times():
    """The simulator's batch call gives, bit for bit, what stage_times gives one micro-batch at a time: with a
    compute factor, measured stage weights, checkpointing, and each micro-batch its own extra."""
    one, piped, ckpt = ParallelConfig(1, 1), ParallelConfig(1, 2), ParallelConfig(2, 2, ckpt=True)
    overheads = Overheads(compute_factor={one: 2.0}, stage_weights={piped: (1.0, 1.5)})
    cost = CostModel.build("tiny", "cpu", fit=FIT).with_overheads(overheads)
    mbs = [MicroBatch.padded(3, 16), MicroBatch.padded(1, 64), MicroBatch((5, 30), 30, True)]
    extras = [0.25, 0.0, 0.5]
    for config in (one, piped, ckpt):
        assert cost.stage_times_of(config, mbs, extras) == [
            cost.stage_times(config, mb, e) for mb, e in zip(mbs, extras, strict=True)
        ]
        assert cost.stage_times_of(config, mbs) == [cost.stage_times(config, mb) for mb in mbs]
    with pytest.raises(ValueError):  # an extra per micro-batch, no fewer
        cost.stage_times_of(one, mbs, extras[:2])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"compute_factor": {ParallelConfig(1, 1): 0.0}},
            r"compute_factor\[<1,1>\] must be a positive number",
        ),
        ({"compute_factor": {"<1,1>": 1.0}}, "for a ParallelConfig"),
        (
            {"stage_weights": {ParallelConfig(1, 2): (1.0,)}},
            r"stage_weights\[<1,2>\] needs one positive number",
        ),
        ({"first_run_s": {2: -1.0}}, r"first_run_s\[2\] must be seconds >= 0"),
        ({"dp_sync_s": -0.1}, "dp_sync_s must be seconds >= 0 or None, got -0.1"),
    ],
)
def test_bad_overheads_name_the_field_and_value(kwargs, message):
    with pytest.raises(CostModelError, match=message):
        Overheads(**kwargs)
