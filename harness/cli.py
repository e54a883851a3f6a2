"""``tfparity`` command line: run, list, show, data, compare, report, history.

User errors (any :class:`harness.errors.UserError`, and argparse's own) are printed as exactly one
line on stderr with exit code 2, no traceback. SIGINT/SIGTERM during ``run`` stop the current run,
record it as ``interrupted`` and exit 130/143; finished results are untouched.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from harness import __version__
from harness.config import (
    BENCHMARKS,
    DATASETS,
    DEVICES,
    INPUTS,
    LOOPS,
    MIXED_POLICIES,
    PRECISIONS,
    ConfigError,
    PathSpec,
    RunSpec,
    parse_on_off,
)
from harness.errors import UserError
from harness.presets import PRESET_LOOP, PRESET_XLA, PRESETS, apply_preset

log = logging.getLogger(__name__)

EXIT_USER_ERROR = 2


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse prints usage + error on two lines; the house rule is one line, exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"tfparity: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_USER_ERROR)


def _number_type(convert: type, minimum: float, *, strict: bool, what: str) -> Any:
    """An argparse type: ``convert(text)`` that must be finite and > (strict) or >= minimum."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (value > minimum if strict else value >= minimum) or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _number_type(int, 0, strict=True, what="a positive integer")
_non_negative_int = _number_type(int, 0, strict=False, what="an integer >= 0")
_positive_float = _number_type(float, 0.0, strict=True, what="a positive number")


# --- run --------------------------------------------------------------------------------------


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    what = p.add_argument_group("what to run")
    what.add_argument("--model", action="append", metavar="NAME",
                      help=f"benchmark model (repeatable): {', '.join(BENCHMARKS)}")
    what.add_argument("--suite", help="named suite: seed, paths, bn (see 'tfparity list')")
    what.add_argument("--dataset", action="append", metavar="NAME",
                      help=f"dataset (repeatable; default mnist-5k): {', '.join(DATASETS)}")
    what.add_argument("--data-dir", help="dataset directory (default $TFPARITY_DATA_DIR or ./data)")
    what.add_argument("--mode", choices=("train", "probe"),
                      help="train (default) or probe: one fixed batch's activations, loss and gradients "
                           "against a float64 reference (for tfparity compare's numerics check)")
    what.add_argument("--preset", choices=tuple(PRESETS),
                      help="seed: model.fit on numpy arrays exactly like the seed script; "
                           "fast: the measured fastest loop for the same experiment (see README)")
    hp = p.add_argument_group("hyperparameters (defaults: the seed script's)")
    hp.add_argument("--epochs", type=_positive_int)
    hp.add_argument("--batch-size", type=_positive_int)
    hp.add_argument("--learning-rate", type=_positive_float)
    hp.add_argument("--dropout-rate", type=float)
    hp.add_argument("--validation-split", type=float)
    hp.add_argument("--max-train-samples", type=_positive_int,
                    help="use only the first N training samples (quick runs)")
    seeds = hp.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=_non_negative_int, help="one seed (default 0)")
    seeds.add_argument("--seeds", type=_positive_int, metavar="N", help="repeat with seeds 0..N-1")
    path = p.add_argument_group("path (device x precision x XLA) and execution")
    path.add_argument("--device", default="cpu", help=f"{' | '.join(DEVICES)} (default cpu)")
    path.add_argument("--precision", default="fp32", help=f"{' | '.join(PRECISIONS)} (default fp32)")
    path.add_argument("--mixed-policy", help=f"override the mixed policy: {' | '.join(MIXED_POLICIES)}")
    path.add_argument("--xla", help="on | off (Keras jit_compile; default off, on with --preset fast)")
    path.add_argument("--deterministic", help="on | off (default: on, except off for XLA runs)")
    path.add_argument("--steps-per-execution", type=_positive_int)
    path.add_argument("--input", help=f"{' | '.join(INPUTS)} (default tfdata)")
    path.add_argument("--loop", help=f"{' | '.join(LOOPS)}: keras Model.fit (default) or the compiled multi-step "
                                     "loop of harness/fastloop.py (same train_step and data order)")
    path.add_argument("--warmup-steps", type=_non_negative_int,
                      help="steps excluded from steady-state throughput (default: the first epoch)")
    ex = p.add_argument_group("where and how")
    ex.add_argument("--backend", default="local", help="local | docker (default local)")
    ex.add_argument("--results-dir", default="results", help="parent of the suite directory (default ./results)")
    ex.add_argument("--resume", metavar="DIR", help="finish an interrupted suite directory")
    ex.add_argument("--timeout", type=_positive_float, metavar="SECONDS", help="per-run timeout")
    ex.add_argument("--rebuild", action="store_true", help="docker: rebuild the image first")
    ex.add_argument("--memory-limit", help="docker: container memory limit, e.g. 2g")
    ex.add_argument("--inject-fault", choices=("raise", "crash", "nan", "oom"), help=argparse.SUPPRESS)


