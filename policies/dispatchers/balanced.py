"""Balanced dispatch: the paper's integer program (`balanced-ilp`) and our fast heuristic (`balanced`).

Both minimise the step's makespan under the cost tables' model of a replica: c alpha + ceil(c / m) beta per padded
length, plus the 1F1B bubble on pipelined replicas. The integer program is exact for that model but its solve time
grows with the step; the heuristic (greedy earliest-finish, then moves off the slowest replica) takes milliseconds.
"""

from __future__ import annotations

import bisect
import heapq
import math

import numpy as np
from lobra.costmodel import DeploymentPlan
from lobra.policies.costs import CostTable
from lobra.policies.dispatchers.base import DISPATCHERS, Assignment, Dispatcher, holders
from lobra.policies.dispatchers.loads import ReplicaLoads
from lobra.policies.lp import split_lp
from lobra.policies.quiet_milp import milp
from lobra.policies.solver import milp_options, stopped_by_clock
from scipy.optimize import Bounds, LinearConstraint
from scipy.sparse import coo_matrix

MAX_MOVES = 2000


@DISPATCHERS.register("balanced")
class BalancedDispatcher(Dispatcher):
    """Ours, in three fast moves:
    1. a linear programme over configs (not replicas) splits each length's sequences so that every config finishes
       together: it captures comparative advantage (a big replica is fast on long sequences, wasteful on short);
    2. within each config, its micro-batches go longest first to the least-loaded replica (LPT);
    3. local search moves sequences off the slowest replica while that shortens the step."""

    def assign(self, counts: dict[int, int], plan: DeploymentPlan, table: CostTable) -> Assignment:
        replicas = plan.replicas
        split = split_across_configs(counts, plan, table)
        loads = ReplicaLoads(replicas, table)
        for config, share in split.items():
            targets = [r for r, c in enumerate(replicas) if c == config]
            jobs = []  # (time, length, size): full micro-batches and one remainder per length
            for s, n in share.items():
                lc = table.length_cost(config, s)
                full, rest = divmod(n, lc.per_mb)
                jobs += [(lc.time_s(lc.per_mb), s, lc.per_mb)] * full + (
                    [(lc.time_s(rest), s, rest)] if rest else []
                )
            # Identical replicas and whole micro-batches: a job adds exactly its own time, so a heap suffices.
            heap = [(0.0, r) for r in targets]
            given: dict[int, dict[int, int]] = {r: {} for r in targets}
            for job_s, s, size in sorted(jobs, reverse=True):
                load, r = heap[0]  # the least loaded (keys are unique: ties go to the lower index)
                share_r = given[r]
                share_r[s] = share_r.get(s, 0) + size
                heapq.heapreplace(heap, (load + job_s, r))
            for r, share_r in given.items():
                for s, n in share_r.items():
                    loads.add(r, s, n)
        improve(loads)
        return loads.counts


def makespan_s(assignment: Assignment, replicas, table: CostTable) -> float:
    """The slowest replica's time under the cost tables' model (the programme's objective)."""
    loads = ReplicaLoads(replicas, table)
    for r, share in enumerate(assignment):
        for s, n in share.items():
            loads.add(r, s, n)
    return max(loads.total(r) for r in range(len(replicas)))


def split_across_configs(counts: dict[int, int], plan: DeploymentPlan, table: CostTable):
    """{config: {length: sequences}}: the relaxation's split, rounded by largest remainder."""
    _, relaxed = split_lp(counts, dict(plan.entries), table)
    split: dict = {c: {} for c, _ in plan.entries}
    for s, total in counts.items():
        shares = {c: relaxed[c].get(s, 0.0) for c in relaxed if s in relaxed[c]}
        base = {c: math.floor(v + 1e-9) for c, v in shares.items()}
        for c in sorted(shares, key=lambda c: base[c] - shares[c])[: max(0, total - sum(base.values()))]:
            base[c] += 1
        for c, n in base.items():
            if n:
                split[c][s] = n
    return split


