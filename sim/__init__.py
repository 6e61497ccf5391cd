"""SimPy cluster simulator: evaluates (planner, dispatcher) pairs on length traces."""

from sim.cluster import Cluster, Placement
from sim.config import Failure, Policy, SimConfig
from sim.errors import SimError
from sim.records import SimResult
from sim.simulator import Simulator

__all__ = ["Cluster", "Failure", "Placement", "Policy", "SimConfig", "SimError", "SimResult", "Simulator"]
