"""``tfparity show``: a human summary of result files (or of every result in suite directories)."""

from __future__ import annotations

import argparse

from harness.errors import ResultError

HELP = "human summary of result files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("result", nargs="+", help="result JSON file(s) or suite directories")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.cli.sources import files_of
    from harness.render.text import result_text
    from harness.store.results import MANIFEST_NAMES, load_result

    paths = []
    for target in args.result:
        if Path(target).name in MANIFEST_NAMES and Path(target).is_file():
            raise ResultError(f"{target!r} is a manifest, not a run result; pass a result file or the suite directory")
        paths.extend(files_of(target))  # an empty directory is an error, as for compare and report
    for i, path in enumerate(paths):
        if i:
            print()
        print(result_text(load_result(path)))
    return 0
