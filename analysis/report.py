"""`lobra report`: a Markdown report that puts the figures of `lobra figures` beside the paper's numbers.

Everything it states is read from the figures folder (figures.json and each figure's CSV): it simulates nothing.
Each comparison gets a verdict, "agrees" or "differs: why", by a rule stated in the report; the why is built from our
own measurements (the paper's plans simulated here, the lower bound, the longest-sequence floor), never from tuning.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from lobra.analysis import paper

TOLERANCE = 0.05  # normalised series agree when every point is within this of the paper's
KNEE_WITHIN = 0.01  # our knee: the fewest buckets within 1% of the best step time


class ReportError(ValueError):
    """No figures to report on, or a figures folder missing what the report needs."""


@dataclass
class Check:
    what: str
    paper: str
    ours: str
    verdict: str


def _series(values) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def _pct_range(lo: float, hi: float) -> str:
    return f"{lo:.2f}%–{hi:.2f}%"


def load(folder: str | Path) -> tuple[dict, dict[str, pd.DataFrame]]:
    folder = Path(folder)
    path = folder / "figures.json"
    if not path.is_file():
        raise ReportError(f"no figures under {folder}: run `lobra figures --out {folder}` first")
    manifest = json.loads(path.read_text())
    tables = {}
    for csv in sorted(folder.glob("*.csv")):
        tables[csv.stem] = pd.read_csv(csv)
    needed = [f for f in manifest.get("figures", []) if f not in tables]
    if needed:
        raise ReportError(
            f"{folder} lacks {', '.join(f + '.csv' for f in needed)}: run `lobra figures` again"
        )
    return manifest, tables


# -- the comparisons ------------------------------------------------------------------------------------------
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
            same = paper.replica_sizes(published) == paper.replica_sizes(ours)
            verdict = (
                "agrees (same replica sizes)"
                if same
                else (
                    "differs: other replica sizes; our planner picks the plan with the shortest step under our cost"
                    " model" + _paper_plan_note(t, setting, policy, by.loc[policy])
                )
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
        if key == "num_gpus" and xs:
            tf = df[df["policy"] == "task-fused"].set_index(key)["normalised"]
            lb = df[df["policy"] == "lobra"].set_index(key)["normalised"]
            last = xs[-1]
            ok = lb[last] < 1 < tf[last]
            checks.append(
                Check(
                    f"Direction, {xs[0]} -> {last} GPUs",
                    "LobRA falls (0.59), Task-Fused rises (1.12)",
                    f"LobRA {lb[last]:.2f}, Task-Fused {tf[last]:.2f}",
                    "agrees" if ok else "differs: " + _scaling_why(t, key, "lobra", xs),
                )
            )
        if key == "num_tasks" and xs:
            ratio = df.pivot(index=key, columns="policy", values="gpu_seconds_per_step")
            ours = [ratio.loc[x, "lobra"] / ratio.loc[x, "task-fused"] for x in xs]
            theirs = [
                pub["lobra"][i] / pub["task-fused"][i] for i in range(len(pub[key])) if pub[key][i] in xs
            ]
            worst = max(abs(a - b) for a, b in zip(ours, theirs, strict=True))
            checks.append(
                Check(
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
            )
    return checks


def _scaling_why(t: dict[str, pd.DataFrame], key: str, policy: str, xs: list) -> str:
    df = t["scalability_gpus" if key == "num_gpus" else "scalability_tasks"]
    g = df[df["policy"] == policy].set_index(key)
    plans = ", ".join(f"{x}: `{g.loc[x, 'plan']}`" for x in xs)
    if key != "num_gpus" or policy != "lobra":
        return f"our {policy} plans change with the {key.split('_')[1]}: {plans}"
    why = (
        f"our {xs[0]}-GPU point, the base of the normalisation, is a single replica (`{g.loc[xs[0], 'plan']}`):"
        " LobRA has nothing heterogeneous to deploy there"
    )
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
            f" stops after {ilp_limit_s:g} s with its best incumbent"
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
    best = df["step_time_s"].min()
    knee = int(df.loc[df["step_time_s"] <= best * (1 + KNEE_WITHIN), "num_buckets"].min())
    knee5 = int(df.loc[df["step_time_s"] <= best * 1.05, "num_buckets"].min())
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


# -- rendering ------------------------------------------------------------------------------------------------
def _md_table(df: pd.DataFrame, floatfmt: str = "{:.3g}") -> str:
    def cell(v) -> str:
        if isinstance(v, float | np.floating):
            if np.isnan(v):
                return ""
            if abs(v) >= 1000:
                return f"{v:,.0f}"
            return f"{v:.1e}" if 0 < abs(v) < 0.001 else floatfmt.format(v)
        return str(v).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns) + "\n"
    return head + "".join(
        "| " + " | ".join(cell(v) for v in row) + " |\n" for row in df.itertuples(index=False)
    )


def _image(folder: Path, report: Path, name: str, caption: str) -> str:
    rel = os.path.relpath(folder / f"{name}.png", report.parent)
    return f"![{caption}]({Path(rel).as_posix()})\n\n*{caption}* (PDF: `{name}.pdf`, numbers: `{name}.csv`)\n"


def _main_caveats(t: dict[str, pd.DataFrame]) -> list[str]:
    notes = []
    gs = t["gpu_seconds"]
    for setting, g in gs.groupby("setting", sort=False):
        g = g[g["policy"] != "lower-bound"]
        if "truncated_pct" in g and g["truncated_pct"].max() > 0.05:
            parts = ", ".join(f"{p} {v:.1f}%" for p, v in zip(g["policy"], g["truncated_pct"], strict=True))
            notes.append(
                f"**{setting}: the longest sequences are cut.** No replica our memory model allows on this cluster"
                " holds the longest sequences in one micro-batch, so every policy truncates them to its largest"
                f" replica's max_tokens (`lobra costmodel max-tokens`). Share of the sampled tokens cut: {parts}."
                " The paper trains them whole."
            )
    return notes


def render(folder: str | Path, report_path: str | Path) -> str:
    folder, report_path = Path(folder), Path(report_path)
    manifest, t = load(folder)
    studies = manifest.get("studies", {})
    out = ["# lobra beside the LobRA paper: figures and numbers\n"]
    out.append(
        f"Generated by `lobra report` from `lobra figures` output in `{folder.as_posix()}`: {manifest['runs']}"
        f" simulations, {manifest['steps']} simulated steps per point, seed {manifest['seed']}, integer"
        f" programmes limited to {manifest['ilp_time_limit_s']:g} s, {manifest['wall_s']:g} s of wall time."
        " Every number of ours is a simulation (sim/) with our cost model (costmodel/) on moment-matched synthetic"
        " traces of the paper's datasets (traces/); the paper's numbers are measurements on real clusters"
        ' (../shared/DESIGN.md, "Paper facts"). Nothing here was tuned toward the paper. The simulated numbers'
        " repeat exactly under the seed except where a balanced-ilp integer programme hits its time limit: its"
        " incumbent then depends on the machine's load (under 1% apart between our repeated runs); planning times"
        " are wall-clock.\n"
    )
    checks: list[Check] = []
    if manifest.get("paper_settings"):
        checks = (
            headline_checks(t)
            + plan_checks(t)
            + scaling_checks(t)
            + planning_checks(t, manifest["ilp_time_limit_s"])
            + bucket_checks(t)
        )
        out.append("## Summary: our numbers beside the paper's\n")
        table = pd.DataFrame([c.__dict__ for c in checks]).rename(columns=str.capitalize)
        out.append(_md_table(table))
        agree = sum(c.verdict.startswith("agrees") for c in checks)
        differ = sum(c.verdict.startswith("differs") for c in checks)
        out.append(
            f"\n{agree} comparisons agree, {differ} differ. Rules: a reduction agrees when it lies in the paper's"
            f" range; a plan when its replica sizes (GPUs per replica) are the paper's, whatever the order of the"
            f" two degrees in the paper's `<a,b>`; a normalised series when every point is within {TOLERANCE:.2f}"
            f" of the paper's; the bucket knee (the fewest buckets within {100 * KNEE_WITHIN:.0f}% of the best step"
            f" time) when within 4 of the paper's ~{paper.BUCKET_KNEE}.\n"
        )
    else:
        out.append(
            "These figures come from a custom workload (`lobra figures --tasks ...`): they are not held against the"
            " paper's numbers, which are for its own settings (run `lobra figures` without --tasks for those).\n"
        )
    caveats = _main_caveats(t) if "gpu_seconds" in t else []
    if caveats:
        out.append("## Caveats\n")
        out += [f"- {c}\n" for c in caveats]
        out.append("")
    out += _sections(folder, report_path, t, manifest, studies)
    return "\n".join(out)


def _sections(folder: Path, report: Path, t: dict, manifest: dict, studies: dict) -> list[str]:
    out = []

    def section(title: str, name: str, caption: str, cols: list[str], text: str = "") -> None:
        if name not in t:
            return
        out.append(f"## {title}\n")
        if (folder / f"{name}.png").is_file():
            out.append(_image(folder, report, name, caption))
        if text:
            out.append(text + "\n")
        df = t[name]
        out.append(_md_table(df[[c for c in cols if c in df.columns]]))
        out.append("")

    section(
        "1. GPU-seconds per policy",
        "gpu_seconds",
        "GPU-seconds per step of each policy; labels: change against the better baseline",
        [
            "setting",
            "policy",
            "plan",
            "gpu_seconds_per_step",
            "vs_task-sequential_pct",
            "vs_task-fused_pct",
            "truncated_pct",
        ],
        "Task-Sequential runs each task alone on its best homogeneous plan, one after another; Task-Fused runs all"
        " tasks on identical replicas sized for the longest sequence; LobRA is the paper's method as we implement"
        " it; LobRA+ is ours (plans scored by the dispatch that will run, packing instead of padding). The lower"
        " bound is every sequence on its cheapest config, perfectly packed and balanced.",
    )
    if "paper_plans" in t:
        out.append("### The paper's plans, simulated here\n")
        out.append(
            "The paper writes plans as `<a,b>xN` without saying here which degree comes first; we simulate every"
            " reading our cost model can run, each with the dispatch of the policy that found it. A plan whose"
            " largest replica holds fewer tokens than the others truncates more (`truncated_pct`) and is then not"
            " comparable: it trains on less data.\n"
        )
        cols = ["policy", "plan", "dispatcher", "gpu_seconds_per_step", "truncated_pct"]
        pp = t["paper_plans"]
        out.append(_md_table(pp[[c for c in cols if c in pp.columns]]))
        out.append("")
    section(
        "2. Ablation",
        "ablation",
        "GPU-seconds relative to Task-Fused as each part of LobRA is added",
        ["setting", "policy", "plan", "dispatcher", "bucketing", "relative_to_task_fused", "padding_ratio"],
        "Heterogeneous replicas with length-based dispatch (each sequence to the cheapest replica that holds it) and"
        " the baselines' power-of-two buckets; then balanced dispatch (the per-step integer programme); then dynamic"
        " bucketing (= LobRA). The paper publishes this ablation as a figure whose numbers DESIGN.md does not"
        " record, so it is not in the summary table.",
    )
    sets = studies.get("task_sets", {})
    task_text = ""
    if sets:
        lines = [f"- {k} tasks: {', '.join(v)}" for k, v in sets.items()]
        task_text = (
            f"Workloads on {studies.get('tasks_gpus')} GPUs. Past the 4 tasks of `paper-70b-4task` we add the other"
            " datasets of `paper-70b` (the paper's 12) in that file's order; the 16-task point repeats the first 4"
            " under new names (the sampler draws a different order for each name):\n\n" + "\n".join(lines)
        )
    section(
        "3. Scalability over GPUs",
        "scalability_gpus",
        "GPU-seconds per step against the cluster size, normalised to each policy's smallest cluster (left)",
        [
            "policy",
            "num_gpus",
            "plan",
            "gpu_seconds_per_step",
            "normalised",
            "paper_normalised",
            "idle_ratio",
        ],
        "The global batch is the same at every cluster size, as in the paper's study.",
    )
    section(
        "4. Scalability over tasks",
        "scalability_tasks",
        "GPU-seconds per step against the number of tasks, relative to Task-Fused with 4 tasks",
        ["policy", "num_tasks", "plan", "gpu_seconds_per_step", "normalised", "paper_normalised"],
        task_text,
    )
    section(
        "5. Number of buckets",
        "buckets",
        "Step time and padding against the dispatcher's number of buckets, on the LobRA plan",
        ["num_buckets", "plan", "step_time_s", "padding_pct", "knee"],
        "The plan is fixed (LobRA's, planned with the default 16 buckets); only the per-step bucketing changes.",
    )
    section(
        "6. Planning time",
        "planning_time",
        "Planning time against the number of GPUs (log scale)",
        ["planner", "num_gpus", "planning_time_s", "plans_considered", "plan", "paper_planning_time_s"],
        "Wall-clock time of one planning call on this machine, shared with other work while it ran: the absolute"
        " numbers are noisy; the trend and the order of magnitude are what we compare.",
    )
    section(
        "7. Length distributions",
        "lengths",
        "Length distribution of every task (synthetic, moment-matched to the paper's statistics)",
        [
            "task",
            "mean",
            "paper_mean",
            "skewness",
            "paper_skewness",
            "kurtosis",
            "paper_kurtosis",
            "p99",
            "max",
        ],
    )
    out.append("## 8. Simulated vs measured\n")
    val = manifest.get("validation", {})
    if "sim_vs_real" in t:
        out.append(_image(folder, report, "sim_vs_real", "Simulated against measured step times"))
        out.append(_validation_text(val))
        out.append(_md_table(t["sim_vs_real"]))
    else:
        out.append(
            f"No validation run found: run `lobra validate`, then `lobra figures` ({val.get('note', '')}).\n"
        )
    return out


def _validation_text(val: dict) -> str:
    """The headline metrics of the validation run, from its validation.json when it is still there."""
    folder = val.get("folder")
    path = Path(folder) / "validation.json" if folder else None
    text = (
        f"Measured by `lobra validate` (`{folder}`): the executor ran each plan for real on this machine and the"
        " simulator ran the same plan on the same sampled steps; warm-up steps are left out. This checks the"
        " simulator and the cost model on the hardware at hand (CPU ranks), not the paper's GPU clusters.\n"
    )
    if path is not None and path.is_file():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return text
        keys = ("mape_step_time", "p95_abs_pct_error", "kendall_tau", "gpu_seconds_error_pct", "step_pairs")
        parts = [f"{k} {data[k]:.3g}" for k in keys if isinstance(data.get(k), int | float)]
        if parts:
            text += "\nOverall: " + ", ".join(parts) + ".\n"
        noise = data.get("noise") or {}
        if isinstance(noise.get("single_run_vs_median_pct"), int | float):
            text += (
                f"\nReal step times are medians over {noise['repeats']} runs of each plan. Run-to-run noise: a single"
                f" run's step is {noise['single_run_vs_median_pct']:.3g}% from that median on average; against single"
                f" runs the simulator's MAPE is {noise['single_run_mape_pct']:.3g}%.\n"
            )
    return text


def write_report(folder: str | Path, out: str | Path) -> Path:
    out = Path(out)
    text = render(folder, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    return out
