"""`lobra costmodel fit|predict|max-tokens|check`: the cost model from the command line."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from lobra.commands._common import add_json, print_json, print_table
from lobra.costmodel import CostModel, LayerTimeFit, MemoryOptions, MicroBatch, fit_profile, parse_plan
from lobra.costmodel.analytical import AnalyticalLayerTime
from lobra.costmodel.calibrate import AnalyticalCalibration, calibrate, is_analytical_fit
from lobra.costmodel.errors import CostModelError
from lobra.costmodel.layer_time import holdout_split
from lobra.costmodel.memory import DEFAULT_CAP_TOKENS, DEFAULT_LORA_RANK, DEFAULT_LORA_TARGETS
from lobra.costmodel.profile import load_profile
from lobra.costmodel.specs import load_gpu_spec, load_model_spec
from lobra.io import atomic_write
from lobra.traces.tasks import LORA_TARGETS


def register(parser: argparse.ArgumentParser) -> None:
    cmds = parser.add_subparsers(dest="costmodel_command", metavar="ACTION", required=True)
    _register_fit_and_predict(cmds)
    _register_queries(cmds)


def _register_fit_and_predict(cmds) -> None:
    p = cmds.add_parser(
        "fit",
        help="fit the per-layer time model to a profile CSV (tp,seq_len,mbs,time), or calibrate the analytical model",
    )
    p.add_argument(
        "--profile",
        required=True,
        help="profile CSV with columns tp,seq_len,mbs,time (ms per layer), optional pre_post_time",
    )
    p.add_argument("--out", required=True, help="where to write the fit (JSON)")
    p.add_argument("--plot", help="also write a predicted-vs-measured plot (PNG or PDF; quadratic fit only)")
    p.add_argument(
        "--analytical",
        action="store_true",
        help="calibrate the analytical model instead (the GPU's efficiencies and the stack's fixed cost, from as "
        "few as 3 rows), to predict any model on that GPU and stack; needs --model and --gpu",
    )
    p.add_argument("--model", help="with --analytical: the profiled model (name or config.json)")
    p.add_argument("--gpu", help="with --analytical: the profiled GPU (name or spec JSON)")
    add_lora_arguments(p, "with --analytical: ")
    p.set_defaults(func=cmd_fit)

    p = cmds.add_parser("predict", help="predict ms per layer (fwd+bwd with LoRA) for rows tp,seq_len,mbs")
    p.add_argument(
        "--fit",
        help="a fit JSON written by `lobra costmodel fit` (an analytical one predicts any --model on its stack)",
    )
    p.add_argument(
        "--model",
        help="model name or config.json: with --gpu, its shipped profile, else the analytical model; with an "
        "analytical --fit, the model to predict (default the profiled one)",
    )
    p.add_argument(
        "--gpu", help="GPU name or spec JSON (with --model; with an analytical --fit, default its own)"
    )
    p.add_argument("--profile", help="with --model/--gpu: use this profile CSV instead of the default")
    add_lora_arguments(p, "")
    p.add_argument("--input", required=True, help="CSV with columns tp,seq_len,mbs")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(func=cmd_predict)


def add_adapter_arguments(p: argparse.ArgumentParser) -> None:
    """The adapters held in memory beside the model: a count and a rank, or a task file's (--tasks FILE, as
    every other command reads it)."""
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--num-tasks", type=int, default=1, help="number of LoRA adapters trained together (default 1)"
    )
    group.add_argument(
        "--tasks", metavar="FILE", help="a tasks YAML file: its tasks' adapters (count, largest rank)"
    )
    p.add_argument(
        "--lora-rank", type=int, default=DEFAULT_LORA_RANK, help=f"LoRA rank (default {DEFAULT_LORA_RANK})"
    )


def adapter_memory(args, **options) -> MemoryOptions:
    """MemoryOptions of the adapters --num-tasks/--lora-rank or --tasks FILE name."""
    if args.tasks:
        from lobra.policies.planners.base import workload_memory
        from lobra.traces.tasks import load_workload

        return workload_memory(load_workload(args.tasks), MemoryOptions(**options))
    return MemoryOptions(num_tasks=args.num_tasks, lora_rank=args.lora_rank, **options)


def _register_queries(cmds) -> None:
    p = cmds.add_parser("max-tokens", help="largest micro-batch (tokens) per (tp, pp) that fits in memory")
    p.add_argument("--model", required=True, help="model name or config .json")
    p.add_argument("--gpu", required=True, help="GPU name or spec .json")
    add_adapter_arguments(p)
    p.add_argument(
        "--cap", type=int, default=DEFAULT_CAP_TOKENS, help="largest token count tried (default 16384)"
    )
    p.add_argument("--max-gpus", type=int, default=64, help="largest tp*pp listed (default 64)")
    p.add_argument("--checkpointing", action="store_true", help="with activation checkpointing")
    add_json(p)
    p.set_defaults(func=cmd_max_tokens)

    p = cmds.add_parser("replica-time", help="time of one step on each replica of a plan, fixed-length data")
    p.add_argument("--model", required=True, help="model name or config .json")
    p.add_argument("--gpu", required=True, help="GPU name or spec .json")
    p.add_argument("--plan", required=True, help="deployment plan, e.g. '<1,1>x6 <2,1>x1 <8,1>x1'")
    p.add_argument("--seq-len", type=int, required=True, help="padded length of every sequence")
    p.add_argument("--mbs", type=int, default=1, help="sequences per micro-batch (default 1)")
    p.add_argument("--micro-batches", type=int, default=1, help="micro-batches per replica (default 1)")
    add_adapter_arguments(p)
    p.add_argument(
        "--profile", help="profile CSV or analytical calibration JSON to use instead of the default"
    )
    add_json(p)
    p.set_defaults(func=cmd_replica_time)

    p = cmds.add_parser(
        "check", help="held-out error of the fit and leave-one-tp-out error of the analytical model"
    )
    p.add_argument("--profile", required=True, help="the profile CSV to check (tp,seq_len,mbs,time)")
    p.add_argument("--model", default="llama2-7b", help="the profiled model (for the analytical model)")
    p.add_argument("--gpu", default="a100-40gb", help="the profiled GPU (for the analytical model)")
    add_json(p)
    p.set_defaults(func=cmd_check)


def add_lora_arguments(parser: argparse.ArgumentParser, when: str) -> None:
    parser.add_argument("--lora-rank", type=int, help=f"{when}LoRA rank (default {DEFAULT_LORA_RANK}{ASIS})")
    parser.add_argument(
        "--lora-targets",
        help=f"{when}LoRA target modules, comma-separated, or 'all' "
        f"(default {','.join(DEFAULT_LORA_TARGETS)}{ASIS})",
    )


ASIS = "; an analytical --fit's own by default"


def _lora(args, rank: int = DEFAULT_LORA_RANK, targets: tuple[str, ...] = DEFAULT_LORA_TARGETS) -> dict:
    """The LoRA setup the flags give, else `rank` and `targets`."""
    if args.lora_targets is not None:
        targets = (
            LORA_TARGETS
            if args.lora_targets == "all"
            else tuple(t for t in args.lora_targets.split(",") if t)
        )
    unknown = [t for t in targets if t not in LORA_TARGETS]
    if unknown or not targets:
        raise CostModelError(
            f"--lora-targets: unknown module(s) {unknown}; choose from {', '.join(LORA_TARGETS)}"
        )
    rank = rank if args.lora_rank is None else args.lora_rank
    if rank < 1:
        raise CostModelError(f"--lora-rank must be a positive integer, got {rank}")
    return {"lora_rank": rank, "lora_targets": tuple(targets)}


def profile_label(path: str) -> str:
    """'llama2-7b on a100-40gb (llama2_7b_a100_40gb_layer_time.csv)' for a shipped profile, else its file name."""
    from lobra.costmodel.profile import SHIPPED_PROFILES

    name = Path(path).name
    pair = next((pair for pair, file in SHIPPED_PROFILES.items() if file == name), None)
    return f"{pair[0]} on {pair[1]} ({name})" if pair else name


def cmd_fit(args) -> int:
    df = load_profile(args.profile)
    if args.analytical:
        return _fit_analytical(args, df)
    fit = fit_profile(df, source=args.profile)
    if args.plot:
        from lobra.analysis.plots import plot_fit  # matplotlib only when asked

        title = f"Layer-time fit of {profile_label(args.profile)}"
        atomic_write(args.plot, lambda tmp: plot_fit(df, fit, tmp, title))
    atomic_write(args.out, fit.to_json)
    rows = [
        {"tp": tp, **{f"c{i + 1}": c for i, c in enumerate(fit.coeffs[tp])}, "mape_pct": fit.mape_pct[tp]}
        for tp in fit.tps
    ]
    print_table(pd.DataFrame(rows))
    print(f"wrote {args.out}" + (f" and {args.plot}" if args.plot else ""))
    return 0


def _fit_analytical(args, df: pd.DataFrame) -> int:
    if not args.model or not args.gpu:
        raise CostModelError("--analytical needs --model and --gpu (the profiled ones)")
    if args.plot:
        raise CostModelError("--plot draws the quadratic fit; leave it out with --analytical")
    model, gpu, lora = load_model_spec(args.model), load_gpu_spec(args.gpu), _lora(args)
    cal = calibrate(model, gpu, df, source=Path(args.profile).name, **lora)
    atomic_write(args.out, cal.to_json)
    print_table(pd.DataFrame([{"part": "hardware", **asdict(cal.eff)}]))
    print_table(pd.DataFrame([{"part": "stack", **asdict(cal.stack)}]))
    lt = cal.layer_time(model, gpu, **lora)
    out = df.assign(pred_ms=[lt.predict_ms(int(r.tp), r.mbs, r.seq_len) for r in df.itertuples()])
    out["error_pct"] = (out["pred_ms"] / out["time"] - 1) * 100
    print_table(out)
    print(f"in-sample MAPE: {', '.join(f'{k} {v:.2f}%' for k, v in cal.mape_pct.items())}; wrote {args.out}")
    return 0


def _read_rows(path: str) -> pd.DataFrame:
    return load_profile(path, columns=("tp", "seq_len", "mbs"))


def _layer_models(args, rows: pd.DataFrame):
    """A function tp -> layer-time model for the rows, and what it assumes (for stderr)."""
    if args.fit and is_analytical_fit(args.fit):
        cal = AnalyticalCalibration.from_json(args.fit)
        model, gpu = load_model_spec(args.model or cal.model), load_gpu_spec(args.gpu or cal.gpu)
        _check_tps(model, rows)
        lt = cal.layer_time(model, gpu, **_lora(args, cal.lora_rank, cal.lora_targets))
        return (lambda tp: lt), f"{model.name} on {gpu.name}, {cal.describe_stack()}"
    if args.fit:
        if args.model or args.gpu:
            raise CostModelError(
                "a quadratic fit predicts only the model and GPU it was fitted on; "
                "calibrate with `lobra costmodel fit --analytical` to predict another"
            )
        fit = LayerTimeFit.from_json(args.fit)
        return (lambda tp: fit), f"quadratic fit {fit.source}"
    if not args.model or not args.gpu:
        raise CostModelError("predict needs --fit, or --model and --gpu")
    cm = CostModel.build(args.model, args.gpu, profile=args.profile, memory=MemoryOptions(**_lora(args)))
    _check_tps(cm.model, rows)
    return cm.layer_model, f"{cm.model.name} on {cm.gpu.name}, {cm.source}"


def _check_tps(model, rows: pd.DataFrame) -> None:
    for tp in rows["tp"].unique():
        if model.num_heads % tp:
            raise CostModelError(f"tp={tp} does not divide the model's {model.num_heads} attention heads")


def cmd_predict(args) -> int:
    rows = _read_rows(args.input)
    pick, assumes = _layer_models(args, rows)
    print(f"predicting with {assumes}", file=sys.stderr)
    preds = [
        pd.Series(np.atleast_1d(pick(tp).predict_ms(int(tp), g["mbs"], g["seq_len"])), index=g.index)
        for tp, g in rows.groupby("tp", sort=False)
    ]
    out = rows.assign(pred_ms=pd.concat(preds).sort_index())
    if args.json:
        print_json(
            [
                {"tp": int(r.tp), "seq_len": int(r.seq_len), "mbs": int(r.mbs), "pred_ms": float(r.pred_ms)}
                for r in out.itertuples()
            ]
        )
    else:
        print_table(out)
    return 0


def cmd_max_tokens(args) -> int:
    model, gpu = load_model_spec(args.model), load_gpu_spec(args.gpu)
    opts = adapter_memory(args, activation_checkpointing=args.checkpointing)
    cm = CostModel(model, gpu, None, AnalyticalLayerTime(model, gpu), opts, cap=args.cap)
    table = sorted(cm.feasible_configs(args.max_gpus).items())
    if args.json:
        print_json([{"tp": c.tp, "pp": c.pp, "max_tokens": n} for c, n in table])
    else:
        adapters = f"{opts.num_tasks} adapter(s) of rank {opts.lora_rank}"
        print(f"max tokens per micro-batch: {model.name} on {gpu.name}, {adapters}, cap {args.cap}")
        print_table(
            pd.DataFrame([{"tp": c.tp, "pp": c.pp, "gpus": c.num_gpus, "max_tokens": n} for c, n in table])
        )
    return 0


def cmd_replica_time(args) -> int:
    plan = parse_plan(args.plan)
    if args.seq_len < 1 or args.mbs < 1 or args.micro_batches < 1:
        raise CostModelError("--seq-len, --mbs and --micro-batches must be positive")
    cm = CostModel.build(args.model, args.gpu, profile=args.profile, memory=adapter_memory(args))
    mb = MicroBatch.padded(args.mbs, args.seq_len)
    spans_nodes = plan.num_gpus > cm.gpu.gpus_per_node
    rows = []
    for config, count in plan.entries:
        cm.check_config(config)
        limit = cm.max_tokens(config)
        if mb.tokens > limit:
            raise CostModelError(
                f"a micro-batch of {mb.tokens} tokens does not fit {config} "
                f"(max_tokens {limit} on {cm.gpu.name})"
            )
        t = cm.replica_time(
            config, [mb] * args.micro_batches, num_replicas=plan.num_replicas, spans_nodes=spans_nodes
        )
        rows.append(
            {"config": str(config), "replicas": count, "max_tokens": limit, **asdict(t), "total_s": t.total_s}
        )
    if args.json:
        print_json(rows)
    else:
        print(
            f"{cm.model.name} on {cm.gpu.name} ({cm.source}); {args.micro_batches} micro-batch(es) of "
            f"{args.mbs} x {args.seq_len} tokens per replica"
        )
        print_table(pd.DataFrame(rows))
    return 0


def check_profile(df: pd.DataFrame, model: str, gpu: str) -> dict:
    """Held-out MAPE of the fit (every third seq_len left out) and leave-one-tp-out MAPE of the analytical model."""
    train, test = holdout_split(df)
    fit = fit_profile(train)
    fit_err = {
        int(tp): np.abs(fit.predict_ms(tp, r["mbs"], r["seq_len"]) - r["time"]) / r["time"]
        for tp, r in test.groupby("tp")
    }
    m, g = load_model_spec(model), load_gpu_spec(gpu)
    loto = {}
    if df["tp"].nunique() > 1:
        for tp, r in df.groupby("tp"):
            cal = calibrate(m, g, df[df["tp"] != tp])
            pred = cal.layer_time(m, g).predict_ms(int(tp), r["mbs"], r["seq_len"])
            loto[int(tp)] = np.abs(pred - r["time"]) / r["time"]

    def pct(errs: dict) -> dict:
        out = {str(tp): float(e.mean() * 100) for tp, e in errs.items()}
        out["all"] = (
            float(np.concatenate([np.asarray(e) for e in errs.values()]).mean() * 100) if errs else None
        )
        return out

    return {
        "fit_heldout_mape_pct": pct(fit_err),
        "heldout_rows": len(test),
        "analytical_leave_one_tp_out_mape_pct": pct(loto),
    }


def cmd_check(args) -> int:
    result = check_profile(load_profile(args.profile), args.model, args.gpu)
    if args.json:
        print_json(result)
        return 0
    print(f"fit, every third seq_len held out ({result['heldout_rows']} rows): MAPE % by tp")
    print("  " + "  ".join(f"{k}: {v:.2f}" for k, v in result["fit_heldout_mape_pct"].items()))
    print("analytical model, calibrated without the predicted tp: MAPE % by tp")
    print(
        "  "
        + "  ".join(
            f"{k}: {v:.2f}"
            for k, v in result["analytical_leave_one_tp_out_mape_pct"].items()
            if v is not None
        )
    )
    return 0