def improve(loads: ReplicaLoads, max_moves: int = MAX_MOVES) -> None:
    """Move k sequences of one length from the slowest replica to another while the pair's larger time drops below
    the current makespan. Each move lowers the sorted vector of loads lexicographically, so this terminates.

    The move made has the lowest larger time; among equals, the first in the order (length as the sender holds
    them, receiver, size). Receivers are tried least loaded first. Where costs are non-negative (they are, but for
    a pathological profile), k more sequences add at least k x alpha to a receiver, so a receiver whose time plus
    that reaches the bar (the best move's time so far) cannot beat it, nor can any after it. The sender's time after
    giving k is the same for every receiver: computed once."""
    n_rep = len(loads.replicas)
    totals = [loads.total(r) for r in range(n_rep)]
    ranked = sorted((t, r) for r, t in enumerate(totals))  # receivers, least loaded first
    for _ in range(max_moves):
        src = max(range(n_rep), key=totals.__getitem__)  # the first of the slowest, as argmax
        bar, best, best_at = totals[src] - 1e-12, None, None  # a move must beat the makespan, then the best
        for si, (s, n) in enumerate(loads.counts[src].items()):
            per_mb = loads.length_cost(src, s).per_mb
            sizes = {1, n, min(n, per_mb), n % per_mb or min(n, per_mb)}
            least = loads.least_marginal_s(s)
            left: dict[int, float] = {}  # k -> the sender's time after giving k
            seen_bar, k_low = None, 1
            for total, dst in ranked:
                if least is not None:
                    if _below(total + least) > bar:
                        break
                    if bar != seen_bar:  # the sender must give more than any k that leaves it at the bar
                        if not left:
                            left = {k: loads.total_if(src, s, -k) for k in sizes}
                        seen_bar, k_low = bar, 1 + max((k for k, t in left.items() if t > bar), default=0)
                    if k_low > n or _below(total + k_low * least) > bar:
                        break
                dst_cost = loads.length_cost(dst, s)
                if dst == src or dst_cost is None:
                    continue
                # also whatever completes the receiver's partial micro-batch of this length
                fill = -loads.counts[dst].get(s, 0) % dst_cost.per_mb
                for ki, k in enumerate(sizes | ({fill} if 0 < fill <= n else set())):
                    if least is not None and (k < k_low or _below(total + k * dst_cost.alpha_s) > bar):
                        continue
                    given = left.get(k)
                    if given is None:
                        given = left[k] = loads.total_if(src, s, -k)
                    if given > bar or (given == bar and (best_at is None or (si, dst, ki) > best_at)):
                        continue  # the move takes at least the sender's time: it cannot beat the bar
                    after = max(given, loads.total_if(dst, s, k))
                    if after < bar or (after == bar and best_at is not None and (si, dst, ki) < best_at):
                        bar, best, best_at = after, (s, dst, k), (si, dst, ki)
        if best is None:
            return
        s, dst, k = best
        loads.add(src, s, -k)
        loads.add(dst, s, k)
        for r in (src, dst):
            ranked.pop(bisect.bisect_left(ranked, (totals[r], r)))
            totals[r] = loads.total(r)
            bisect.insort(ranked, (totals[r], r))


def _below(bound_s: float) -> float:
    """A lower bound computed in floating point, lowered by far more than its rounding: pruning on it is safe."""
    return bound_s * (1 - 1e-12)


@DISPATCHERS.register("balanced-ilp")
class BalancedILPDispatcher(Dispatcher):
    """The paper's balanced dispatch as a mixed-integer program (scipy milp / HiGHS, always time-limited).

    Per (length g, replica r): n_gr sequences and k_gr >= n_gr / m_gr micro-batches (integers); pipelined replicas
    add u_r >= (pp - 1) * (a full micro-batch's stage time) * y_gr with y_gr = 1 when n_gr > 0. Minimise z >= every
    replica's sum of alpha n + beta k + u. Stopped by a limit before it proves its incumbent (policies/solver.py),
    the programme's answer is kept only where it beats the heuristic's on the same model; with no incumbent, the
    heuristic's is used."""

    def assign(self, counts: dict[int, int], plan: DeploymentPlan, table: CostTable) -> Assignment:
        replicas = plan.replicas
        lengths = sorted(counts, reverse=True)
        pairs = [(g, r) for g, s in enumerate(lengths) for r in holders(s, replicas, table)]
        layout = _Layout(len(pairs), sorted({r for _, r in pairs if replicas[r].pp > 1}))
        rows = _Rows()
        for g, s in enumerate(lengths):  # every sequence exactly once
            rows.add([(p, 1.0) for p, (gg, _) in enumerate(pairs) if gg == g], counts[s], counts[s])
        ub = np.zeros(layout.num_vars)
        load_terms = _pair_rows(
            rows, ub, layout, [(lengths[g], r) for g, r in pairs], counts, replicas, table
        )
        _makespan_rows(rows, layout, load_terms, replicas)
        ub[3 * layout.num_pairs :] = np.inf
        objective = np.zeros(layout.num_vars)
        objective[layout.z] = 1.0
        integrality = np.zeros(layout.num_vars)
        integrality[: 3 * layout.num_pairs] = 1
        result = milp(
            objective,
            integrality=integrality,
            bounds=Bounds(np.zeros(layout.num_vars), ub),
            constraints=rows.constraint(layout.num_vars),
            options=milp_options(self.config.time_limit_s, self.config.node_limit),
        )
        self.clock_stopped += stopped_by_clock(result)
        if result.x is None:
            return BalancedDispatcher(self.config).assign(counts, plan, table)
        out: Assignment = [{} for _ in replicas]
        for p, (g, r) in enumerate(pairs):
            n = int(round(result.x[p]))
            if n:
                out[r][lengths[g]] = n
        if result.status != 0:  # unproven: never worse than the heuristic
            heuristic = BalancedDispatcher(self.config).assign(counts, plan, table)
            if makespan_s(heuristic, replicas, table) < makespan_s(out, replicas, table):
                return heuristic
        return out


