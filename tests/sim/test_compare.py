"""The comparison table at equal work: a row that cuts tokens pays for them before it is compared."""

import pytest
from lobra.sim.compare import CompareRow, reductions


def test_a_row_that_cuts_tokens_pays_for_them():
    rows = [
        CompareRow("task-sequential", "a", 2.0, 200.0),
        CompareRow("task-fused", "b", 1.5, 150.0),
        CompareRow("cheap-but-cuts", "c", 0.6, 60.0, cut_pct=50.0),  # trains half the tokens
        CompareRow("lower-bound", "-", 0.8, 80.0),
    ]
    table = {r["policy"]: r for r in reductions(rows)}
    cut = table["cheap-but-cuts"]
    assert cut["equal_work_gpu_seconds"] == pytest.approx(120.0)
    assert cut["vs_task-fused_pct"] == pytest.approx(20.0)  # not 60%
    assert cut["above_lower_bound_pct"] == pytest.approx(50.0)  # not -25%
    assert all(r["above_lower_bound_pct"] >= 0 for r in table.values())
