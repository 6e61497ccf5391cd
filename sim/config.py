"""What a simulation runs: the policy (planner + dispatcher, or a fixed plan) and the simulation settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from math import inf

from lobra.costmodel import DeploymentPlan
from lobra.policies.dispatchers import DispatcherConfig, get_dispatcher
from lobra.policies.planners import PLANNERS, PlannerConfig
from lobra.policies.planners.base import Planner
from lobra.sim.errors import SimError


@dataclass(frozen=True)
class Failure:
    """GPU `gpu` stops working at `time_s` seconds of simulated time."""

    time_s: float
    gpu: int

    def __post_init__(self) -> None:
        if (
            isinstance(self.time_s, bool)
            or not isinstance(self.time_s, int | float)
            or not 0 <= self.time_s < inf
        ):
            raise SimError(f"a failure's time must be finite seconds >= 0, got {self.time_s!r}")
        if isinstance(self.gpu, bool) or not isinstance(self.gpu, int) or self.gpu < 0:
            raise SimError(f"a failure's GPU must be an id >= 0 (GPUs are numbered from 0), got {self.gpu!r}")


TRACE_EVENTS = 500_000


@dataclass(frozen=True)
class SimConfig:
    steps: int | None = None  # stop after this many steps; None: run every task to its end
    seed: int = 0
    sampling: str = "stratified"
    jitter: float = 0.0  # sigma of a lognormal factor on every op's duration
    straggler_prob: float = 0.0  # chance per step that a replica runs slow
    straggler_slowdown: float = 2.0
    reconfig_s: float = 30.0  # paid whenever the deployment plan changes (re-plan, failure)
    replan: bool = True  # re-plan when tasks join or leave
    failures: tuple[Failure, ...] = ()
    trace_steps: int | None = 0  # the first steps whose every op goes into the Chrome trace; None: every step
    # A trace stops taking new steps once it holds this many events: scale-1k (1,024 GPUs) records ~70,000 a step, and
    # a trace of millions is gigabytes in memory that Perfetto cannot open anyway.
    trace_events: int = TRACE_EVENTS
    pipeline: str = "closed-form"  # or "events": one SimPy process per stage (sim/replica.py)
    progress: bool = False

    def __post_init__(self) -> None:
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise SimError(f"steps must be a positive integer, got {self.steps!r}")
        if self.jitter < 0 or not 0 <= self.straggler_prob <= 1 or self.straggler_slowdown < 1:
            raise SimError("jitter must be >= 0, straggler_prob in [0, 1] and straggler_slowdown >= 1")
        if self.pipeline not in ("closed-form", "events"):
            raise SimError(f"pipeline must be closed-form or events, got {self.pipeline!r}")
        if self.reconfig_s < 0:
            raise SimError(f"reconfig_s must be >= 0, got {self.reconfig_s!r}")
        if self.trace_steps is not None and self.trace_steps < 0:
            raise SimError(f"trace_steps must be >= 0, got {self.trace_steps!r}")
        if not isinstance(self.trace_events, int) or self.trace_events < 1:
            raise SimError(f"trace_events must be a positive integer, got {self.trace_events!r}")

    def traced(self, step: int) -> bool:
        return self.trace_steps is None or step < self.trace_steps


@dataclass(frozen=True)
class Policy:
    """A planner and the dispatcher it plans for, or a fixed plan with a dispatcher; dispatcher_config is the one
    value of dispatch settings the planner plans with and the simulator dispatches with."""

    name: str
    dispatcher: str
    dispatcher_config: DispatcherConfig = field(default_factory=DispatcherConfig)
    planner: str | None = None
    planner_config: PlannerConfig = field(default_factory=PlannerConfig)
    plan: DeploymentPlan | None = None

    def __post_init__(self) -> None:
        if (self.planner is None) == (self.plan is None):
            raise SimError("a policy needs exactly one of a planner and a fixed plan")
        if self.planner is not None:
            PLANNERS.get(self.planner)
        get_dispatcher(self.dispatcher, self.dispatcher_config)  # an unknown name or settings it refuses

    @classmethod
    def of_planner(
        cls,
        planner: str,
        name: str | None = None,
        dispatcher: str | None = None,
        dispatcher_config: DispatcherConfig | None = None,
        **planner_config,
    ) -> Policy:
        """The planner with the dispatcher it plans for, unless another is given."""
        cls_ = PLANNERS.get(planner)
        return cls(
            name=name or planner,
            dispatcher=dispatcher or cls_.dispatcher,
            dispatcher_config=dispatcher_config or cls_.dispatcher_config,
            planner=planner,
            planner_config=PlannerConfig(**planner_config),
        )

    def make_planner(self) -> Planner:
        """The policy's planner, planning for the dispatch settings that will run when it plans for this
        dispatcher (a planner run with another dispatcher plans for its own)."""
        cls_ = PLANNERS.get(self.planner)
        if self.dispatcher == cls_.dispatcher:
            planned = self.dispatcher_config
        else:  # its own settings, but what to do beyond capacity is the run's
            planned = cls_.dispatcher_config.with_changes(
                beyond_capacity=self.dispatcher_config.beyond_capacity
            )
        return cls_(self.planner_config, dispatcher_config=planned)
