"""``tfparity run``: plan the runs, check the data and the backend, run the suite, print the summary."""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path
from typing import Any

from harness.cli import benchmarks, types
from harness.errors import ConfigError, RunInterrupted
from harness.spec import names
from harness.spec.presets import PRESETS, apply_preset
from harness.spec.run_spec import PathSpec, RunSpec
from harness.spec.validate import parse_on_off

HELP = "run one benchmark or a suite"
DESCRIPTION = "Run one benchmark or a suite; each run in its own process or container, one result JSON per run."


def add_arguments(p: argparse.ArgumentParser) -> None:
    _what(p.add_argument_group("what to run"))
    _hyperparameters(p.add_argument_group("hyperparameters (defaults: the seed script's)"))
    _path(p.add_argument_group("path (device x precision x XLA) and execution"))
    _where(p.add_argument_group("where and how"))


Group = argparse._ArgumentGroup


def _what(what: Group) -> None:
    what.add_argument(
        "--model",
        "--benchmark",
        dest="model",
        action="append",
        metavar="NAME",
        help=f"benchmark (repeatable): {', '.join(names.BENCHMARKS)}, an entry-point plugin's name, "
        "or a plugin: package.module:NAME or path/to/file.py:NAME",
    )
    what.add_argument("--suite", help="named suite: seed, paths, bn (see 'tfparity list')")
    what.add_argument(
        "--dataset",
        action="append",
        metavar="NAME",
        help=f"dataset (repeatable; default the benchmark's, mnist-5k for the built-ins): "
        f"{', '.join(names.DATASETS)}, or npz:PATH (arrays x_train, y_train, x_test, y_test[, x_val, y_val])",
    )
    what.add_argument("--data-dir", help="dataset directory (default $TFPARITY_DATA_DIR or ./data)")
    what.add_argument(
        "--mode",
        choices=names.MODES,
        help="train (default) or probe: one fixed batch's activations, loss and gradients "
        "against a float64 reference (for tfparity compare's numerics check)",
    )
    what.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        help="seed: model.fit on numpy arrays exactly like the seed script; "
        "fast: the measured fastest loop for the same experiment (see README)",
    )


def _hyperparameters(hp: Group) -> None:
    hp.add_argument("--epochs", type=types.positive_int)
    hp.add_argument("--batch-size", type=types.positive_int)
    hp.add_argument("--learning-rate", type=types.positive_float)
    hp.add_argument("--dropout-rate", type=float)
    hp.add_argument("--validation-split", type=float)
    hp.add_argument(
        "--max-train-samples", type=types.positive_int, help="use only the first N training samples (quick runs)"
    )
    seeds = hp.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=types.non_negative_int, help="one seed (default 0)")
    seeds.add_argument("--seeds", type=types.positive_int, metavar="N", help="repeat with seeds 0..N-1")


def _path(path: Group) -> None:
    path.add_argument("--device", default="cpu", help=f"{' | '.join(names.DEVICES)} (default cpu)")
    path.add_argument("--precision", default="fp32", help=f"{' | '.join(names.PRECISIONS)} (default fp32)")
    path.add_argument("--mixed-policy", help=f"override the mixed policy: {' | '.join(names.MIXED_POLICIES)}")
    path.add_argument("--xla", help="on | off (Keras jit_compile; default off, on with --preset fast)")
    path.add_argument("--deterministic", help="on | off (default: on, except off for XLA runs)")
    path.add_argument("--steps-per-execution", type=types.positive_int)
    path.add_argument("--input", help=f"{' | '.join(names.INPUTS)} (default tfdata)")
    path.add_argument(
        "--loop",
        help=f"{' | '.join(names.LOOPS)}: keras Model.fit (default) or the compiled "
        "multi-step loop of harness/worker/fastloop.py (same train_step and data order)",
    )
    path.add_argument(
        "--warmup-steps",
        type=types.non_negative_int,
        help="steps excluded from steady-state throughput (default: the first epoch)",
    )


