"""``tfparity data prepare NAME...``: canonical arrays into the data directory (containers, offline hosts)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.spec import names

HELP = "prepare datasets in the data directory (for containers / offline use)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", parser_class=type(parser))
    sub.required = True
    prep = sub.add_parser("prepare", help="write the canonical arrays of datasets into the data directory")
    prep.add_argument("name", nargs="+", help=f"dataset: {', '.join(names.DATASETS)}")
    prep.add_argument("--data-dir", help="default $TFPARITY_DATA_DIR or ./data")


def run(args: argparse.Namespace) -> int:
    from harness import data

    for name in args.name:
        path = data.prepare(name, Path(args.data_dir) if args.data_dir else None)
        print(f"{name}: {path}")
    return 0
