"""`lobra report`: a Markdown report of the figures of `lobra figures` beside the paper's numbers."""

from __future__ import annotations

import argparse

from lobra.analysis.report import write_report


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--figures", default="out/figures", help="output of `lobra figures` (default out/figures)")
    p.add_argument("--out", default="out/report.md", help="the report (default out/report.md)")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    path = write_report(args.figures, args.out)
    print(f"wrote {path} (figures from {args.figures}, embedded by relative path)")
    return 0
