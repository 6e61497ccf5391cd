"""lobra: multi-tenant LoRA fine-tuning over heterogeneous sequence lengths.

Installed, the product is one namespace: lobra.costmodel, lobra.traces, lobra.policies, lobra.sim, lobra.executor,
lobra.calibration, lobra.analysis; this package's own modules are the command line (lobra.cli, lobra.commands) and
the shared, dependency-free helpers every layer may use (lobra.io).
"""

__version__ = "0.1.0"
