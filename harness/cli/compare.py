"""``tfparity compare``: do the paths agree? Exit 0 PASS/WARN, 1 FAIL or regression, 2 user error."""

from __future__ import annotations

import argparse

from harness.analysis.replicas import DEFAULT_REPLICA_LOSS_TOL_REL
from harness.cli import types

HELP = "decide whether paths agree (exit 1 on FAIL or regression)"
DEFAULT_MARGIN_PP = 1.0
DEFAULT_CURVE_TOL_PP = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "results",
        nargs="+",
        metavar="RESULTS",
        help="result directories or files; each argument is one source (e.g. local vs docker)",
    )
    parser.add_argument(
        "--reference",
        default=None,
        help="group to compare against (a group label or path name, e.g. cpu-fp32); "
        "default: the cpu-fp32 path without XLA",
    )
    parser.add_argument(
        "--margin-pp",
        type=types.margin_pp,
        default=DEFAULT_MARGIN_PP,
        help="equivalence margin for accuracy in percentage points (default %(default)s)",
    )
    parser.add_argument(
        "--curve-tol-pp",
        type=types.margin_pp,
        default=DEFAULT_CURVE_TOL_PP,
        help="per-epoch accuracy curve tolerance in percentage points (default %(default)s)",
    )
    parser.add_argument(
        "--replica-loss-tol",
        type=types.positive_float,
        default=DEFAULT_REPLICA_LOSS_TOL_REL,
        metavar="REL",
        help="N replicas vs one device: relative tolerance on the first epoch's losses (default %(default)s)",
    )
    parser.add_argument(
        "--label",
        action="append",
        default=None,
        metavar="NAME",
        help="name of each RESULTS source, in order (default: backend or directory name)",
    )
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.add_argument(
        "--baseline", default=None, metavar="DIR", help="baseline results: report regressions outside run-to-run noise"
    )
    parser.add_argument(
        "--allow-hardware-change",
        action="store_true",
        help="with --baseline: compare GPU groups whose baseline ran on other GPU models or another driver "
        "(refused by default: speed and memory do not carry across GPUs); a WARN says what changed",
    )
    parser.add_argument(
        "--gate",
        action="append",
        default=None,
        metavar="SPEC",
        type=_gate,
        help="regression gate, repeatable, e.g. throughput:-5%% or test_accuracy:-0.5pp "
        "(metrics: throughput, step_time_p50, peak_rss, gpu_peak_mem, compile_time in %%; "
        "test_accuracy, val_accuracy in pp); default with --baseline: "
        "throughput:-5%% and test_accuracy:-<margin>pp",
    )


def _gate(text: str) -> object:
    from harness.analysis.regress import parse_gate

    return types.from_parser(parse_gate)(text)


def run(args: argparse.Namespace) -> int:
    from harness.analysis.compare import Tolerances, compare_results
    from harness.analysis.regress import check_unique
    from harness.cli.sources import load_baseline, load_sources
    from harness.errors import CompareError
    from harness.render.text import comparison_json, comparison_text

    if args.gate and not args.baseline:
        raise CompareError("--gate needs --baseline DIR (the results to compare against)")
    if args.allow_hardware_change and not args.baseline:
        raise CompareError("--allow-hardware-change needs --baseline DIR (the results to compare against)")
    gates = check_unique(args.gate) if args.gate else None
    results, sources = load_sources(args.results, args.label)
    baseline = baseline_sources = None
    if args.baseline:
        baseline, baseline_sources = load_baseline(args.baseline, sources)
    comparison = compare_results(
        results,
        reference=args.reference,
        sources=sources,
        tolerances=Tolerances(
            margin_pp=args.margin_pp, curve_tol_pp=args.curve_tol_pp, replica_loss_tol_rel=args.replica_loss_tol
        ),
        baseline=baseline,
        baseline_sources=baseline_sources,
        gates=gates,
        allow_hardware_change=args.allow_hardware_change,
    )
    print(comparison_json(comparison) if args.json else comparison_text(comparison), end="")
    return 1 if comparison.verdict.value == "FAIL" else 0
