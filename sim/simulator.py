"""The cluster simulation: steps of a multi-tenant workload under a policy, as SimPy processes.

One process drives the run (tenants arriving and leaving, re-planning, faults); each step dispatches its sequences
with the policy's dispatcher (the same objects the executor uses), then every replica runs its micro-batches as its
own processes (sim/replica.py), then the LoRA-gradient all-reduce and the optimizer close the step. Everything random
draws from one generator seeded at the top.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import simpy
from lobra.costmodel import CostModel, DeploymentPlan, ParallelConfig
from lobra.costmodel.cost_model import P2P_LATENCY_S
from lobra.policies.dispatchers import get_dispatcher
from lobra.policies.dispatchers.base import check_capacity
from lobra.policies.planners.base import workload_memory
from lobra.policies.registry import PolicyError
from lobra.policies.types import DispatchPlan, MicroBatchPlan, StepItem
from lobra.sim.cluster import Cluster
from lobra.sim.config import Policy, SimConfig
from lobra.sim.errors import SimError
from lobra.sim.records import Recorder, SimResult
from lobra.sim.replica import SYNC_STAGE, Attempt, OpRecord, replica_process
from lobra.traces import StepSampler, Workload
from tqdm import tqdm


@dataclass
class Phase:
    """Part of a step run on one plan: all of it, or one task's share under Task-Sequential."""

    plan: DeploymentPlan
    cost: CostModel
    tasks: frozenset[str] | None = None  # None: every item of the step


@dataclass
class Deployment:
    phases: list[Phase]
    tasks: frozenset[str]
    label: str = ""


def _places(cluster: Cluster, plan) -> bool:
    try:
        cluster.place(plan)
    except SimError:
        return False
    return True


@dataclass
class _State:
    cluster: Cluster
    deployment: Deployment | None = None
    pending_failures: list = field(default_factory=list)
    dirty: bool = False  # the cluster changed under the current plan
    # micro-batch shapes (sequences, padded length) each replica of the deployment has run, kept only for configs
    # whose cost model charges a shape's first run (CostModel.first_run_s)
    seen: dict[tuple[str, int], set[tuple[int, int]]] = field(default_factory=dict)