def spec_from_args(args: argparse.Namespace) -> RunSpec:
    """The base RunSpec from flags (model/dataset/seed vary per suite run).

    Order: defaults, then the preset (execution settings, XLA, loop), then every explicit flag.
    """
    xla = parse_on_off("--xla", args.xla) if args.xla is not None else None
    spec = RunSpec(path=PathSpec(device=args.device, precision=args.precision, xla=bool(xla),
                                 mixed_policy=args.mixed_policy))
    if args.preset:
        spec = apply_preset(args.preset, spec)
    flags = {
        "epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
        "dropout_rate": args.dropout_rate, "validation_split": args.validation_split,
        "max_train_samples": args.max_train_samples, "steps_per_execution": args.steps_per_execution,
        "input": args.input, "loop": args.loop, "warmup_steps": args.warmup_steps,
        "inject_fault": args.inject_fault, "mode": args.mode,
    }
    explicit: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    if xla is not None:
        explicit["path"] = dataclasses.replace(spec.path, xla=xla)
    if args.deterministic is not None:
        explicit["deterministic"] = parse_on_off("--deterministic", args.deterministic)
    return spec.replace(**explicit)


def plan_runs(args: argparse.Namespace) -> tuple[list[RunSpec], str]:
    from harness.suites import SuiteSpec, get_suite

    if not args.model and not args.suite:
        raise ConfigError("run needs --model NAME or --suite NAME (see 'tfparity list')")
    if args.model and args.suite:
        raise ConfigError("give either --model or --suite, not both")
    base = spec_from_args(args)
    for model in args.model or []:
        RunSpec(benchmark=model)  # validates the name with the list of valid ones
    datasets = args.dataset or [base.dataset]
    for name in datasets:
        RunSpec(dataset=name)
    if args.suite:
        suite = get_suite(args.suite, device=base.path.device, mixed_policy=base.path.mixed_policy)
    else:
        suite = SuiteSpec("run", tuple(dict.fromkeys(args.model)))
    seeds = list(range(args.seeds)) if args.seeds else [args.seed if args.seed is not None else 0]
    return suite.expand(base, seeds, datasets), suite.name


def check_data(specs: list[RunSpec], data_dir: str | None) -> dict[str, str]:
    """Load every dataset once up front: missing/corrupt data is a user error before any run starts."""
    from harness import data

    fingerprints = {}
    for name in dict.fromkeys(s.dataset for s in specs):
        ds = data.load(name, Path(data_dir) if data_dir else None)
        fingerprints[name] = ds.info.sha256
    return fingerprints


def make_backend(args: argparse.Namespace, device: str) -> Any:
    from harness.backends import get_backend

    options: dict[str, Any] = {"data_dir": args.data_dir}
    if args.backend == "docker":
        options.update(device=device, rebuild=args.rebuild, memory_limit=args.memory_limit)
    return get_backend(args.backend, **options)


