"""SimPy cluster simulator: evaluates (planner, dispatcher) pairs on length traces."""

from lobra.sim.cluster import Cluster, Placement
from lobra.sim.config import Failure, Policy, SimConfig
from lobra.sim.errors import SimError
from lobra.sim.records import SimResult
from lobra.sim.simulator import Simulator

__all__ = ["Cluster", "Failure", "Placement", "Policy", "SimConfig", "SimError", "SimResult", "Simulator"]
