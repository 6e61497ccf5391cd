"""Any failure schedule either simulates to the end with exact accounting or stops with a one-line reason.

Random schedules (any times, any GPUs, repeated, simultaneous, during a reconfiguration) against a planner and a
fixed plan. What must hold whatever happens: every requested step trains exactly once, in order, unless the run
stopped (then the reason is the last event); each failed attempt is logged with the GPU-seconds it lost; each GPU
fails once, at its own time; the clock never goes back.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lobra.costmodel import CostModel, parse_plan
from lobra.sim import Failure, Policy, SimConfig, Simulator
from lobra.traces import load_scenario

REAL = load_scenario("real-7b")
COST = CostModel.build("llama2-7b", "a100-40gb")
STEPS = 4
POLICIES = {
    "planner": Policy.of_planner("task-fused"),
    "fixed": Policy("plan", "balanced", plan=parse_plan("<1,1>x2 <2,1>x1 <8,1>x1")),
}
# real-7b steps take ~10 s on 16 A100s: times up to 80 s reach every step and the re-plans between them.
failure = st.builds(
    Failure,
    time_s=st.one_of(st.just(0.0), st.floats(0, 80, allow_nan=False).map(lambda t: round(t, 1))),
    gpu=st.integers(0, 15),
)
schedules = st.lists(failure, max_size=6).flatmap(
    # simultaneous failures: some schedules repeat a time with other GPUs
    lambda fs: st.just(fs + [Failure(f.time_s, (f.gpu + 1) % 16) for f in fs[:1]])
)


def check(result, failures) -> None:
    steps, events, summary = result.steps, result.events, result.summary
    ok = steps[steps["status"] == "ok"]
    failed = steps[steps["status"] == "failed"]
    stopped = summary["stopped"]
    # Nothing trained twice or lost: ok steps are 0..k-1, each once; all requested ones unless the run stopped.
    assert ok["step"].tolist() == list(range(len(ok)))
    if stopped is None:
        assert len(ok) == STEPS
    else:
        assert isinstance(stopped, str) and "\n" not in stopped and stopped
        assert events.iloc[-1]["kind"] == "stopped" and len(ok) <= STEPS
    # A failed attempt is retried (or the run stopped right after it) and is charged what it ran.
    for row in failed.itertuples():
        retried = ok[ok["step"] == row.step]
        assert len(retried) == 1 or (stopped is not None and row.step == len(ok))
        assert row.gpu_seconds == pytest.approx((row.end_s - row.start_s) * parse_plan(row.plan).num_gpus)
    assert summary["failed_attempts"] == len(failed)
    assert summary["gpu_seconds_lost"] == pytest.approx(float(failed["gpu_seconds"].sum()))
    # Each GPU fails once, logged at its scheduled time (the earliest, when scheduled twice), in time order.
    logged = events[events["kind"] == "failure"]
    gpus = [int(d.split()[1]) for d in logged["detail"]]
    assert len(gpus) == len(set(gpus))
    first = {}
    for f in sorted(failures, key=lambda f: f.time_s):
        first.setdefault(f.gpu, f.time_s)
    for gpu, time_s in zip(gpus, logged["time_s"], strict=True):
        assert time_s == first[gpu]
    assert np.all(np.diff(events["time_s"].to_numpy()) >= 0)
    assert np.all(steps["end_s"] >= steps["start_s"])
    assert np.all(np.diff(ok["start_s"].to_numpy()) > 0)
    assert summary["total_time_s"] >= (ok["end_s"].max() if len(ok) else 0.0)


@pytest.mark.parametrize("policy", sorted(POLICIES))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(failures=schedules)
def test_any_failure_schedule_ends_whole_or_with_a_reason(policy, failures):
    config = SimConfig(steps=STEPS, failures=tuple(failures), reconfig_s=15.0)
    result = Simulator(REAL.workload, COST, 16, POLICIES[policy], config).run()
    check(result, failures)