class ProgressPrinter:
    """Renders runner events on stderr: one line per run, epoch updates in place on a terminal."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()

    def __call__(self, event: Any) -> None:
        prefix = f"[{event.index}/{event.total}] {event.spec.run_id}"
        if event.kind == "skip":
            self._line(f"{prefix}: already {event.result.status}, skipped")
        elif event.kind == "start":
            self._line(f"{prefix}: started{_eta(event.eta_s)}", final=not self.tty)
        elif event.kind == "progress":
            p = event.progress
            self._line(f"{prefix}: epoch {p.epoch}/{p.epochs}{_eta(event.eta_s)}", final=not self.tty)
        elif event.kind == "finish":
            r = event.result
            if r.ok:
                what = f"ok, test accuracy {r.test_accuracy:.4f}" if r.test_accuracy is not None else "ok"
                if r.timing and r.timing.steady_throughput_samples_per_s:
                    what += f", {r.timing.steady_throughput_samples_per_s:,.0f} samples/s"
            else:
                what = f"{r.status.upper()}: {r.error}"
            self._line(f"{prefix}: {what}{_eta(event.eta_s) if event.eta_s else ''}")

    def _line(self, text: str, final: bool = True) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(round(seconds)), 60)
    return f" (ETA {minutes}m{secs:02d}s)" if minutes else f" (ETA {secs}s)"


def cmd_run(args: argparse.Namespace) -> int:
    from harness import runner
    from harness.backends.base import RunInterrupted
    from harness.summary import render_summary

    if args.resume:
        if any(getattr(args, a) for a in ("model", "suite", "dataset")):
            raise ConfigError("--resume takes the plan from the suite directory; drop --model/--suite/--dataset")
        out_dir = Path(args.resume)
        specs, meta = runner.read_manifest(out_dir)
        args.backend = args.backend if args.backend != "local" else meta.get("backend", "local")
        if args.data_dir is None:
            args.data_dir = meta.get("data_dir")
    else:
        specs, suite_name = plan_runs(args)
    check_data(specs, args.data_dir)
    backend = make_backend(args, specs[0].path.device)
    backend.prepare(specs)
    if not args.resume:
        out_dir = runner.new_suite_dir(Path(args.results_dir), suite_name)
        try:
            runner.write_manifest(out_dir, specs, {"suite": suite_name, "backend": args.backend,
                                                   "data_dir": args.data_dir})
        except BaseException as exc:
            # Without its manifest the directory is neither a suite nor resumable: leave nothing behind
            # (disk full, Ctrl-C right here).
            shutil.rmtree(out_dir, ignore_errors=True)
            if isinstance(exc, OSError):
                raise ConfigError(f"cannot write the suite manifest under {str(args.results_dir)!r}: "
                                  f"{exc.strerror or exc}") from None
            raise
    print(f"tfparity: {len(specs)} run(s) -> {out_dir}", file=sys.stderr)
    try:
        results = runner.run_specs(specs, backend, out_dir, on_event=ProgressPrinter(), timeout_s=args.timeout)
    except RunInterrupted as exc:
        print(f"tfparity: interrupted by {signal.Signals(exc.signum).name}; finished results are kept in {out_dir}; "
              f"resume with: tfparity run --resume {out_dir}", file=sys.stderr)
        return exc.exit_code
    print(render_summary(results))
    print(f"\nresults: {out_dir}")
    failed = sum(1 for r in results if not r.ok)
    return 1 if failed else 0


# --- list, show, data ------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from harness import data
    from harness.models import DESCRIPTIONS
    from harness.suites import SUITE_DESCRIPTIONS

    print("models:")
    for name in BENCHMARKS:
        print(f"  {name:<18} {DESCRIPTIONS[name]}")
    print("datasets:")
    for name, desc in data.describe_datasets():
        print(f"  {name:<18} {desc}")
    print("suites:")
    for name, desc in SUITE_DESCRIPTIONS.items():
        print(f"  {name:<18} {desc}")
    print("paths: --device {cpu,gpu} x --precision {fp32,mixed} x --xla {off,on}")
    print("presets:")
    for name, values in PRESETS.items():
        settings = {**values, "xla": "on" if PRESET_XLA.get(name) else "as given", "loop": PRESET_LOOP.get(name, "fit")}
        print(f"  {name:<18} " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    return 0


def render_result(result: Any) -> str:
    """Human summary of one result file."""
    spec = result.run_spec
    lines = [
        f"run        {result.run_id}",
        f"status     {result.status}" + (f": {result.error}" if result.error else ""),
        f"benchmark  {spec.benchmark} on {spec.dataset}, path {spec.path.name}, seed {spec.seed}, "
        f"{spec.epochs} epochs, batch {spec.batch_size}, input {spec.input}, "
        f"steps/execution {spec.steps_per_execution}, loop {spec.loop}",
        f"when       {result.started_utc} -> {result.finished_utc}",
    ]
    if result.dataset:
        d = result.dataset
        lines.append(f"dataset    {d.name} ({d.source}){' [SYNTHETIC]' if d.synthetic else ''}: "
                     f"{d.n_train - d.n_val} train / {d.n_val} val / {d.n_test} test, sha256 {d.sha256[:16]}…")
    if result.epochs:
        lines.append("epoch  train loss  train acc  val loss  val acc  time s")
        for e in result.epochs:
            val_loss = "-" if e.val_loss is None else f"{e.val_loss:.4f}"
            val_acc = "-" if e.val_accuracy is None else f"{e.val_accuracy:.4f}"
            lines.append(f"{e.epoch:>5}  {e.train_loss:>10.4f}  {e.train_accuracy:>9.4f}  {val_loss:>8}  "
                         f"{val_acc:>7}  {e.epoch_time_s:>6.2f}")
    if result.test_accuracy is not None:
        gap = "-" if result.generalization_gap is None else f"{result.generalization_gap:+.4f}"
        lines.append(f"test       accuracy {result.test_accuracy:.4f}, loss {result.test_loss:.4f}; "
                     f"gap (train-val) {gap}; params {result.params:,}")
    if result.timing:
        t = result.timing
        thr = "-" if t.steady_throughput_samples_per_s is None else f"{t.steady_throughput_samples_per_s:,.0f}"
        p = "-" if t.step_time_ms_p50 is None else (
            f"{t.step_time_ms_p50:.3f}/{t.step_time_ms_p90:.3f}/{t.step_time_ms_p99:.3f}")
        lines.append(f"speed      steady {thr} samples/s; step ms p50/p90/p99 {p}; compile {t.compile_time_s:.2f} s; "
                     f"warm-up {t.warmup_steps} steps {t.warmup_time_s:.2f} s; train {t.train_time_s:.1f} s; "
                     f"total {t.total_wall_time_s:.1f} s")
    if result.memory:
        m = result.memory
        tf_peak = "-" if m.tf_peak_mb is None else f"{m.tf_peak_mb:.0f} MB"
        lines.append(f"memory     peak RSS {m.peak_rss_mb:.0f} MB (getrusage {m.ru_maxrss_mb:.0f} MB); "
                     f"TF allocator peak on {m.tf_device} {tf_peak}")
    if result.evidence:
        ev = result.evidence
        lines.append(f"evidence   variables on {ev.variable_device}; policy {ev.dtype_policy}; "
                     f"jit_compile {ev.jit_compile}; deterministic ops {ev.deterministic_ops}")
    env = result.environment
    if env:
        lines.append(f"env        TF {env.get('tensorflow_version')} ({env.get('backend')}"
                     + (f", image {env.get('container_image')} {str(env.get('image_id') or '')[:19]}"
                        if env.get("container_image") else "")
                     + f"), {env.get('cpu_model')} x{env.get('cpu_count')}, commit {env.get('git_commit')}")
    if result.log_tail and not result.ok:
        lines.append("log tail:")
        lines.extend(f"  {line}" for line in result.log_tail[-15:])
    return "\n".join(lines)


def cmd_show(args: argparse.Namespace) -> int:
    from harness.results import MANIFEST_NAMES, ResultError, load_result, result_files

    paths = []
    for target in args.result:
        if Path(target).name in MANIFEST_NAMES and Path(target).is_file():
            raise ResultError(f"{target!r} is a manifest, not a run result; pass a result file or the suite directory")
        paths.extend(result_files(target))
    for i, path in enumerate(paths):
        if i:
            print()
        print(render_result(load_result(path)))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from harness import data

    for name in args.name:
        path = data.prepare(name, Path(args.data_dir) if args.data_dir else None)
        print(f"{name}: {path}")
    return 0


# --- entry point -----------------------------------------------------------------------------

# Subcommands implemented in their own modules: name -> (module, help).
DELEGATED = {
    "compare": ("harness.compare", "decide whether paths agree (exit 1 on FAIL or regression)"),
    "report": ("harness.report", "write report.md and a self-contained report.html"),
    "history": ("harness.history", "trends over a history directory of nightly results"),
}


def _command_in(argv: list[str] | None) -> str | None:
    """The subcommand named on the command line (the first word that is not a global option)."""
    for word in sys.argv[1:] if argv is None else argv:
        if not word.startswith("-"):
            return word
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser; a delegated subcommand's module is imported only when ``command`` names it
    (or is None): compare/report pull in scipy, seconds that ``run`` must not pay (nor Ctrl-C wait for)."""
    parser = OneLineArgumentParser(prog="tfparity", description="Do TensorFlow's hardware paths agree, and how "
                                                                "fast is each?")
    parser.add_argument("--version", action="version", version=f"tfparity {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: worker output)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineArgumentParser)
    sub.required = True

    p = sub.add_parser("run", help="run one benchmark or a suite", description="Run one benchmark or a suite; "
                       "each run in its own process or container, one result JSON per run.")
    add_run_arguments(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("list", help="list models, datasets, suites and presets")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="human summary of result files")
    p.add_argument("result", nargs="+", help="result JSON file(s) or suite directories")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("data", help="prepare datasets in the data directory (for containers / offline use)")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", parser_class=OneLineArgumentParser)
    data_sub.required = True
    prep = data_sub.add_parser("prepare", help="write the canonical arrays of datasets into the data directory")
    prep.add_argument("name", nargs="+", help=f"dataset: {', '.join(DATASETS)}")
    prep.add_argument("--data-dir", help="default $TFPARITY_DATA_DIR or ./data")
    prep.set_defaults(func=cmd_data)

    for name, (module, help_text) in DELEGATED.items():
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(func=None, module=module)
        if command is not None and command != name:
            continue
        try:
            importlib.import_module(module).add_arguments(p)
        except ImportError as exc:  # a module not built yet must not break the other commands
            log.debug("subcommand %s unavailable: %s", name, exc)
    return parser


_interrupted: list[int] = []


def _raise_interrupt(signum: int, frame: Any) -> None:
    from harness.backends.base import RunInterrupted

    if _interrupted:
        # Already stopping: the cleanup under way (stop the worker/container, record the run as
        # interrupted; bounded by the backend's grace period) must not be cut short by a second
        # Ctrl-C or by make forwarding the signal again. os.write: safe inside a signal handler.
        os.write(2, b"tfparity: still stopping the current run, please wait\n")
        return
    _interrupted.append(signum)
    raise RunInterrupted(signum)


def main(argv: list[str] | None = None) -> int:
    from harness.backends.base import RunInterrupted

    # First thing: building the parser imports compare/report (numpy, scipy), which takes seconds on
    # a busy machine; a Ctrl-C or SIGTERM in that window must give the same one-line exit 130/143,
    # not a KeyboardInterrupt traceback (or a silent death by SIGTERM).
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        # TensorFlow's C++ start-up chatter would break the one-line error contract of this process;
        # workers inherit this unless the user set it.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        parser = build_parser(_command_in(argv))
        args = parser.parse_args(argv)
        level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
        if args.func is None:
            return int(importlib.import_module(args.module).run_cli(args))
        return int(args.func(args))
    except RunInterrupted as exc:  # outside a run (start-up, data check, compare/report)
        print(f"tfparity: interrupted by {signal.Signals(exc.signum).name}", file=sys.stderr)
        return exc.exit_code
    except UserError as exc:
        print(f"tfparity: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # e.g. `tfparity show x.json | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
