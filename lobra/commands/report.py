"""`lobra report`: a Markdown report of the figures of `lobra figures` beside the paper's numbers."""

from __future__ import annotations

import argparse
from pathlib import Path

from lobra.analysis.report import ReportError, write_report

DEFAULT_FIGURES = Path("out/figures")  # where `lobra figures` writes by default


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--figures",
        help="output of `lobra figures` (default: out/figures, else the newest folder holding a figures.json up to"
        " two levels below here)",
    )
    p.add_argument("--out", default="out/report.md", help="the report (default out/report.md)")
    p.set_defaults(func=cmd_report)


def find_figures(root: Path = Path(".")) -> Path:
    """Where `lobra figures` wrote: out/figures if it holds figures, else the newest figures.json's folder up to two
    levels below root. The error says where it looked."""
    if (root / DEFAULT_FIGURES / "figures.json").is_file():
        return root / DEFAULT_FIGURES
    found = [*root.glob("*/figures.json"), *root.glob("*/*/figures.json")]
    if not found:
        raise ReportError(
            f"no figures.json in {root / DEFAULT_FIGURES} nor in any folder up to two levels below"
            f" {root.resolve()}: run `lobra figures --out DIR` first, or give --figures DIR"
        )
    return max(found, key=lambda p: p.stat().st_mtime).parent


def cmd_report(args) -> int:
    folder = Path(args.figures) if args.figures else find_figures()
    path = write_report(folder, args.out)
    print(f"wrote {path} (figures from {folder}, embedded by relative path)")
    return 0
