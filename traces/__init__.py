"""Length traces, synthetic traces, task files, scenarios and the per-step sampler.

Light on purpose: numpy, scipy, pandas and yaml only. The trace builder (datasets, transformers) and the
plots (matplotlib) are imported by their own modules, when used.
"""

from lobra.traces.errors import TraceError
from lobra.traces.sampler import DEFAULT_SAMPLING_MODE, SAMPLING_MODES, StepSampler
from lobra.traces.scenario import SCENARIOS, Scenario, load_scenario, register_scenario, resolve_scenario
from lobra.traces.synthetic import PAPER_DATASETS, SyntheticSpec, fit_synthetic, synthetic_trace
from lobra.traces.tasks import Task, TaskSpec, Workload, load_workload, parse_workload
from lobra.traces.trace import Trace, TraceStats, load_trace, shipped_traces

__all__ = [
    "DEFAULT_SAMPLING_MODE",
    "PAPER_DATASETS",
    "SAMPLING_MODES",
    "SCENARIOS",
    "Scenario",
    "StepSampler",
    "SyntheticSpec",
    "Task",
    "TaskSpec",
    "Trace",
    "TraceError",
    "TraceStats",
    "Workload",
    "fit_synthetic",
    "load_scenario",
    "load_trace",
    "load_workload",
    "parse_workload",
    "register_scenario",
    "resolve_scenario",
    "shipped_traces",
    "synthetic_trace",
]