def _where(ex: Group) -> None:
    ex.add_argument("--backend", default="local", help=f"{' | '.join(names.BACKENDS)} (default local)")
    ex.add_argument("--results-dir", default="results", help="parent of the suite directory (default ./results)")
    ex.add_argument("--resume", metavar="DIR", help="finish an interrupted suite directory")
    ex.add_argument("--timeout", type=types.positive_float, metavar="SECONDS", help="per-run timeout")
    ex.add_argument("--rebuild", action="store_true", help="docker: rebuild the image first")
    ex.add_argument("--memory-limit", help="docker: container memory limit, e.g. 2g")
    ex.add_argument("--inject-fault", choices=names.FAULTS, help=argparse.SUPPRESS)


def spec_from_args(args: argparse.Namespace) -> RunSpec:
    """The base RunSpec from flags (model/dataset/seed vary per suite run).

    Order: defaults, then the preset (execution settings, XLA, loop), then every explicit flag.
    """
    xla = parse_on_off("--xla", args.xla) if args.xla is not None else None
    spec = RunSpec(
        path=PathSpec(device=args.device, precision=args.precision, xla=bool(xla), mixed_policy=args.mixed_policy)
    )
    if args.preset:
        spec = apply_preset(args.preset, spec)
    flags = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "dropout_rate": args.dropout_rate,
        "validation_split": args.validation_split,
        "max_train_samples": args.max_train_samples,
        "steps_per_execution": args.steps_per_execution,
        "input": args.input,
        "loop": args.loop,
        "warmup_steps": args.warmup_steps,
        "inject_fault": args.inject_fault,
        "mode": args.mode,
    }
    explicit: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    if xla is not None:
        explicit["path"] = dataclasses.replace(spec.path, xla=xla)
    if args.deterministic is not None:
        explicit["deterministic"] = parse_on_off("--deterministic", args.deterministic)
    return spec.replace(**explicit)


EXPERIMENT_FLAGS = ("epochs", "batch_size", "learning_rate", "validation_split")


def plan_runs(args: argparse.Namespace) -> tuple[list[RunSpec], str, dict[str, benchmarks.Entry]]:
    """The planned specs, the suite's name and the definition of each benchmark (plugins imported here)."""
    from harness.spec.suites import SuiteSpec, get_suite

    if not args.model and not args.suite:
        raise ConfigError("run needs --model NAME or --suite NAME (see 'tfparity list')")
    if args.model and args.suite:
        raise ConfigError("give either --model or --suite, not both")
    base = spec_from_args(args)
    if args.suite:
        suite = get_suite(args.suite, device=base.path.device, mixed_policy=base.path.mixed_policy)
        entries = benchmarks.resolve(list(suite.benchmarks))
    else:
        entries = benchmarks.resolve(args.model)
        suite = SuiteSpec("run", tuple(entries))
    datasets, files = benchmarks.dataset_choices(args.dataset or [benchmarks.default_dataset(entries)])
    seeds = list(range(args.seeds)) if args.seeds else [args.seed if args.seed is not None else 0]
    specs = suite.expand(base, seeds, datasets, sources=benchmarks.sources(entries), files=files)
    explicit = {flag for flag in EXPERIMENT_FLAGS if getattr(args, flag) is not None}
    return benchmarks.with_defaults(specs, entries, explicit), suite.name, entries


def check_data(specs: list[RunSpec], data_dir: str | None) -> dict[benchmarks.DataKey, benchmarks.DataFacts]:
    """Load every dataset once up front: missing/corrupt data is a user error before any run starts."""
    from harness import data

    facts = {}
    for name, file in dict.fromkeys((s.dataset, s.dataset_file) for s in specs):
        loaded = data.load(name, Path(data_dir) if data_dir else None, file=file)
        facts[(name, file)] = benchmarks.DataFacts(loaded.info.sha256, loaded.sample_shape, loaded.n_classes)
    return facts


def check_plan(
    specs: list[RunSpec], entries: dict[str, benchmarks.Entry], data_dir: str | None, resumed: Path | None, meta: Any
) -> dict[str, str]:
    """Data loads (unchanged, for a resumed suite), each benchmark accepts its data, each plugin's model
    builds: or one line, exit 2. Returns each dataset's fingerprint (for the manifest)."""
    from harness.orchestrate import preflight

    facts = check_data(specs, data_dir)
    fingerprints = {name: f.sha256 for (name, _file), f in facts.items()}
    if resumed is not None:
        _check_data_unchanged(meta.get("datasets"), fingerprints, resumed)
    benchmarks.check_accepts(specs, entries, facts)
    shapes = {key: (f.sample_shape, f.n_classes) for key, f in facts.items()}
    preflight.check_models(preflight.requests_for(specs, shapes))
    return fingerprints


