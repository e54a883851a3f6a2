"""``tfparity history``: archive a night's result sets, print trends, find the newest passing entry."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HistoryError

if TYPE_CHECKING:
    from harness.analysis.changepoints import SeriesScan
    from harness.analysis.history import History, TrendRow

HELP = "trends over a history directory of nightly results"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``tfparity history DIR [-o OUT] [--add RESULTS... [--label NAME]] [--latest]``."""
    parser.add_argument("history_dir", metavar="DIR", help="history directory (one subdirectory per nightly run)")
    parser.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="OUT",
        help="write OUT/history.md and OUT/history.html with the trend plot",
    )
    parser.add_argument(
        "--add",
        nargs="+",
        default=None,
        metavar="RESULTS",
        help="first archive these result directories as a new entry (one subdirectory each)",
    )
    parser.add_argument(
        "--label",
        default=None,
        help="with --add: label of the new entry (default: nightly); "
        "with --latest: only consider entries with this label",
    )
    parser.add_argument(
        "--stamp", default=None, help="UTC stamp of the new entry (default: now), e.g. 20261125T021700Z"
    )
    parser.add_argument(
        "--latest",
        action="store_true",
        help="only print the newest entry's directory (nothing if there is none) and exit",
    )


def run(args: argparse.Namespace) -> int:
    """Archive (optional), then print the trend table (change points marked) or the newest entry; write OUT if asked."""
    from harness.analysis.changepoints import scan
    from harness.analysis.history import add_entry, latest_entry, load_history, trend_rows
    from harness.render.text import history_text

    if args.add:
        entry = add_entry(args.history_dir, args.add, label=args.label or "nightly", stamp=args.stamp)
        print(f"added {entry}")
        if not args.output and not args.latest:
            return 0  # archiving is a pipeline step: no trend table unless asked for one
    elif args.stamp is not None:
        raise HistoryError("--stamp only applies together with --add")
    elif args.label is not None and not args.latest:
        raise HistoryError("--label only applies together with --add or --latest")
    if args.latest:
        if not Path(args.history_dir).exists():
            return 0  # no history yet: no baseline, which the caller treats as "nothing to compare"
        newest = latest_entry(load_history(args.history_dir), args.label)
        if newest is not None:
            print(Path(args.history_dir) / newest.name)
        return 0
    history = load_history(args.history_dir)
    rows = trend_rows(history)
    scans = scan(history)
    print(history_text(history, rows, scans))
    if args.output:
        for path in _write_pages(history, rows, scans, args.output):
            print(path)
    return 0


def _write_pages(history: History, rows: list[TrendRow], scans: list[SeriesScan], output: str) -> list[Path]:
    from harness.cli.report import PLOTS_DIR, prepare_output_dir, write_files
    from harness.render import plots
    from harness.render.changes import change_points_table, scan_note
    from harness.render.figures import trend_series
    from harness.render.html import history_html
    from harness.render.markdown import history_markdown
    from harness.render.report import history_table

    out = prepare_output_dir(output)
    png = plots.trend_png(trend_series(history))
    table = history_table(rows, scans)
    changes = change_points_table(scans)
    note = scan_note(scans)
    changes_md = [note, "", *changes.markdown(), ""] if changes.rows else [note, ""]
    md = history_markdown(history, table.markdown(), f"{PLOTS_DIR}/trend.png", changes_md)
    written = write_files(
        out,
        {
            f"{PLOTS_DIR}/trend.png": png,
            "history.md": md.encode("utf-8"),
            "history.html": history_html(history, table, png, changes, note).encode("utf-8"),
        },
    )
    return [written["history.md"], written["history.html"]]
