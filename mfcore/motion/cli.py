"""``python -m mfcore.motion convert | table``: write the npz from the three packages, or print the clip and split
tables."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from .converter import convert
from .library import DEFAULT_MOTION_PATH, clip_table, split_table


def main(argv: list[str] | None = None) -> None:
    package_doc = sys.modules[__package__].__doc__  # the package's docstring, as before the split
    parser = argparse.ArgumentParser(prog="python -m mfcore.motion", description=package_doc.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="download the mocap packages (no install) and write the npz")
    conv.add_argument("--out", type=Path, default=DEFAULT_MOTION_PATH)
    conv.add_argument("--download-dir", type=Path, default=Path("/tmp/mfcore_motion_src"))
    sub.add_parser("table", help="print the clip table and the split segments")
    args = parser.parse_args(argv)
    if args.command == "convert":
        table = convert(args.out, args.download_dir)
    else:
        table = clip_table()
    with pd.option_context("display.width", 200, "display.max_rows", 100, "display.max_columns", None):
        print(table)
        print(table.groupby(["source", "split"]).frames.sum())
        splits = split_table()
        print(splits)
        print(splits.groupby(["split", "motion_type"]).frames.sum())