class Simulator:
    def __init__(
        self,
        workload: Workload,
        cost: CostModel,
        num_gpus: int,
        policy: Policy,
        config: SimConfig | None = None,
        *,
        dispatch_cost: CostModel | None = None,
    ) -> None:
        """`cost` times the run. `dispatch_cost`, when given, is the cost model the dispatcher uses instead, as
        given for every phase: a real run's dispatcher may plan with another model than the one that describes
        the machine it runs on (the executor's dispatcher knows nothing of the cores its ranks share)."""
        self.workload, self.policy = workload, policy
        self.config = config or SimConfig()
        self.cost = cost
        self.dispatch_cost = dispatch_cost
        self.num_gpus = num_gpus
        self.dispatcher = get_dispatcher(policy.dispatcher, policy.dispatcher_config)
        self._clock_stopped = 0  # the planners' programmes stopped by the wall-clock safety net (per run)
        if policy.plan is not None:  # a fixed plan must fit and hold the sequences before anything runs
            Cluster(cost.gpu, num_gpus).place(policy.plan)
            memory = cost.with_memory(workload_memory(workload, cost.memory))
            self._holding(Deployment([Phase(policy.plan, memory)], frozenset(workload.names)))

    # -- planning -------------------------------------------------------------------------------------------
    def deploy(self, tasks: frozenset[str], cluster: Cluster) -> Deployment:
        """The deployment of these tasks on the cluster's working GPUs. A planner counts GPUs, not nodes: after
        failures its plan may not place (a TP group needs its GPUs in one node), so the budget shrinks until it
        does."""
        active = Workload(tuple(t for t in self.workload if t.name in tasks))
        cost = self.cost.with_memory(workload_memory(active, self.cost.memory))
        alive = len(cluster.alive)
        if alive == 0:
            raise SimError("every GPU of the cluster has failed")
        if self.policy.plan is not None:
            if self.policy.plan.num_gpus > alive:
                raise SimError(
                    f"the fixed plan {self.policy.plan} needs {self.policy.plan.num_gpus} GPUs, {alive} work"
                )
            cluster.place(self.policy.plan)  # raises when the survivors do not hold it (TP inside a node)
            return self._holding(Deployment([Phase(self.policy.plan, cost)], tasks, str(self.policy.plan)))
        for budget in range(alive, 0, -1):
            deployment = self._planned(active, tasks, cost, budget)
            if all(_places(cluster, phase.plan) for phase in deployment.phases):
                return self._holding(deployment)
        raise SimError(f"no plan of the planner places on the {alive} working GPUs")

    def _holding(self, deployment: Deployment) -> Deployment:
        """The deployment, once every phase is checked to hold its tasks' sequences (unless the policy cuts
        them): a step must not be the first to find out."""
        longest = self.workload.longest
        for phase in deployment.phases:
            tasks = deployment.tasks if phase.tasks is None else phase.tasks
            check_capacity(
                {t: n for t, n in longest.items() if t in tasks},  # in the workload's order
                phase.plan,
                self._dispatch_cost(phase),
                self.policy.dispatcher_config.beyond_capacity,
            )
        return deployment

    def _planned(self, active: Workload, tasks: frozenset[str], cost: CostModel, num_gpus: int) -> Deployment:
        result = self.policy.make_planner().plan(active, cost, num_gpus)
        self._clock_stopped += result.clock_stopped
        if result.plan is not None:
            phases = [Phase(result.plan, cost)]
        else:  # Task-Sequential: each task on its own plan, one after another
            phases = [
                Phase(
                    plan,
                    cost.with_memory(workload_memory(Workload((active.task(name),)), cost.memory)),
                    frozenset([name]),
                )
                for name, plan in result.task_plans.items()
            ]
        return Deployment(phases, tasks, result.plan_str)

    # -- running --------------------------------------------------------------------------------------------
    def run(self) -> SimResult:
        # The seed at the top: running the same simulator twice gives the same result.
        self.rng = np.random.default_rng(self.config.seed)
        self._clock_stopped = self.dispatcher.clock_stopped = 0
        env = simpy.Environment()
        rec = Recorder(self.workload, self.cost.model.num_layers)
        state = _State(
            Cluster(self.cost.gpu, self.num_gpus),
            pending_failures=sorted(self.config.failures, key=lambda f: f.time_s),
        )
        for f in state.pending_failures:
            if f.gpu >= self.num_gpus:
                raise SimError(f"failure of GPU {f.gpu}: the cluster has GPUs 0..{self.num_gpus - 1}")
        sampler = StepSampler(self.workload, seed=self.config.seed, mode=self.config.sampling)
        bar = tqdm(
            total=self.config.steps,
            desc="simulate",
            unit="step",
            disable=not self.config.progress,
            leave=False,
        )
        main = env.process(self._main(env, state, sampler, rec, bar))
        env.run(until=main)  # leftover failure timers past the last step do not count
        bar.close()
        result = rec.result(env.now, self.num_gpus)
        # Integer programmes the wall-clock safety net stopped, not the node limit: where any did, this run's
        # plans or dispatches may differ on a machine under another load.
        result.summary["clock_stopped_programmes"] = self._clock_stopped + self.dispatcher.clock_stopped
        return result

    def _main(self, env, state: _State, sampler: StepSampler, rec: Recorder, bar):
        step = 0
        arrival = {t.name: t.spec.arrival_s for t in self.workload}
        while self.config.steps is None or step < self.config.steps:
            active = frozenset(
                t.name for t in self.workload if arrival[t.name] <= env.now and not sampler.finished(t.name)
            )
            if not active:
                waiting = [arrival[n] for n in self.workload.names if arrival[n] > env.now]
                if not waiting:
                    break
                yield env.timeout(min(waiting) - env.now)
                continue
            # Failures due by now (at t = 0, or during a re-plan) shape the deployment before the step starts.
            if self._apply_due_failures(env, state, rec):
                state.dirty = True
            if (
                state.deployment is None
                or state.dirty
                or (self.config.replan and active != state.deployment.tasks)
            ):
                if not (yield from self._redeploy(env, state, active, rec, step)):
                    return
            order = [n for n in self.workload.names if n in active]
            items = [StepItem(t, n) for t, n in sampler.next_step(active=order)]
            attempt = 0
            while not (yield from self._run_step(env, state, step, attempt, items, rec)):
                attempt += 1
                if not (yield from self._redeploy(env, state, active, rec, step, reason="failure")):
                    return
            for name in active:
                if sampler.finished(name):
                    rec.task_done(name, env.now, sampler.steps_done(name))
            step += 1
            bar.update(1)

    def _redeploy(self, env, state: _State, active, rec: Recorder, step: int, reason: str = "tasks"):
        """Plan again (and pay the reconfiguration); False when failures left nothing that runs: the simulation
        stops there, with what it simulated and the reason as its last event (a first plan that cannot run is
        bad input, and raises)."""
        previous = state.deployment
        try:
            state.deployment = self.deploy(active, state.cluster)
        except (SimError, PolicyError) as err:
            if not state.cluster.failed:
                raise
            rec.event(env.now, "stopped", str(err))
            return False
        state.dirty = False
        state.seen.clear()  # a new deployment starts new processes
        changed = previous is not None and previous.label != state.deployment.label
        if changed or (previous is not None and reason == "failure"):
            rec.event(env.now, "reconfigure", f"{reason}: {previous.label} -> {state.deployment.label}")
            yield env.timeout(self.config.reconfig_s)
        elif previous is None:
            rec.event(env.now, "plan", state.deployment.label)
        return True

    def _run_step(self, env, state: _State, step: int, attempt: int, items: list[StepItem], rec: Recorder):
        """Run one step on the current deployment; False if a GPU it uses failed meanwhile."""
        start = env.now
        for phase in state.deployment.phases:
            chosen = [i for i, it in enumerate(items) if phase.tasks is None or it.task in phase.tasks]
            ok = yield from self._run_phase(env, state, step, attempt, [items[i] for i in chosen], phase, rec)
            if not ok:
                rec.step(step, attempt, start, env.now, items, state.deployment, status="failed")
                return False
        rec.step(step, attempt, start, env.now, items, state.deployment, status="ok")
        return True

    def _run_phase(self, env, state: _State, step: int, attempt: int, items, phase: Phase, rec: Recorder):
        dispatch = self._dispatch(items, phase)
        placements = state.cluster.place(phase.plan)
        spans = state.cluster.spans_nodes(placements)
        log: list[OpRecord] | None = [] if self._traced(step, rec) else None
        run = Attempt()
        start = env.now
        finish: dict[int, float] = {}

        def replica_proc(r: int, config: ParallelConfig, mbs: tuple[MicroBatchPlan, ...]):
            cms = [mb.to_costmodel() for mb in mbs]
            stage_times = self._stage_times(state, phase, r, config, mbs, cms)
            sent = [phase.cost.p2p_s(config, mb, 1.0) - P2P_LATENCY_S for mb in cms]  # seconds at 1 GB/s
            crossings = [
                [b / gbps + P2P_LATENCY_S for b in sent]
                for gbps in state.cluster.boundary_gbps(placements[r])
            ]
            slow = self.config.straggler_slowdown if self.rng.random() < self.config.straggler_prob else 1.0
            yield from replica_process(
                env,
                run,
                r,
                stage_times,
                crossings,
                self._jitter(slow),
                log,
                events=self.config.pipeline == "events",
            )
            finish[r] = env.now

        procs = [
            env.process(replica_proc(r, c, dispatch.micro_batches[r]))
            for r, c in enumerate(phase.plan.replicas)
        ]
        used = {g for p in placements for g in p.gpus}
        while True:
            # A fresh condition each time: SimPy disarms a nested condition once its parent triggers, so an
            # all-of that lost to a failure would never fire again.
            failure, done = self._next_failure(env, state), env.all_of(procs)
            yield done | failure if failure is not None else done
            if done.triggered:
                break
            failed = self._apply_due_failures(env, state, rec)  # GPUs failed before the replicas finished
            if failed & used:
                run.aborted = True  # the replicas stop at their next op
                rec.lost(step, attempt, (env.now - start) * phase.plan.num_gpus)
                return False
            state.dirty = True  # idle GPUs: the replicas run on, and the step re-plans after it
        # Every replica all-reduces its LoRA gradients with the others, then steps its optimizers; the step ends
        # when the slowest has.
        sync = [
            (phase.cost.dp_sync_s(c, phase.plan.num_replicas, spans), phase.cost.optimizer_s(c))
            for c in phase.plan.replicas
        ]
        if log is not None:
            t = env.now
            for r, (reduce_s, optimizer_s) in enumerate(sync):
                log.append(OpRecord(r, SYNC_STAGE, "all-reduce", -1, t, t + reduce_s))
                log.append(OpRecord(r, SYNC_STAGE, "optimizer", -1, t + reduce_s, t + reduce_s + optimizer_s))
        yield env.timeout(max(a + b for a, b in sync))
        rec.phase(step, attempt, start, env.now, phase.plan, dispatch, finish, log)
        rec.tokens(items, dispatch)
        return True

    def _traced(self, step: int, rec: Recorder) -> bool:
        """Whether this step's ops go into the trace: a traced step, while the trace has room for it."""
        return self.config.traced(step) and rec.trace.has_room(step, self.config.trace_events)

    @staticmethod
    def _stage_times(state: _State, phase: Phase, r: int, config: ParallelConfig, mbs, cms) -> list:
        """Replica r's per-stage compute of each micro-batch, plus the first-run cost of each shape it has not run
        yet in this deployment, where the cost model charges one."""
        extra = phase.cost.first_run_s(config)
        if not extra:
            return phase.cost.stage_times_of(config, cms)
        seen = state.seen.setdefault((str(phase.plan), r), set())
        extras = []
        for mb in mbs:
            new = (shape := (len(mb.items), mb.seq_len)) not in seen
            seen.add(shape)
            extras.append(extra if new else 0.0)
        return phase.cost.stage_times_of(config, cms, extras)

    @staticmethod
    def _apply_due_failures(env, state: _State, rec: Recorder) -> set[int]:
        """Take every failure due by now out of the cluster, each logged at its own time; the GPUs that failed."""
        failed = set()
        while state.pending_failures and state.pending_failures[0].time_s <= env.now:
            f = state.pending_failures.pop(0)
            if f.gpu not in state.cluster.failed:
                rec.event(f.time_s, "failure", f"GPU {f.gpu}")
                state.cluster = state.cluster.without(f.gpu)
                failed.add(f.gpu)
        return failed

    def _next_failure(self, env, state: _State):
        while state.pending_failures and state.pending_failures[0].gpu in state.cluster.failed:
            state.pending_failures.pop(0)
        if not state.pending_failures:
            return None
        return env.timeout(max(0.0, state.pending_failures[0].time_s - env.now))

    def _jitter(self, straggler: float):
        """A draw per op of its duration factor: the straggler's constant slowdown times mean-one noise; without
        noise, the constant itself (replica_process draws nothing)."""
        sigma = self.config.jitter
        if sigma == 0:
            return straggler
        # mean-one lognormal: jitter changes the spread of op times, not their average
        return lambda: straggler * float(self.rng.lognormal(-sigma * sigma / 2, sigma))

    def _dispatch(self, items: list[StepItem], phase: Phase) -> DispatchPlan:
        return self.dispatcher.dispatch(items, phase.plan, self._dispatch_cost(phase))

    def _dispatch_cost(self, phase: Phase) -> CostModel:
        return phase.cost if self.dispatch_cost is None else self.dispatch_cost
