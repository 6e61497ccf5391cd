"""The integer programmes' limits, one set for every command: a node limit that decides, a time limit as a safety net.

A programme stopped by its node limit gives the same answer on a busy machine as on an idle one; one stopped by a
wall-clock limit does not, so the time limit is set well beyond what the node limit takes on the programmes lobra
builds and only guards against a pathological one. Every command's --ilp-node-limit and --ilp-time-limit set both
the planner's and the dispatcher's programmes (DispatcherConfig carries them).
"""

from __future__ import annotations

DEFAULT_NODE_LIMIT = 1000  # branch-and-bound nodes per programme
DEFAULT_TIME_LIMIT_S = 10.0  # the safety net
MIP_REL_GAP = (
    1e-2  # plans and dispatches are compared with each other: 1% is plenty, and far cheaper to prove
)


def milp_options(time_limit_s: float, node_limit: int, mip_rel_gap: float = MIP_REL_GAP) -> dict:
    return {"time_limit": time_limit_s, "node_limit": node_limit, "disp": False, "mip_rel_gap": mip_rel_gap}


def stopped_by_clock(result) -> bool:
    """Whether the wall-clock safety net, not the node limit, stopped this solve: its answer then depends on the
    machine's load, and the caller reports it (HiGHS says "Time limit reached"; a node limit, "Solution limit")."""
    return "Time limit reached" in (getattr(result, "message", "") or "")
