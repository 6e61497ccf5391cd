"""StepSampler: determinism, epochs, stratification, overflow policies, checkpoint state, speed."""

import time

import numpy as np
import pytest
from lobra.traces import StepSampler, TraceError, load_scenario, parse_workload


def _workload(tmp_path, **task):
    spec = {"name": "t", "trace": "codealpaca_2k", "global_batch_size": 64, "max_len": 4096, **task}
    return parse_workload({"tasks": [spec]}, base_dir=tmp_path, source="test.yaml")


def test_same_seed_same_steps_other_seed_other_steps():
    wl = load_scenario("real-7b").workload
    a, b, c = StepSampler(wl, seed=7), StepSampler(wl, seed=7), StepSampler(wl, seed=8)
    steps_a = [a.next_step() for _ in range(5)]
    assert steps_a == [b.next_step() for _ in range(5)]
    assert steps_a != [c.next_step() for _ in range(5)]
    assert len(steps_a[0]) == wl.sequences_per_step
    assert [n for n, _ in steps_a[0]][:128] == ["codealpaca"] * 128


@pytest.mark.parametrize("mode", ["stratified", "iid"])
def test_epoch_accounting_visits_each_sample_at_most_once(tmp_path, mode):
    wl = _workload(tmp_path, steps=100)
    task = wl.task("t")
    assert task.steps_per_epoch == 2017 // 64 == 31
    s = StepSampler(wl, seed=1, mode=mode)
    seen = []
    for _ in range(31):
        seen.append(s.next_batches()["t"])
    assert s.state()["tasks"]["t"] == {"epoch": 1, "step_in_epoch": 0, "steps_done": 31}
    assert s.epochs_done("t") == 1.0
    # One epoch = a permutation less 2017 mod 64 = 33 skipped samples: a sub-multiset of the trace.
    epoch = np.sort(np.concatenate(seen))
    assert len(epoch) == 31 * 64
    values, counts = np.unique(epoch, return_counts=True)
    avail = dict(zip(*np.unique(task.lengths, return_counts=True), strict=True))
    assert all(counts[i] <= avail[v] for i, v in enumerate(values))
    s.next_batches()
    assert s.epochs_done("t") == pytest.approx(1 + 1 / 31)


def test_stratified_steps_mirror_the_distribution(tmp_path):
    wl = _workload(tmp_path, global_batch_size=64, steps=31)
    lengths = wl.task("t").lengths
    strat = [StepSampler(wl, seed=s).next_batches()["t"] for s in range(30)]
    iid = [StepSampler(wl, seed=s, mode="iid").next_batches()["t"] for s in range(30)]
    mean = lengths.mean()
    strat_dev = np.abs([b.mean() - mean for b in strat])
    iid_dev = np.abs([b.mean() - mean for b in iid])
    assert strat_dev.max() < 0.05 * mean  # every stratified step's mean is within 5% of the trace mean
    assert strat_dev.mean() < iid_dev.mean() / 3  # and much tighter than i.i.d. batches
    # One sample per length stratum: the step's sorted lengths bracket the trace's quantiles.
    step = np.sort(strat[0])
    q = np.quantile(lengths, (np.arange(64) + 0.5) / 64)
    assert np.all(np.abs(step - q) <= np.maximum(0.35 * q, 12))


def test_truncate_clips_and_drop_skips(tmp_path):
    trunc = _workload(tmp_path, max_len=150, overflow="truncate", global_batch_size=16)
    drop = _workload(tmp_path, max_len=150, overflow="drop", global_batch_size=16)
    full = trunc.task("t").trace.total
    over = int((full > 150).sum())
    assert trunc.task("t").num_overflow == drop.task("t").num_overflow == over > 0
    assert len(trunc.task("t").lengths) == len(full) and len(drop.task("t").lengths) == len(full) - over
    t_steps = np.concatenate([StepSampler(trunc, seed=0).next_batches()["t"] for _ in range(20)])
    s = StepSampler(drop, seed=0)
    d_steps = np.concatenate([s.next_batches()["t"] for _ in range(20)])
    assert t_steps.max() == 150 and (t_steps == 150).sum() > 0
    assert d_steps.max() <= 150 and len(d_steps) == 20 * 16


def test_state_round_trip_resumes_exactly():
    wl = load_scenario("paper-70b-4task").workload
    a = StepSampler(wl, seed=3)
    for _ in range(50):
        a.next_step()
    state = a.state()
    b = StepSampler.from_state(wl, state)
    assert [a.next_step() for _ in range(5)] == [b.next_step() for _ in range(5)]
    with pytest.raises(TraceError, match="malformed sampler state"):
        StepSampler.from_state(wl, {"seed": 3})
    bad = {
        **state,
        "tasks": {**state["tasks"], "BillSum": {"epoch": 0, "step_in_epoch": -1, "steps_done": 0}},
    }
    with pytest.raises(TraceError, match="integers >= 0"):
        StepSampler.from_state(wl, bad)


def test_active_tasks_and_finishing(tmp_path):
    wl = parse_workload(
        {
            "tasks": [
                {"name": "a", "trace": "gsm8k_train", "global_batch_size": 8, "max_len": 1024, "steps": 2},
                {
                    "name": "b",
                    "trace": "codealpaca_2k",
                    "global_batch_size": 4,
                    "max_len": 1024,
                    "epochs": 0.01,
                },
            ]
        },
        base_dir=tmp_path,
    )
    assert wl.task("b").num_steps == 6  # ceil(0.01 * 2017 // 4)
    s = StepSampler(wl)
    assert {n for n, _ in s.next_step(active=["b"])} == {"b"}
    assert s.steps_done("a") == 0 and s.steps_done("b") == 1
    counts = []
    while not s.done:
        counts.append(len(s.next_step()))
    assert counts == [12, 12, 4, 4, 4]
    assert s.next_step() == []
    with pytest.raises(TraceError, match="unknown task"):
        s.next_step(active=["zzz"])


def test_paper_70b_thousand_steps_are_fast():
    wl = load_scenario("paper-70b").workload
    s = StepSampler(wl, seed=0)
    start = time.perf_counter()
    for _ in range(1000):
        step = s.next_step(active=wl.names)
    elapsed = time.perf_counter() - start
    assert len(step) == wl.sequences_per_step == 1696
    assert elapsed < 5.0, elapsed  # the bar is "well under 10 s"; ~0.5 s on a 2-core VM


def test_bad_sampler_arguments(tmp_path):
    wl = _workload(tmp_path)
    with pytest.raises(TraceError, match="sampling mode"):
        StepSampler(wl, mode="random")
    with pytest.raises(TraceError, match="seed"):
        StepSampler(wl, seed=-2)
