"""`lobra costmodel fit|predict|max-tokens|check`: the cost model from the command line."""

from __future__ import annotations

import argparse
from dataclasses import asdict

import numpy as np
import pandas as pd

from lobra.commands._common import print_json, print_table
from lobra.costmodel import CostModel, LayerTimeFit, MemoryOptions, MicroBatch, fit_profile, parse_plan
from lobra.costmodel.analytical import AnalyticalLayerTime, calibrate_efficiency
from lobra.costmodel.errors import CostModelError
from lobra.costmodel.layer_time import holdout_split
from lobra.costmodel.memory import DEFAULT_CAP_TOKENS
from lobra.costmodel.profile import load_profile
from lobra.costmodel.specs import load_gpu_spec, load_model_spec
from lobra.io import atomic_write


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("costmodel", help="fit, query and check the cost model")
    cmds = parser.add_subparsers(dest="costmodel_command", metavar="ACTION", required=True)

    p = cmds.add_parser("fit", help="fit the per-layer time model to a profile CSV (tp,seq_len,mbs,time)")
    p.add_argument(
        "--profile", required=True, help="profile CSV with columns tp,seq_len,mbs,time (ms per layer)"
    )
    p.add_argument("--out", required=True, help="where to write the fit (JSON)")
    p.add_argument("--plot", help="also write a predicted-vs-measured plot (PNG or PDF)")
    p.set_defaults(func=cmd_fit)

    p = cmds.add_parser("predict", help="predict ms per layer (fwd+bwd with LoRA) for rows tp,seq_len,mbs")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--fit", help="a fit JSON written by `lobra costmodel fit`")
    src.add_argument(
        "--model", help="model name or config.json (with --gpu): shipped profile, else analytical"
    )
    p.add_argument("--gpu", help="GPU name or spec JSON (with --model)")
    p.add_argument("--profile", help="with --model/--gpu: use this profile CSV instead of the default")
    p.add_argument("--input", required=True, help="CSV with columns tp,seq_len,mbs")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(func=cmd_predict)

    p = cmds.add_parser("max-tokens", help="largest micro-batch (tokens) per (tp, pp) that fits in memory")
    p.add_argument("--model", required=True)
    p.add_argument("--gpu", required=True)
    p.add_argument(
        "--tasks", type=int, default=1, help="number of LoRA adapters trained together (default 1)"
    )
    p.add_argument("--rank", type=int, default=16, help="LoRA rank (default 16)")
    p.add_argument(
        "--cap", type=int, default=DEFAULT_CAP_TOKENS, help="largest token count tried (default 16384)"
    )
    p.add_argument("--max-gpus", type=int, default=64, help="largest tp*pp listed (default 64)")
    p.add_argument("--checkpointing", action="store_true", help="with activation checkpointing")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_max_tokens)

    p = cmds.add_parser("replica-time", help="time of one step on each replica of a plan, fixed-length data")
    p.add_argument("--model", required=True)
    p.add_argument("--gpu", required=True)
    p.add_argument("--plan", required=True, help="deployment plan, e.g. '<1,1>x6 <2,1>x1 <8,1>x1'")
    p.add_argument("--seq-len", type=int, required=True, help="padded length of every sequence")
    p.add_argument("--mbs", type=int, default=1, help="sequences per micro-batch (default 1)")
    p.add_argument("--micro-batches", type=int, default=1, help="micro-batches per replica (default 1)")
    p.add_argument("--tasks", type=int, default=1, help="number of LoRA adapters (default 1)")
    p.add_argument("--profile", help="profile CSV to use instead of the default")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_replica_time)

    p = cmds.add_parser(
        "check", help="held-out error of the fit and leave-one-tp-out error of the analytical model"
    )
    p.add_argument("--profile", required=True)
    p.add_argument("--model", default="llama2-7b", help="the profiled model (for the analytical model)")
    p.add_argument("--gpu", default="a100-40gb", help="the profiled GPU (for the analytical model)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)


def cmd_fit(args) -> int:
    df = load_profile(args.profile)
    fit = fit_profile(df, source=args.profile)
    if args.plot:
        from lobra.analysis.plots import plot_fit  # matplotlib only when asked

        atomic_write(args.plot, lambda tmp: plot_fit(df, fit, tmp))
    atomic_write(args.out, fit.to_json)
    rows = [
        {"tp": tp, **{f"c{i + 1}": c for i, c in enumerate(fit.coeffs[tp])}, "mape_pct": fit.mape_pct[tp]}
        for tp in fit.tps
    ]
    print_table(pd.DataFrame(rows))
    print(f"wrote {args.out}" + (f" and {args.plot}" if args.plot else ""))
    return 0


def _read_rows(path: str) -> pd.DataFrame:
    return load_profile(path, columns=("tp", "seq_len", "mbs"))


def cmd_predict(args) -> int:
    rows = _read_rows(args.input)
    if args.fit:
        fit = LayerTimeFit.from_json(args.fit)

        def pick(tp):
            return fit
    else:
        if not args.gpu:
            raise CostModelError("--model needs --gpu")
        cm = CostModel.build(args.model, args.gpu, profile=args.profile)
        for tp in rows["tp"].unique():
            if cm.model.num_heads % tp:
                raise CostModelError(
                    f"tp={tp} does not divide the model's {cm.model.num_heads} attention heads"
                )
        pick = cm.layer_model
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
    opts = MemoryOptions(
        num_tasks=args.tasks, lora_rank=args.rank, activation_checkpointing=args.checkpointing
    )
    cm = CostModel(model, gpu, None, AnalyticalLayerTime(model, gpu), opts, cap=args.cap)
    table = sorted(cm.feasible_configs(args.max_gpus).items())
    if args.json:
        print_json([{"tp": c.tp, "pp": c.pp, "max_tokens": n} for c, n in table])
    else:
        print(f"max tokens per micro-batch: {model.name} on {gpu.name}, {args.tasks} task(s), cap {args.cap}")
        print_table(
            pd.DataFrame([{"tp": c.tp, "pp": c.pp, "gpus": c.num_gpus, "max_tokens": n} for c, n in table])
        )
    return 0


def cmd_replica_time(args) -> int:
    plan = parse_plan(args.plan)
    if args.seq_len < 1 or args.mbs < 1 or args.micro_batches < 1:
        raise CostModelError("--seq-len, --mbs and --micro-batches must be positive")
    cm = CostModel.build(
        args.model, args.gpu, profile=args.profile, memory=MemoryOptions(num_tasks=args.tasks)
    )
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
            eff = calibrate_efficiency(m, g, df[df["tp"] != tp])
            pred = AnalyticalLayerTime(m, g, eff).predict_ms(int(tp), r["mbs"], r["seq_len"])
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
