"""Calibration: the cost model measured on the machine at hand, and the simulator checked against real runs.

Above sim and executor (it runs both), below the CLI. Modules, one concept each: layer (one decoder layer profiled
with torch), host (the host model of ranks sharing CPU cores, and the Overheads it gives a plan), jobs (the
executor calibration's torchrun jobs), rank (one rank of such a job), measurements (their typed results), derive
(profile and host model from the measurements), validate_config, validation_calibration, metrics and validate
(`lobra validate`: sim vs real). Importing this package stays light: torch is imported by the ranks and the layer
profiler only. docs/calibration.md describes what is measured and what the validations showed.
"""
