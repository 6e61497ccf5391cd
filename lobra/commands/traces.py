"""`lobra traces list|show|build`: the shipped length traces, any trace CSV, building one from a dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from lobra.commands._common import add_json, print_json, print_table
from lobra.io import atomic_write
from lobra.traces.trace import Trace, load_trace, shipped_traces

_STAT_COLUMNS = ("count", "mean", "p50", "p90", "p99", "max", "skewness", "kurtosis")


def register(parser: argparse.ArgumentParser) -> None:
    cmds = parser.add_subparsers(dest="traces_command", metavar="ACTION", required=True)

    p = cmds.add_parser("list", help="the traces shipped with lobra, with their statistics")
    add_json(p)
    p.set_defaults(func=cmd_list)

    p = cmds.add_parser("show", help="statistics (and a length histogram) of a shipped trace or a trace CSV")
    p.add_argument(
        "trace", metavar="NAME|CSV", help="a shipped trace name or a CSV with a total_tokens column"
    )
    p.add_argument("--plot", metavar="FILE.png", help="also write a length histogram (PNG or PDF)")
    add_json(p)
    p.set_defaults(func=cmd_show)

    p = cmds.add_parser("build", help="tokenize a local dataset file into a trace CSV")
    p.add_argument("--input", required=True, help="a local .jsonl, .json, .parquet or .csv file")
    p.add_argument(
        "--tokenizer", required=True, help="a local tokenizer directory (AutoTokenizer.from_pretrained)"
    )
    p.add_argument(
        "--template",
        required=True,
        choices=("alpaca", "chat", "raw"),
        help="alpaca: instruction/input/output; chat: messages; raw: text",
    )
    p.add_argument("--out", required=True, help="where to write the trace CSV")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.set_defaults(func=cmd_build)


def _row(trace: Trace) -> dict:
    s = trace.stats.to_dict()
    return {"name": trace.name, **{k: s[k] for k in _STAT_COLUMNS}}


def cmd_list(args) -> int:
    rows = [_row(load_trace(name)) for name in shipped_traces()]
    if args.json:
        print_json(rows)
    else:
        print_table(pd.DataFrame(rows).round(3), floatfmt="{:.6g}")
    return 0


def _show(trace: Trace, as_json: bool) -> None:
    stats = trace.stats.to_dict()
    if as_json:
        print_json({"name": trace.name, "source": trace.source, **stats})
        return
    print(f"{trace.name}: {trace.source}")
    print_table(pd.DataFrame([{k: v for k, v in stats.items() if v is not None}]).round(3), floatfmt="{:.6g}")


def cmd_show(args) -> int:
    trace = load_trace(args.trace)
    if args.plot:
        from lobra.analysis.plots import plot_length_histogram  # matplotlib only when asked

        atomic_write(args.plot, lambda tmp: plot_length_histogram(trace, tmp))
    _show(trace, args.json)
    if args.plot and not args.json:
        print(f"wrote {args.plot}")
    return 0


def cmd_build(args) -> int:
    from lobra.traces.builder import build_trace_table  # datasets and transformers only for this command

    table = build_trace_table(args.input, args.tokenizer, args.template)
    trace = Trace(
        Path(args.out).stem,
        table["total_tokens"].to_numpy(),
        table["prompt_tokens"].to_numpy(),
        table["response_tokens"].to_numpy(),
        source=args.out,
    )
    atomic_write(args.out, lambda tmp: table.to_csv(tmp, index=False))
    _show(trace, args.json)
    if not args.json:
        print(f"wrote {args.out}")
    return 0
