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
    _add_regression_arguments(parser)


def _add_regression_arguments(parser: argparse.ArgumentParser) -> None:
    """--baseline and what goes with it: gates, noise floors, confirm."""
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
    parser.add_argument(
        "--noise-floor",
        action="append",
        default=None,
        metavar="FILE",
        help="a noise.json (A/A spread measured with tfparity run --repeats R), repeatable; every noise.json "
        "under RESULTS and --baseline is used too; speed and memory decisions use sigma = max(observed, floor)",
    )
    parser.add_argument(
        "--confirm",
        type=types.positive_int,
        default=None,
        metavar="N",
        help="with --baseline: before failing on a speed or memory regression, run N more runs of each "
        "suspected group with the current code (same backend, interleaved) into a new suite directory next "
        "to the first RESULTS, and decide on all runs pooled; exit 1 only if the regression persists",
    )
    parser.add_argument(
        "--data-dir", default=None, help="with --confirm: dataset directory (default: the one the suite recorded)"
    )


def _gate(text: str) -> object:
    from harness.analysis.gates import parse_gate

    return types.from_parser(parse_gate)(text)


def run(args: argparse.Namespace) -> int:
    from harness.analysis.checks import Comparison
    from harness.analysis.compare import Tolerances, compare_results
    from harness.analysis.gates import check_unique
    from harness.analysis.noise import load_noise, noise_files
    from harness.cli.sources import load_baseline, load_sources
    from harness.errors import CompareError
    from harness.render.text import comparison_json, comparison_text
    from harness.store.results import RunResult

    if args.gate and not args.baseline:
        raise CompareError("--gate needs --baseline DIR (the results to compare against)")
    if args.allow_hardware_change and not args.baseline:
        raise CompareError("--allow-hardware-change needs --baseline DIR (the results to compare against)")
    if args.confirm and not args.baseline:
        raise CompareError("--confirm needs --baseline DIR: it re-runs suspected regressions against a baseline")
    gates = check_unique(args.gate) if args.gate else None
    results, sources = load_sources(args.results, args.label)
    baseline = baseline_sources = None
    if args.baseline:
        baseline, baseline_sources = load_baseline(args.baseline, sources)
    floors = load_noise(
        [*(f for t in [*args.results, *([args.baseline] if args.baseline else [])] for f in noise_files(t)),
         *(args.noise_floor or [])]
    )  # fmt: skip

    def decide(current: list[RunResult], current_sources: list[str]) -> Comparison:
        return compare_results(
            current,
            reference=args.reference,
            sources=current_sources,
            tolerances=Tolerances(
                margin_pp=args.margin_pp, curve_tol_pp=args.curve_tol_pp, replica_loss_tol_rel=args.replica_loss_tol
            ),
            baseline=baseline,
            baseline_sources=baseline_sources,
            gates=gates,
            allow_hardware_change=args.allow_hardware_change,
            floors=floors,
        )

    comparison = decide(results, sources)
    if args.confirm:
        from harness.cli.confirm import confirm

        comparison = confirm(comparison, results, sources, runs=args.confirm, targets=args.results,
                             data_dir=args.data_dir, decide=decide)  # fmt: skip
    print(comparison_json(comparison) if args.json else comparison_text(comparison), end="")
    return 1 if comparison.verdict.value == "FAIL" else 0
