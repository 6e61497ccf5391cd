"""Sim-vs-real metrics over step pairs: each step's real time (the median over repeated real runs) beside its
simulated time, the errors between them, the run-to-run noise that bounds them, and whether both dispatched alike.

Every pair is checked to have run the same sequences on both sides: the executor and the simulator draw every step
with the same sampler and seed, and a mismatch means the comparison is void.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lobra.calibration.validate_config import ValidationError
from lobra.costmodel import DeploymentPlan


def step_metrics(pairs: pd.DataFrame) -> dict:
    """Over measured (non-warm-up) step pairs with columns real_step_s, sim_step_s, real_gpu_s, sim_gpu_s:
    mean absolute percentage error of step time, the 95th percentile of |error|%, and the GPU-seconds error
    (simulated total over real total, minus one, in %)."""
    if pairs.empty:
        return {"mape_pct": None, "p95_abs_pct_error": None, "gpu_seconds_error_pct": None, "pairs": 0}
    abs_pct = (pairs["sim_step_s"] - pairs["real_step_s"]).abs() / pairs["real_step_s"] * 100
    real_gpu_s = float(pairs["real_gpu_s"].sum())
    return {
        "mape_pct": float(abs_pct.mean()),
        "p95_abs_pct_error": float(np.percentile(abs_pct, 95)),
        "gpu_seconds_error_pct": (float(pairs["sim_gpu_s"].sum()) / real_gpu_s - 1) * 100,
        "pairs": len(pairs),
    }


def kendall_tau(real: list[float], sim: list[float]) -> float | None:
    """Rank agreement of the plans' mean real and simulated step times (scipy's tau-b); None below two plans."""
    from scipy.stats import kendalltau

    if len(real) < 2:
        return None
    tau = kendalltau(real, sim).statistic
    return None if np.isnan(tau) else round(float(tau), 6)  # 0.9999999999999999 is 1


def step_pairs(
    plan: DeploymentPlan, real_runs: list[pd.DataFrame], sim_runs: list[pd.DataFrame], warmup: int
) -> pd.DataFrame:
    """One row per step: its real time, the median over the real runs (their minimum and maximum beside it), and
    its simulated time, the median over the simulations of those runs (one per round). Raises unless every run
    and every simulation made the same steps on the same sequences."""
    sims = [(s[s["status"] == "ok"] if "status" in s else s).set_index("step") for s in sim_runs]
    reals = [r.set_index("step") for r in real_runs]
    sim = sims[0]
    for real in reals + sims[1:]:
        if list(real.index) != list(sim.index):
            raise ValidationError(
                f"plan {plan}: the executor ran steps {list(real.index)}, the simulator {list(sim.index)}"
            )
        for step in real.index:
            got = (int(sim.at[step, "num_sequences"]), int(sim.at[step, "tokens"]))
            want = (int(real.at[step, "num_sequences"]), int(real.at[step, "tokens"]))
            if got != want:
                raise ValidationError(
                    f"plan {plan} step {step}: the simulator saw {got[0]} sequences / {got[1]} tokens, the "
                    f"executor {want[0]} / {want[1]}: they did not sample the same data"
                )
    times = pd.concat([r["step_time_s"].astype(float) for r in reals], axis=1)
    sim_times = pd.concat([s["step_time_s"].astype(float) for s in sims], axis=1)
    real = reals[0]
    out = pd.DataFrame(
        {
            "plan": str(plan),
            "num_ranks": plan.num_gpus,
            "step": real.index.astype(int),
            "warmup": real.index < warmup,
            "num_sequences": real["num_sequences"].astype(int).values,
            "tokens": real["tokens"].astype(int).values,
            "sim_num_sequences": sim["num_sequences"].astype(int).values,
            "sim_tokens": sim["tokens"].astype(int).values,
            "real_step_s": times.median(axis=1).values,
            "real_min_s": times.min(axis=1).values,
            "real_max_s": times.max(axis=1).values,
            "runs": len(reals),
            "sim_step_s": sim_times.median(axis=1).values,
        }
    )
    out["real_gpu_s"] = out["real_step_s"] * plan.num_gpus
    out["sim_gpu_s"] = out["sim_step_s"] * plan.num_gpus
    out["error_pct"] = (out["sim_step_s"] - out["real_step_s"]) / out["real_step_s"] * 100
    return out


def single_runs(
    real_runs: list[pd.DataFrame], sim_runs: list[pd.DataFrame], pairs: pd.DataFrame
) -> pd.DataFrame:
    """Every real run's own step times beside the median over the runs and that run's own simulated time (one
    row per run and step): what a single real run would have given."""
    rows = []
    for k, (run, sim) in enumerate(zip(real_runs, sim_runs, strict=True)):
        rows.append(
            pairs[["plan", "step", "warmup", "real_step_s"]]
            .rename(columns={"real_step_s": "median_step_s"})
            .assign(
                run=k,
                real_step_s=run.set_index("step").loc[pairs["step"], "step_time_s"].to_numpy(float),
                sim_step_s=sim.set_index("step").loc[pairs["step"], "step_time_s"].to_numpy(float),
            )
        )
    out = pd.concat(rows, ignore_index=True)
    out["error_pct"] = (out["sim_step_s"] - out["real_step_s"]) / out["real_step_s"] * 100
    return out


def noise_metrics(runs: pd.DataFrame) -> dict:
    """Over measured steps of single runs: how far a single run is from the median of its repeats (the machine's
    run-to-run noise; None with one run), and the simulator's MAPE against single runs."""
    measured = runs[~runs["warmup"]]
    repeats = int(runs["run"].nunique())
    off = (measured["real_step_s"] - measured["median_step_s"]).abs() / measured["median_step_s"] * 100
    return {
        "repeats": repeats,
        "single_run_vs_median_pct": float(off.mean()) if repeats > 1 and len(measured) else None,
        "single_run_mape_pct": float(measured["error_pct"].abs().mean()) if len(measured) else None,
    }


def dispatch_agreement(real_replicas: pd.DataFrame, sim_replicas: pd.DataFrame) -> float:
    """Share of (step, replica) rows where both runs gave the replica the same tokens in as many micro-batches."""
    keys = ["step", "replica"]
    cols = ["tokens", "padded_tokens", "micro_batches"]
    sim = sim_replicas[sim_replicas["attempt"] == 0] if "attempt" in sim_replicas else sim_replicas
    merged = real_replicas[keys + cols].merge(sim[keys + cols], on=keys, suffixes=("_real", "_sim"))
    if merged.empty:
        return 0.0
    same = np.logical_and.reduce([merged[f"{c}_real"] == merged[f"{c}_sim"] for c in cols])
    return float(same.sum() / max(len(real_replicas), len(merged)))
