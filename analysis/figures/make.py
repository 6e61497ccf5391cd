"""`make_all`: plan the studies, run every distinct simulation once in one pool of processes (the ablations and
the bucket study reuse the LobRA plans; points shared by two studies are simulated once), draw every registered
figure and write `sweep.csv`/`sweep.parquet` (all runs) and `figures.json` (settings, wall time, what was drawn)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pandas as pd
from lobra.analysis.figures.figure import FigureInputs
from lobra.analysis.figures.registry import REGISTRY
from lobra.analysis.studies import FigureSettings, load_validation, studies
from lobra.analysis.sweep import progress_total, run_sweep, workload_of

from lobra.io import atomic_write, staged_dir, write_json, write_table

FILE_TYPES = ("png", "pdf", "csv")


def progress_steps(settings: FigureSettings) -> int:
    """How many times make_all calls progress."""
    return progress_total([s for specs in studies(settings).values() for s in specs]) + len(REGISTRY)


def make_all(
    out: str | Path,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    settings: FigureSettings | None = None,
    validation: str | Path | None = "out/validate",
) -> dict:
    """Simulate every study, draw every figure under `out`; returns the manifest (also written as figures.json)."""
    start = time.perf_counter()
    out = Path(out)
    settings = replace(settings or FigureSettings(), seed=seed)
    note = progress or (lambda _label: None)
    df, parts = run_studies(settings, note)
    pairs, why = (None, "no validation folder given") if validation is None else load_validation(validation)
    inputs = FigureInputs(parts, settings, pairs, why if pairs is not None else "")
    with staged_dir(
        out
    ) as stage:  # the run's files replace the old ones together, or none do (Ctrl-C, a fault)
        write_table(df, stage / "sweep")
        drawn = draw_all(inputs, stage, note)
        manifest = {"figures": drawn, **describe(settings, len(df))}
        manifest["validation"] = {
            "folder": None if validation is None else str(validation),
            "found": pairs is not None,
            "note": why,
        }
        manifest["wall_s"] = round(time.perf_counter() - start, 1)
        write_json(stage / "figures.json", manifest)
    for figure in REGISTRY:  # never leave an old figure beside new ones
        if figure.name not in drawn:
            for ext in FILE_TYPES:
                (out / f"{figure.name}.{ext}").unlink(missing_ok=True)
    return manifest


def run_studies(settings: FigureSettings, note: Callable[[str], None]) -> tuple[pd.DataFrame, dict]:
    """Every run of every study in one sweep: all the rows (with their study) and each study's own rows."""
    plan = studies(settings)
    df = run_sweep([s for group in plan.values() for s in group], settings.workers, note)
    df.insert(1, "study", [name for name, group in plan.items() for _ in group])
    parts, at = {}, 0
    for name, group in plan.items():
        parts[name] = df.iloc[at : at + len(group)].reset_index(drop=True)
        at += len(group)
    return df, parts


def draw_all(inputs: FigureInputs, out: Path, note: Callable[[str], None]) -> list[str]:
    """Every registered figure (and the tables beside them) under `out`; the names of those drawn."""
    out.mkdir(parents=True, exist_ok=True)
    for table in (t for figure in REGISTRY for t in figure.tables):
        rows = inputs.studies[table.study]
        if len(rows):
            cut = rows[list(table.columns)]
            atomic_write(out / f"{table.name}.csv", lambda p, df=cut: df.to_csv(p, index=False))
    drawn = []
    for figure in REGISTRY:
        note(f"figure {figure.name}")
        table = figure.draw(inputs, out)
        if table is None:
            continue
        figure.check(table)
        drawn.append(figure.name)
    return drawn


def describe(settings: FigureSettings, runs: int) -> dict:
    """What figures.json says about the settings: the studies and the simulation parameters."""
    base = settings.scaling
    return {
        "paper_settings": settings.paper,
        "studies": {
            "main": {label: b.scenario or b.tasks for label, b in settings.main},
            "scaling": base.scenario or base.tasks,
            "scaling_gpus": list(settings.scaling_gpus),
            "tasks_gpus": settings.tasks_gpus,
            "task_sets": {
                str(k): workload_of(base.scenario, base.tasks, k).names for k in settings.num_tasks
            },
            "buckets": list(settings.buckets),
            "buckets_on": settings.buckets_base.scenario or settings.buckets_base.tasks,
            "planning_gpus": list(settings.planning_gpus),
            "planning_planners": list(settings.planning_planners),
        },
        "seed": settings.seed,
        "steps": settings.steps,
        "ilp_time_limit_s": settings.ilp_time_limit_s,
        "ilp_node_limit": settings.ilp_node_limit,
        "workers": settings.workers,
        "runs": runs,
    }
