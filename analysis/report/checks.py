"""The comparisons of `lobra report`: each of our numbers beside the paper's, with a verdict, "agrees" or
"differs: why", by the rule the report states; the why is built from our own measurements (the paper's plans
simulated here, the lower bound, the longest-sequence floor), never from tuning."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from lobra.analysis import paper
from lobra.analysis.figures.buckets import bucket_knee

TOLERANCE = 0.05  # normalised series agree when every point is within this of the paper's
KNEE_WITHIN = 0.01  # our knee: the fewest buckets within 1% of the best step time


@dataclass(frozen=True)
class Check:
    what: str
    paper: str
    ours: str
    verdict: str


def _series(values) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def _pct_range(lo: float, hi: float) -> str:
    return f"{lo:.2f}%–{hi:.2f}%"


def headline_checks(t: dict[str, pd.DataFrame]) -> list[Check]:
    lo, hi = paper.HEADLINE_REDUCTION_PCT
    checks = []
    gs = t["gpu_seconds"]
    for setting, g in gs.groupby("setting", sort=False):
        by = g.set_index("policy")
        r = by.loc["lobra"]
        best = "Task-Sequential" if r["vs_best_baseline_pct"] == r["vs_task-sequential_pct"] else "Task-Fused"
        ours = (
            f"{r['vs_best_baseline_pct']:.1f}% vs the better baseline ({best}); "
            f"{r['vs_task-fused_pct']:.1f}% vs Task-Fused, {r['vs_task-sequential_pct']:.1f}% vs Task-Sequential"
        )
        saved = r["vs_best_baseline_pct"]
        if lo <= saved <= hi:
            verdict = "agrees"
        else:
            lb = by.loc["lower-bound", "gpu_seconds_per_step"]
            above = 100 * (r["gpu_seconds_per_step"] / lb - 1)
            plus = 100 * (by.loc["lobra-plus", "gpu_seconds_per_step"] / lb - 1)
            side = "less" if saved < lo else "more"
            verdict = (
                f"differs: LobRA saves {side} here. Its simulated steps are {above:.0f}% above the workload's lower"
                f" bound (LobRA+ {plus:.0f}%)"
                + _paper_plan_note(t, setting, "lobra", r)
                + ". The paper gives one range over its settings, not this setting's number, so we cannot say which"
                " of our differences (synthetic traces, the cost model, the truncation noted under Caveats)"
                " accounts for the gap"
            )
        checks.append(
            Check(f"GPU-seconds saved by LobRA, {setting} ({_setting(r)})", _pct_range(lo, hi), ours, verdict)
        )
        p = by.loc["lobra-plus"]
        checks.append(
            Check(
                f"GPU-seconds saved by LobRA+ (ours), {setting}",
                "(not in the paper)",
                f"{p['vs_best_baseline_pct']:.1f}% vs the better baseline; {p['vs_task-fused_pct']:.1f}% vs"
                " Task-Fused",
                "ours only",
            )
        )
    return checks


def _setting(r) -> str:
    return f"{int(r['num_gpus'])} x {r['gpu']}, {int(r['num_tasks'])} tasks"


def _paper_plan_note(t: dict[str, pd.DataFrame], setting: str, policy: str, ours) -> str:
    """'; the paper's plan simulated here: ...' for every reading of it we could simulate, flagged when it trains on
    fewer tokens than ours (a smaller largest replica truncates more)."""
    pp = t.get("paper_plans")
    if pp is None:
        return ""
    rows = pp[pp["policy"].str.startswith(f"{setting}|{policy} ")]
    if rows.empty:
        return "; neither reading of the paper's plan runs under our cost model"
    parts = []
    ran = {r.split(" ", 1)[1] for r in rows["policy"]}
    for reading in ("as (tp,pp)", "as (pp,tp)"):
        if reading not in ran:
            parts.append(f"{reading}: not a plan our cost model can run (a tp beyond a node, or no memory)")
    for _, r in rows.iterrows():
        reading = r["policy"].split(" ", 1)[1]
        delta = 100 * (r["gpu_seconds_per_step"] / ours["gpu_seconds_per_step"] - 1)
        text = f"`{r['plan']}` ({reading}) {r['gpu_seconds_per_step']:,.0f} GPU-s/step, {delta:+.0f}% vs ours"
        cut, ours_cut = r.get("truncated_pct", np.nan), ours.get("truncated_pct", np.nan)
        if not np.isnan(cut) and not np.isnan(ours_cut) and cut > ours_cut + 0.5:
            text += f" but not comparable: it cuts {cut:.1f}% of the tokens (ours {ours_cut:.1f}%)"
        parts.append(text)
    return "; the paper's plan simulated here: " + "; ".join(parts)


def plan_checks(t: dict[str, pd.DataFrame]) -> list[Check]:
    checks = []
    gs = t["gpu_seconds"]
    for setting, g in gs.groupby("setting", sort=False):
        by = g.set_index("policy")
        for policy, name in (("lobra", "LobRA"), ("task-fused", "Task-Fused")):
            published = paper.PLANS.get(setting, {}).get(policy)
            if published is None:
                continue
            ours = by.loc[policy, "plan"]
            reading = paper.same_configs(ours, published)
            if reading is not None:
                verdict = f"agrees (the same configs, the paper's read as {reading})"
            else:
                sizes = paper.replica_sizes(published) == paper.replica_sizes(ours)
                verdict = (
                    f"differs: {'the same replica sizes but other (tp, pp)' if sizes else 'other replica sizes'};"
                    " our planner picks the plan with the shortest step under our cost model"
                    + _paper_plan_note(t, setting, policy, by.loc[policy])
                )
            checks.append(
                Check(
                    f"{name} plan, {setting}",
                    f"`{published}` ({paper.sizes_str(published)})",
                    f"`{ours}` ({paper.sizes_str(ours)})",
                    verdict,
                )
            )
    return checks


def scaling_checks(t: dict[str, pd.DataFrame]) -> list[Check]:
    checks = []
    for fig, key, pub in (
        ("scalability_gpus", "num_gpus", paper.GPU_SCALING),
        ("scalability_tasks", "num_tasks", paper.TASK_SCALING),
    ):
        if fig not in t:
            continue
        df = t[fig]
        xs = [x for x in pub[key] if x in set(df[key])]
        checks += _series_checks(t, df, key, pub, xs)
        if key == "num_gpus" and xs:
            checks.append(_direction_check(t, df, xs))
        if key == "num_tasks" and xs:
            checks.append(_task_ratio_check(df, pub, xs))
    return checks


def _series_checks(
    t: dict[str, pd.DataFrame], df: pd.DataFrame, key: str, pub: dict, xs: list
) -> list[Check]:
    """Each policy's normalised series against the paper's, point by point."""
    checks = []
    for policy, name in (("task-fused", "Task-Fused"), ("lobra", "LobRA")):
        g = df[df["policy"] == policy].set_index(key)
        if not xs or g.empty:
            continue
        ours = [g.loc[x, "normalised"] for x in xs]
        theirs = [pub[policy][pub[key].index(x)] for x in xs]
        worst = max(abs(a - b) for a, b in zip(ours, theirs, strict=True))
        label = "GPUs" if key == "num_gpus" else "tasks"
        what = f"{name}, GPU-seconds at {'/'.join(map(str, xs))} {label} (normalised)"
        if worst <= TOLERANCE:
            verdict = f"agrees (every point within {TOLERANCE:.2f})"
        else:
            verdict = f"differs by up to {worst:.2f}: " + _scaling_why(t, key, policy, xs)
        checks.append(Check(what, _series(theirs), _series(ours), verdict))
    return checks


def _direction_check(t: dict[str, pd.DataFrame], df: pd.DataFrame, xs: list) -> Check:
    """From the smallest to the largest cluster: LobRA's GPU-seconds should fall, Task-Fused's rise. A trend
    agrees only point by point (every point within TOLERANCE of the paper's): the same direction alone is said,
    not called agreement."""
    tf = df[df["policy"] == "task-fused"].set_index("num_gpus")["normalised"]
    lb = df[df["policy"] == "lobra"].set_index("num_gpus")["normalised"]
    last = xs[-1]
    pub = paper.GPU_SCALING
    worst = max(
        abs(series[x] - pub[policy][pub["num_gpus"].index(x)])
        for policy, series in (("lobra", lb), ("task-fused", tf))
        for x in xs
    )
    direction = lb[last] < 1 < tf[last]
    if direction and worst <= TOLERANCE:
        verdict = f"agrees (every point within {TOLERANCE:.2f})"
    else:
        verdict = (
            f"differs: {'the same direction' if direction else 'not the same direction'}, points up to"
            f" {worst:.2f} apart; " + _scaling_why(t, "num_gpus", "lobra", xs)
        )
    return Check(
        f"Direction, {xs[0]} -> {last} GPUs",
        "LobRA falls (0.59), Task-Fused rises (1.12)",
        f"LobRA {lb[last]:.2f}, Task-Fused {tf[last]:.2f}",
        verdict,
    )


def _task_ratio_check(df: pd.DataFrame, pub: dict, xs: list) -> Check:
    """LobRA's GPU-seconds over Task-Fused's at each task count, ours against the paper's."""
    key = "num_tasks"
    ratio = df.pivot(index=key, columns="policy", values="gpu_seconds_per_step")
    ours = [ratio.loc[x, "lobra"] / ratio.loc[x, "task-fused"] for x in xs]
    theirs = [pub["lobra"][i] / pub["task-fused"][i] for i in range(len(pub[key])) if pub[key][i] in xs]
    worst = max(abs(a - b) for a, b in zip(ours, theirs, strict=True))
    return Check(
        f"LobRA / Task-Fused at {'/'.join(map(str, xs))} tasks",
        _series(theirs),
        _series(ours),
        f"agrees (every point within {TOLERANCE:.2f})"
        if worst <= TOLERANCE
        else f"differs by up to {worst:.2f}: LobRA saves {100 * (1 - max(ours)):.0f}-"
        f"{100 * (1 - min(ours)):.0f}% against Task-Fused here, {100 * (1 - max(theirs)):.0f}-"
        f"{100 * (1 - min(theirs)):.0f}% in the paper: the gap of the 70B comparison above, at every"
        " task count",
    )


def _scaling_why(t: dict[str, pd.DataFrame], key: str, policy: str, xs: list) -> str:
    df = t["scalability_gpus" if key == "num_gpus" else "scalability_tasks"]
    g = df[df["policy"] == policy].set_index(key)
    plans = ", ".join(f"{x}: `{g.loc[x, 'plan']}`" for x in xs)
    if key != "num_gpus" or policy != "lobra":
        return f"our {policy} plans change with the {key.split('_')[1]}: {plans}"
    base = g.loc[xs[0], "plan"]
    if sum(paper.configs(base).values()) == 1:
        why = (
            f"our {xs[0]}-GPU point, the base of the normalisation, is a single replica (`{base}`): LobRA has"
            " nothing heterogeneous to deploy there"
        )
    else:
        why = f"our {xs[0]}-GPU point, the base of the normalisation, is already heterogeneous (`{base}`)"
    worst = max(xs[1:], key=lambda x: g.loc[x, "normalised"])
    prev = xs[xs.index(worst) - 1]
    if g.loc[worst, "normalised"] > g.loc[prev, "normalised"]:
        why += (
            f"; from {prev} to {worst} GPUs ours rises again ({g.loc[prev, 'normalised']:.2f} ->"
            f" {g.loc[worst, 'normalised']:.2f}): the global batch stays the same, so each replica gets fewer"
            " sequences"
        )
        if "idle_ratio" in g:
            a, b = g.loc[prev, "idle_ratio"], g.loc[worst, "idle_ratio"]
            why += f" and the idle share of GPU time {'grows' if b > a else 'changes'} ({a:.0%} -> {b:.0%})"
        pt = t.get("planning_time")
        if pt is not None:
            est = pt[pt["planner"] == "lobra"].set_index("num_gpus")
            if prev in est.index and worst in est.index:
                why += (
                    f"; the planner's own estimate rises too ({est.loc[prev, 'planned_gpu_seconds_per_step']:,.0f}"
                    f" -> {est.loc[worst, 'planned_gpu_seconds_per_step']:,.0f} GPU-s/step), so it is in our cost"
                    " model, not dispatch noise: per-replica costs that do not shrink with the replica's share (the"
                    " 1F1B bubble of the pipelined replicas, the gradient all-reduce over more replicas) weigh more"
                    " (our reading; not isolated)"
                )
    return why + f". Our plans: {plans}"


def planning_checks(t: dict[str, pd.DataFrame], ilp_limit_s: float) -> list[Check]:
    if "planning_time" not in t:
        return []
    df = t["planning_time"]
    g = df[df["planner"] == "lobra"].set_index("num_gpus")
    xs = [n for n in sorted(paper.PLANNING_TIME_S) if n in g.index]
    if not xs:
        return []
    ours = [g.loc[n, "planning_time_s"] for n in xs]
    theirs = [paper.PLANNING_TIME_S[n] for n in xs]
    ratio = {n: b / a for n, a, b in zip(xs, ours, theirs, strict=True)}
    similar = [n for n in xs if 0.5 <= ratio[n] <= 2]
    faster = [n for n in xs if ratio[n] > 2]
    slower = [n for n in xs if ratio[n] < 0.5]
    parts = []
    if faster:
        lo, hi = min(ratio[n] for n in faster), max(ratio[n] for n in faster)
        parts.append(
            f"ours is {lo:.0f}-{hi:.0f}x faster at {'/'.join(map(str, faster))} GPUs: beyond 16 GPUs we enumerate"
            " only replica counts near the fluid optimum and filter plans by their LP relaxation"
            " (policies/planners/search.py), where the paper enumerates every plan, and every integer programme"
            f" stops at its node limit (or after {ilp_limit_s:g} s), a plan it did not prove being scored by a"
            " feasible dispatch"
        )
    if similar:
        parts.append(f"the same order of magnitude at {'/'.join(map(str, similar))} GPUs")
    if slower:
        parts.append(
            f"ours is slower at {'/'.join(map(str, slower))} GPUs (one process here, 64 threads there)"
        )
    verdict = "differs: " + "; ".join(parts) if faster or slower else "agrees (" + "; ".join(parts) + ")"
    return [
        Check(
            f"LobRA planning time at {'/'.join(map(str, xs))} GPUs (s)",
            " / ".join(f"{v:g}" for v in theirs) + " (64 threads)",
            " / ".join(f"{v:.1f}" for v in ours) + " (one process)",
            verdict,
        )
    ]


def bucket_checks(t: dict[str, pd.DataFrame]) -> list[Check]:
    if "buckets" not in t:
        return []
    df = t["buckets"].sort_values("num_buckets")
    knee, knee5 = bucket_knee(df, KNEE_WITHIN), bucket_knee(df, 0.05)  # the figure's own rule
    steps = ", ".join(
        f"{int(a)}->{int(b)}: {100 * (tb / ta - 1):+.1f}%"
        for (a, ta), (b, tb) in zip(
            df[["num_buckets", "step_time_s"]].values[:-1],
            df[["num_buckets", "step_time_s"]].values[1:],
            strict=True,
        )
    )
    close = abs(knee - paper.BUCKET_KNEE) <= 4
    verdict = (
        "agrees"
        if close
        else f"differs: step time keeps improving, by a few percent, past {paper.BUCKET_KNEE} buckets"
    )
    return [
        Check(
            "Buckets beyond which step time stops improving",
            f"~{paper.BUCKET_KNEE} (default {paper.DEFAULT_BUCKETS})",
            f"{knee} (within 1% of the best); {knee5} within 5%. Step time from point to point: {steps}",
            verdict,
        )
    ]


__all__ = [
    "KNEE_WITHIN",
    "TOLERANCE",
    "Check",
    "bucket_checks",
    "headline_checks",
    "plan_checks",
    "planning_checks",
    "scaling_checks",
]
