"""From measurements to models: the layer profile pooled over calibration rounds, the host model of the jobs run so
far, and the ratios a job derives from its ranks' timings (contention, copies, stage weights).

Means, not medians: a step's time is a sum of many micro-batches' times, and the expectation of a sum is the sum of
the means. On a shared machine the samples are right-skewed, so medians would underpredict every step; the minimum,
also written, describes an idle machine.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable

import pandas as pd
from lobra.calibration.host import INDEPENDENT, HostModel
from lobra.calibration.measurements import BlockTime, JobResult
from lobra.costmodel import DeploymentPlan, parse_plan
from lobra.executor.errors import ExecutorError

# pre_post_time 0: the times are the whole model's (embedding, head and loss included) over its layers
PROFILE_COLUMNS = ["tp", "seq_len", "mbs", "time", "time_min", "pre_post_time"]


def pooled_profile(
    results: Iterable[JobResult], num_layers: int, rounds: set[int] | None = None
) -> pd.DataFrame:
    """Per shape, the mean and the minimum of every round's samples (or of these rounds'), per layer (the profile's
    unit: the fitted cost model gives back the whole micro-batch as layer time x layers / pp)."""
    pooled: dict[tuple[int, int, int], list[float]] = {}
    for result in results:
        if rounds is not None and result.round not in rounds:
            continue
        for point in result.grid:
            pooled.setdefault((point.tp, point.seq_len, point.mbs), []).extend(point.samples)
    rows = [
        (tp, s, b, statistics.fmean(t) / num_layers, min(t) / num_layers, 0.0)
        for (tp, s, b), t in sorted(pooled.items())
    ]
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)


def first_run_s(results: Iterable[JobResult]) -> dict[int, float]:
    """Per tp, a shape's first run over its second, back to back (later samples come from other minutes, and a
    shared machine drifts more than the cost between them): the median over a job's points (its first points also
    warm up allocators), averaged over the jobs of each tp; never below zero."""
    per_tp: dict[int, list[float]] = {}
    for result in results:
        extra = [p.first_run_ms for p in result.grid if p.first_run_ms is not None]
        if extra:
            per_tp.setdefault(result.grid[0].tp, []).append(statistics.median(extra) / 1e3)
    return {tp: max(0.0, statistics.fmean(v)) for tp, v in sorted(per_tp.items())}


def host_model(results: list[JobResult], cores: int, source: str) -> HostModel:
    """The host effects of the jobs run so far: each per-R job fills its target's contention table, every job its
    plan's own row; the sync and optimizer of independent ranks stand for each rank count; stage weights are
    averaged stage by stage over the jobs that measured them."""
    done = [r for r in results if r.host is not None]
    if not done:
        raise ExecutorError("no host-effect job has run: run a round with host=True first")
    contention: dict[str, dict[int, float]] = {}
    for r in done:
        if target := r.job.target:
            contention.setdefault(target, {})[r.host.num_ranks] = r.host.contention[target]
    weights: dict[str, list[tuple[float, ...]]] = {}
    for r in done:
        for config, w in r.host.stage_weights.items():
            weights.setdefault(config, []).append(w)
    independent = {r.host.num_ranks: r.host for r in done if r.job.target == INDEPENDENT}
    return HostModel(
        cores=cores,
        contention={c: dict(sorted(t.items())) for c, t in contention.items()},
        sync_s={n: h.sync_s for n, h in sorted(independent.items())},
        optimizer_s={n: h.optimizer_s for n, h in sorted(independent.items())},
        source=source,
        plans={r.job.plan: r.host.contention for r in done},
        first_run_s=first_run_s(results),
        stage_weights={c: tuple(map(statistics.fmean, zip(*ws, strict=True))) for c, ws in weights.items()},
    )


# -- within one job: from every rank's mean timings (gathered by rank) ----------------------------------------------
def block_copies(first_s: dict[str, float]) -> dict[str, int]:
    """Copies of the block each config runs together, so that each lasts about as long as the slowest one's single
    block: a balanced step keeps every replica busy for the whole step, so a replica's neighbours must be busy for
    all of its work (with one block each, a fast rank finishes early and the slow one runs uncontended)."""
    longest = max(first_s.values())
    return {c: max(1, round(longest / t)) for c, t in first_s.items()}


def block_times(
    plan: DeploymentPlan,
    configs: list[str],
    leaders: dict[str, int],
    means: list[list[float]],
    copies: dict[str, int],
) -> tuple[dict[str, BlockTime], dict[str, float]]:
    """Each config's block alone and together, read from its first replica's leader (means[rank] holds the
    alone busy seconds per config, then the compute seconds per config, then the together seconds), and its
    contention: together over alone."""
    blocks, contention = {}, {}
    for i, c in enumerate(configs):
        alone_s, together_s = means[leaders[c]][i], means[leaders[c]][-1]
        blocks[c] = BlockTime(alone_s, together_s, copies[c])
        # A replica that is the whole job runs alone both times: its contention is 1 by definition, not noise.
        whole_job = plan.num_gpus == parse_plan(c).replicas[0].num_gpus
        contention[c] = 1.0 if whole_job else together_s / alone_s
    return blocks, contention


def stage_weights(
    configs: list[str], leaders: dict[str, int], stage_ranks: dict[str, list[int]], means: list[list[float]]
) -> dict[str, tuple[float, ...]]:
    """Each pipeline's stages against the even share (1/pp) of the same tp's whole model, both alone in this job:
    each stage's compute (its TP rank 0's forwards and backwards, not its waits) over that share."""
    n, weights = len(configs), {}
    for i, c in enumerate(configs):
        config = parse_plan(c).replicas[0]
        whole = f"<{config.tp},1>"
        if config.pp > 1 and whole in leaders:
            share = means[leaders[whole]][n + configs.index(whole)] / config.pp
            weights[c] = tuple(means[rank][n + i] / share for rank in stage_ranks[c])
    return weights
