class SimError(ValueError):
    """Bad input to the simulator: a plan that does not fit the cluster, a bad what-if workload, a bad fault."""
