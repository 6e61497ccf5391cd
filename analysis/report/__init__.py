"""`lobra report`: a Markdown report that puts the figures of `lobra figures` beside the paper's numbers.

Everything it states is read from the figures folder (figures.json and each figure's CSV): it simulates nothing.
Each comparison gets a verdict, "agrees" or "differs: why", by a rule stated in the report (checks.py); the
sections follow the figure registry (analysis/figures/registry.py), rendered by render.py.
"""

from lobra.analysis.report.render import ReportError, render, write_report

__all__ = ["ReportError", "render", "write_report"]
