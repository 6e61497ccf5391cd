"""Planners (which replicas to deploy) and dispatchers (which sequences each replica runs in a step), with the bucketing
and micro-batch builders they share and the record schema of a run. Pure Python: no torch, no simpy, so that the
simulator and the executor run the very same policy objects."""
