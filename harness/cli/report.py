"""``tfparity report``: results (+ comparison, history, baseline) in; report.md, report.html, plots/ out."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from harness.cli import types

log = logging.getLogger(__name__)

HELP = "write report.md and a self-contained report.html"
PLOTS_DIR = "plots"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "results",
        nargs="+",
        metavar="RESULTS",
        help="result directories or files (searched recursively); each argument is one source, "
        "as for 'tfparity compare'",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DIR",
        help="directory for report.md, report.html and plots/ (created; files replaced atomically)",
    )
    parser.add_argument(
        "--reference",
        default=None,
        metavar="PATH",
        help="reference group for the agreement checks (default: compare's, the cpu-fp32 path)",
    )
    parser.add_argument(
        "--margin-pp",
        type=types.margin_pp,
        default=1.0,
        metavar="PP",
        help="accuracy equivalence margin in percentage points (default: 1.0)",
    )
    parser.add_argument(
        "--history",
        default=None,
        metavar="DIR",
        help="history directory (one subdirectory per nightly run) for a trend section",
    )
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="DIR",
        help="baseline results: include compare's regression checks in the verdict",
    )
    parser.add_argument(
        "--allow-hardware-change",
        action="store_true",
        help="with --baseline: accept a baseline from other GPU models or another driver (a WARN says what changed)",
    )
    parser.add_argument("--title", default="tfparity report", help="report title")


def prepare_output_dir(out_dir: str) -> Path:
    """The output directory with its ``plots/``, created; ReportError (one line) if that is impossible."""
    import os

    from harness.errors import ReportError

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ReportError(f"report output {str(out)!r} exists and is not a directory")
    try:
        (out / PLOTS_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot create report directory {str(out)!r}: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK):
        raise ReportError(f"report directory {str(out)!r} is not writable")
    return out


def write_files(out: Path, files: dict[str, bytes]) -> dict[str, Path]:
    """Write every file (relative name -> bytes) atomically, replacing older versions."""
    from harness.errors import ReportError
    from harness.store.atomic import write_atomic

    try:
        return {name: write_atomic(out / name, data, overwrite=True) for name, data in files.items()}
    except OSError as exc:
        raise ReportError(f"cannot write report in {str(out)!r}: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    """Load, compare, render, write. Prints the two report paths; 0 even when the verdict is FAIL."""
    from harness.analysis.compare import Tolerances, compare_results
    from harness.analysis.history import load_history
    from harness.cli.sources import load_baseline, load_sources
    from harness.errors import CompareError

    if args.allow_hardware_change and not args.baseline:
        raise CompareError("--allow-hardware-change needs --baseline DIR (the results to compare against)")
    from harness.render.html import report_html
    from harness.render.markdown import report_markdown
    from harness.render.report import build_report

    results, sources = load_sources(args.results)
    baseline = baseline_sources = None
    if args.baseline:
        baseline, baseline_sources = load_baseline(args.baseline, sources)
    comparison = compare_results(
        results,
        reference=args.reference,
        tolerances=Tolerances(margin_pp=args.margin_pp),
        sources=sources,
        baseline=baseline,
        baseline_sources=baseline_sources,
        allow_hardware_change=args.allow_hardware_change,
    )
    history = load_history(args.history) if args.history else None
    out = prepare_output_dir(args.output)
    report = build_report(results, comparison, history=history, sources=sources, title=args.title)
    images = {fig.name: f"{PLOTS_DIR}/{fig.name}.png" for fig in report.figures}
    files = {images[fig.name]: fig.png for fig in report.figures}
    files["report.md"] = report_markdown(report, images).encode("utf-8")
    files["report.html"] = report_html(report).encode("utf-8")
    written = write_files(out, files)
    log.info("report verdict %s for %d results", report.verdict, len(results))
    print(written["report.md"])
    print(written["report.html"])
    return 0