class _Layout:
    """The programme's variables: n (one per (length, replica) pair) | k (per pair) | y (per pair, used on
    pipelined replicas) | u (per pipelined replica) | z (the makespan)."""

    def __init__(self, num_pairs: int, piped: list[int]) -> None:
        self.num_pairs = num_pairs
        self.num_vars = 3 * num_pairs + len(piped) + 1
        self.z = self.num_vars - 1
        self.u_of = {r: 3 * num_pairs + i for i, r in enumerate(piped)}


class _Rows:
    """A sparse constraint matrix built a row at a time: low <= row . x <= high."""

    def __init__(self) -> None:
        self.rows, self.cols, self.vals, self.lo, self.hi = [], [], [], [], []

    def add(self, entries, low: float, high: float) -> None:
        row = len(self.lo)
        for c, v in entries:
            self.rows.append(row)
            self.cols.append(c)
            self.vals.append(v)
        self.lo.append(low)
        self.hi.append(high)

    def constraint(self, num_vars: int) -> LinearConstraint:
        matrix = coo_matrix((self.vals, (self.rows, self.cols)), shape=(len(self.lo), num_vars)).tocsr()
        return LinearConstraint(matrix, self.lo, self.hi)


def _pair_rows(rows: _Rows, ub: np.ndarray, layout: _Layout, pairs, counts, replicas, table: CostTable):
    """Per (length s, replica r) pair: micro-batches cover its sequences, and on a pipelined replica the bubble
    u_r covers a full micro-batch of s whenever n > 0; fills the variables' upper bounds. Returns each replica's
    load terms (alpha n + beta k per pair)."""
    n_pairs, u_of = layout.num_pairs, layout.u_of
    load_terms: dict[int, list] = {r: [] for r in range(len(replicas))}
    for p, (s, r) in enumerate(pairs):
        lc = table.length_cost(replicas[r], s)
        c = counts[s]
        rows.add([(n_pairs + p, float(lc.per_mb)), (p, -1.0)], 0.0, np.inf)  # m k >= n
        load_terms[r] += [(p, lc.alpha_s), (n_pairs + p, lc.beta_s)]
        ub[p], ub[n_pairs + p], ub[2 * n_pairs + p] = c, -(-c // lc.per_mb), 1.0 if r in u_of else 0.0
        if r in u_of:
            rows.add([(u_of[r], 1.0), (2 * n_pairs + p, -(replicas[r].pp - 1) * lc.full_mb_s)], 0.0, np.inf)
            rows.add([(p, 1.0), (2 * n_pairs + p, -float(c))], -np.inf, 0.0)  # n > 0 only if y = 1
    return load_terms


def _makespan_rows(rows: _Rows, layout: _Layout, load_terms: dict[int, list], replicas) -> None:
    """z >= every replica's load (plus its bubble), and identical replicas' loads in order."""
    for r, terms in load_terms.items():
        if r in layout.u_of:
            terms = terms + [(layout.u_of[r], 1.0)]
        load_terms[r] = terms
        rows.add(terms + [(layout.z, -1.0)], -np.inf, 0.0)
    # Identical replicas are interchangeable: order their loads to cut the symmetric branches.
    for r in range(len(replicas) - 1):
        if replicas[r] == replicas[r + 1]:
            rows.add(load_terms[r] + [(c, -v) for c, v in load_terms[r + 1]], 0.0, np.inf)
