"""The comparison table at equal work: a row that cuts tokens pays for them before it is compared."""

import pytest
from lobra.sim.compare import CompareRow, reductions


def test_a_row_that_cuts_tokens_pays_for_them():
    rows = [
        CompareRow("task-sequential", "a", 2.0, 200.0),
        CompareRow("task-fused", "b", 1.5, 150.0),
        CompareRow("cheap-but-cuts", "c", 0.6, 60.0, truncated_pct=30.0, dropped_pct=20.0),  # half the tokens
        CompareRow("lower-bound", "-", 0.8, 80.0),
        CompareRow("integer-bound", "-", 0.9, 90.0),
    ]
    table = {r["policy"]: r for r in reductions(rows)}
    cut = table["cheap-but-cuts"]
    assert cut["equal_work_gpu_seconds"] == pytest.approx(120.0)
    assert cut["vs_task-fused_pct"] == pytest.approx(20.0)  # not 60%
    assert cut["above_lower_bound_pct"] == pytest.approx(50.0)  # not -25%
    assert cut["above_integer_bound_pct"] == pytest.approx(100 * (120 / 90 - 1))
    assert all(r["above_lower_bound_pct"] >= 0 for r in table.values())
    assert table["lower-bound"]["above_integer_bound_pct"] is None  # the weaker bound is not a run below it
