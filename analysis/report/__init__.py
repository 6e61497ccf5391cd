"""`lobra report`: a Markdown report that puts the figures of `lobra figures` beside the paper's numbers.

Everything it states is read from the figures folder (figures.json and each figure's CSV): it simulates nothing.
Each comparison gets a verdict, "agrees" or "differs: why", by a rule stated in the report (checks.py); the
sections follow the figure registry (analysis/figures/registry.py), rendered by render.py.
"""

from lobra.analysis.report.checks import (
    KNEE_WITHIN,
    TOLERANCE,
    Check,
    bucket_checks,
    headline_checks,
    plan_checks,
    planning_checks,
    scaling_checks,
)
from lobra.analysis.report.render import ReportError, load, md_table, render, write_report

__all__ = [
    "KNEE_WITHIN",
    "TOLERANCE",
    "Check",
    "ReportError",
    "bucket_checks",
    "headline_checks",
    "load",
    "md_table",
    "plan_checks",
    "planning_checks",
    "render",
    "scaling_checks",
    "write_report",
]