def make_backend(args: argparse.Namespace, device: str) -> Any:
    from harness.orchestrate.backends import get_backend

    options: dict[str, Any] = {"data_dir": args.data_dir}
    if args.backend == "docker":
        options.update(device=device, rebuild=args.rebuild, memory_limit=args.memory_limit)
    return get_backend(args.backend, **options)


def _resume_plan(args: argparse.Namespace) -> tuple[list[RunSpec], Path, dict[str, Any]]:
    from harness.store.layout import read_manifest

    if any(getattr(args, a) for a in ("model", "suite", "dataset")):
        raise ConfigError("--resume takes the plan from the suite directory; drop --model/--suite/--dataset")
    out_dir = Path(args.resume)
    specs, meta = read_manifest(out_dir)
    args.backend = args.backend if args.backend != "local" else meta.get("backend", "local")
    if args.data_dir is None:
        args.data_dir = meta.get("data_dir")
    return specs, out_dir, meta


def _check_data_unchanged(recorded: object, fingerprints: dict[str, str], out_dir: Path) -> None:
    """A resumed suite must train on the data it started with (an npz file may have been edited since)."""
    if not isinstance(recorded, dict):
        return  # a suite started before fingerprints were recorded
    for name, sha in fingerprints.items():
        if recorded.get(name, sha) != sha:
            raise ConfigError(
                f"dataset {name!r} changed since suite {str(out_dir)!r} started (fingerprint "
                f"{str(recorded[name])[:12]} -> {sha[:12]}); its results would mix two datasets: start a new suite"
            )


def _new_suite(args: argparse.Namespace, specs: list[RunSpec], suite_name: str, meta: dict[str, Any]) -> Path:
    from harness.store.layout import new_suite_dir, write_manifest

    out_dir = new_suite_dir(Path(args.results_dir), suite_name)
    try:
        meta = {"suite": suite_name, "backend": args.backend, "data_dir": args.data_dir, **meta}
        write_manifest(out_dir, specs, meta)
    except BaseException as exc:
        # Without its manifest the directory is neither a suite nor resumable: leave nothing behind
        # (disk full, Ctrl-C right here).
        shutil.rmtree(out_dir, ignore_errors=True)
        if isinstance(exc, OSError):
            raise ConfigError(
                f"cannot write the suite manifest under {str(args.results_dir)!r}: {exc.strerror or exc}"
            ) from None
        raise
    return out_dir


def run(args: argparse.Namespace) -> int:
    from harness.cli.progress import ProgressPrinter
    from harness.orchestrate import runner
    from harness.render.text import run_summary
    from harness.store.protocol import signal_name

    meta: dict[str, Any] = {}
    if args.resume:
        specs, out_dir, meta = _resume_plan(args)
        entries = benchmarks.entries_for(specs)
        benchmarks.check_unchanged(meta.get("benchmarks"), entries, out_dir)
    else:
        specs, suite_name, entries = plan_runs(args)
    fingerprints = check_plan(specs, entries, args.data_dir, out_dir if args.resume else None, meta)
    backend = make_backend(args, specs[0].path.device)
    backend.prepare(specs)
    if not args.resume:
        recorded = {"benchmarks": benchmarks.definitions(entries), "datasets": fingerprints}
        out_dir = _new_suite(args, specs, suite_name, recorded)
    print(f"tfparity: {len(specs)} run(s) -> {out_dir}", file=sys.stderr)
    try:
        results = runner.run_specs(specs, backend, out_dir, on_event=ProgressPrinter(), timeout_s=args.timeout)
    except RunInterrupted as exc:
        print(
            f"tfparity: interrupted by {signal_name(exc.signum)}; finished results are kept in {out_dir}; "
            f"resume with: tfparity run --resume {out_dir}",
            file=sys.stderr,
        )
        return exc.exit_code
    print(run_summary(results))
    print(f"\nresults: {out_dir}")
    return 1 if any(not r.ok for r in results) else 0
