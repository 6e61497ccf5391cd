"""The run's records: the simulator's schema, consistent with the dispatcher's own decisions for the same steps."""

from __future__ import annotations

import pandas as pd
from lobra.executor.config import ExecutorConfig
from lobra.executor.records import COLUMNS
from lobra.executor.resolve import resolve
from lobra.policies.dispatchers import get_dispatcher
from lobra.policies.types import StepItem
from lobra.traces import StepSampler


def test_tables_have_the_simulator_schema(joint_run, ex):
    for name, columns in COLUMNS.items():
        csv = pd.read_csv(joint_run / f"{name}.csv")
        parquet = pd.read_parquet(joint_run / f"{name}.parquet")
        assert tuple(csv.columns) == columns and tuple(parquet.columns) == columns
        assert len(csv) == len(parquet) > 0
    assert COLUMNS["replicas"] == (
        "step", "replica", "config", "busy_s", "idle_s", "tokens", "padded_tokens", "micro_batches"
    )  # fmt: skip
    assert COLUMNS["steps"] == ("step", "step_time_s", "num_sequences", "tokens")
    assert COLUMNS["micro_batches"] == (
        "step",
        "replica",
        "micro_batch",
        "seq_len",
        "num_seqs",
        "tokens",
        "time_s",
        "last_stage_s",
    )


def test_records_follow_the_dispatch_plan(joint_run, ex):
    replicas = pd.read_csv(joint_run / "replicas.csv")
    steps = pd.read_csv(joint_run / "steps.csv")
    mbs = pd.read_csv(joint_run / "micro_batches.csv")
    # What every rank resolved: the same workload, plan and cost model, hence the same dispatch.
    run = resolve(
        ExecutorConfig(plan=ex.plan, steps=ex.steps, tasks=str(ex.tasks), profile=ex.common["profile"]),
        4,
        check_outputs=False,
    )
    workload, plan, cost = run.workload, run.plan, run.cost
    sampler = StepSampler(workload, seed=0)
    dispatcher = get_dispatcher("balanced")
    assert steps["step"].tolist() == list(range(ex.steps))
    assert steps["num_sequences"].tolist() == [9] * ex.steps  # 4 + 3 + 2 per step
    for step in range(ex.steps):
        items = [StepItem(t, int(n)) for t, n in sampler.next_step()]
        dispatch = dispatcher.dispatch(items, plan, cost)
        rows = replicas[replicas.step == step]
        assert rows["config"].tolist() == [str(c) for c in plan.replicas]
        assert rows["micro_batches"].tolist() == [len(m) for m in dispatch.micro_batches]
        assert rows["tokens"].sum() == steps.loc[step, "tokens"] == sum(it.length for it in items)
        assert (rows["padded_tokens"] >= rows["tokens"]).all()
        assert ((rows["busy_s"] > 0) | (rows["micro_batches"] == 0)).all()
        # busy_s is the leaders' clock, step_time_s rank 0's: on 4 ranks sharing 2 cores they can disagree by a
        # scheduling delay, so only idle_s (clipped at 0) is checked against the step time.
        assert (rows["idle_s"] >= 0).all() and steps.loc[step, "step_time_s"] > 0
        step_mbs = mbs[mbs.step == step]
        expected = [
            (r, i, mb.seq_len, len(mb.items), mb.real_tokens)
            for r, m in enumerate(dispatch.micro_batches)
            for i, mb in enumerate(m)
        ]
        got = list(
            step_mbs[["replica", "micro_batch", "seq_len", "num_seqs", "tokens"]].itertuples(index=False)
        )
        assert [tuple(g) for g in got] == expected
        assert (step_mbs["time_s"] > 0).all()
        # no pipelines in this plan: a replica's first stage is its last
        assert step_mbs["last_stage_s"].tolist() == step_mbs["time_s"].tolist()
    losses = pd.read_csv(joint_run / "losses.csv")
    assert len(losses) == 3 * ex.steps and losses["loss"].between(4.0, 7.0).all()  # ~ln(256) at the start
