"""``tfparity run``: plan the runs, check the data and the backend, run the suite, print the summary."""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path
from typing import Any

from harness.cli import benchmarks, scale
from harness.cli.run_args import DEFAULT_RESULTS_DIR, add_arguments
from harness.errors import ConfigError, RunInterrupted, SuiteStoppedError
from harness.spec.presets import apply_preset
from harness.spec.run_spec import PathSpec, RunSpec
from harness.spec.validate import parse_on_off

HELP = "run one benchmark or a suite"

# Exit codes of `tfparity run` besides 0 (all ok), 2 (bad input, nothing written) and 130/143 (signal):
EXIT_RUNS_FAILED = 1  # the suite ran; at least one run failed (the benchmark's own failure)
EXIT_SUITE_STOPPED = 3  # the machinery or the results directory failed: stopped, resumable
# With --resume, only these flags apply (how and where to run what the suite directory plans);
# every other one would change the plan or where the results go and is refused.
RESUME_FLAGS = {
    "resume": "--resume",
    "retry_failed": "--retry-failed",
    "backend": "--backend",
    "data_dir": "--data-dir",
    "timeout": "--timeout",
    "rebuild": "--rebuild",
    "memory_limit": "--memory-limit",
    "parallel": "--parallel",
    "docker_context": "--docker-context",
    "hosts": "--hosts",
    "gpus": "--gpus",
}
# Where a suite's runs run, recorded in its manifest so that a plain `--resume DIR` (the command the
# harness prints) runs the rest where the suite started: the same GPUs, memory limit, lanes or fleet,
# never silently on this host's defaults. Given again with --resume, a flag replaces what was recorded;
# the lanes (--parallel, --docker-context, --hosts) are replaced as one.
PLACEMENT = ("gpus", "memory_limit", "parallel", "docker_context", "hosts")
LANES = ("parallel", "docker_context", "hosts")
DESCRIPTION = "Run one benchmark or a suite; each run in its own process or container, one result JSON per run."


def spec_from_args(args: argparse.Namespace) -> RunSpec:
    """The base RunSpec from flags (model/dataset/seed vary per suite run).

    Order: defaults, then the preset (execution settings, XLA, loop), then every explicit flag.
    """
    xla = parse_on_off("--xla", args.xla) if args.xla is not None else None
    spec = RunSpec(
        path=PathSpec(
            device=args.device or "cpu",
            precision=args.precision or "fp32",
            xla=bool(xla),
            mixed_policy=args.mixed_policy,
        )
    )
    replicas = (args.replicas or [1])[0]  # the others: plan_runs repeats the plan per replica count
    workers = (args.workers or [1])[0]  # and per worker count
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
        "batch_per_replica": args.batch_per_replica,
    }
    explicit: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    explicit["path"] = dataclasses.replace(
        spec.path, xla=spec.path.xla if xla is None else xla, replicas=replicas, workers=workers
    )
    if args.deterministic is not None:
        explicit["deterministic"] = parse_on_off("--deterministic", args.deterministic)
    if args.sync_bn is not None:
        explicit["sync_batchnorm"] = parse_on_off("--sync-bn", args.sync_bn)
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
    replicas = list(dict.fromkeys(args.replicas or []))
    workers = list(dict.fromkeys(args.workers or []))
    if any(n > 1 for n in workers) and args.backend != "docker":
        # One process per worker, each in its own container sharing the chief's network namespace: the
        # local backend has no such isolation (and would put TF's gRPC servers on the host's network).
        raise ConfigError(f"--workers {max(workers)} runs each worker in its own container: use --backend docker")
    specs = suite.expand(base, seeds, datasets, replicas, workers, sources=benchmarks.sources(entries), files=files)
    explicit = {flag for flag in EXPERIMENT_FLAGS if getattr(args, flag) is not None}
    return with_repeats(benchmarks.with_defaults(specs, entries, explicit), args.repeats or 1), suite.name, entries


def with_repeats(specs: list[RunSpec], repeats: int) -> list[RunSpec]:
    """Every spec ``repeats`` times, interleaved: A B A B ..., never all A then all B (drift hits all alike)."""
    return [spec.replace(repeat=r) for r in range(repeats) for spec in specs]


def check_data(specs: list[RunSpec], data_dir: str | None) -> dict[benchmarks.DataKey, benchmarks.DataFacts]:
    """Load every dataset once up front: missing/corrupt data, or a split with less than one batch in
    its training or validation part, is a user error before any run starts."""
    from harness import data

    facts = {}
    for name, file in dict.fromkeys((s.dataset, s.dataset_file) for s in specs):
        loaded = data.load(name, Path(data_dir) if data_dir else None, file=file)
        facts[(name, file)] = benchmarks.DataFacts(
            loaded.info.sha256, loaded.sample_shape, loaded.n_classes, loaded.info.n_train
        )
    return facts


def check_plan(
    specs: list[RunSpec], entries: dict[str, benchmarks.Entry], data_dir: str | None, resumed: Path | None, meta: Any
) -> dict[str, str]:
    """Data loads (unchanged, for a resumed suite), each benchmark accepts its data, each plugin's model
    builds: or one line, exit 2. Returns each dataset's fingerprint (for the manifest)."""
    from harness.data.split import check_run_split
    from harness.orchestrate import preflight

    facts = check_data(specs, data_dir)
    fingerprints = {name: f.sha256 for (name, _file), f in facts.items()}
    if resumed is not None:
        _check_data_unchanged(meta.get("datasets"), fingerprints, resumed)
    benchmarks.check_accepts(specs, entries, facts)
    for spec in specs:  # after acceptance: a dataset the benchmark cannot take is the first thing to say
        check_run_split(spec, facts[(spec.dataset, spec.dataset_file)].n_train)
    shapes = {key: (f.sample_shape, f.n_classes) for key, f in facts.items()}
    preflight.check_models(preflight.requests_for(specs, shapes))
    return fingerprints


def make_backend(args: argparse.Namespace, device: str) -> Any:
    from harness.orchestrate.backends import get_backend

    options: dict[str, Any] = {"data_dir": args.data_dir}
    if args.gpus is not None and (args.backend != "docker" or device != "gpu"):
        raise ConfigError(
            f"--gpus {args.gpus} selects GPUs for --backend docker --device gpu, got --backend {args.backend} "
            f"--device {device} (the local backend sees the GPUs of CUDA_VISIBLE_DEVICES)"
        )
    if args.backend == "docker":
        options.update(
            device=device, rebuild=args.rebuild, memory_limit=args.memory_limit, gpus=args.gpus, notify=_notice
        )
    return get_backend(args.backend, **options)


def _notice(text: str) -> None:
    """Progress the backend reports while no run is going (e.g. an image build), one line each."""
    print(f"tfparity: {text}", file=sys.stderr, flush=True)


def _refuse_plan_flags(args: argparse.Namespace) -> None:
    """--resume runs what the suite directory planned, where it lives: any flag that would change
    that is refused, not ignored. "Given" means not None (or True): every such flag defaults to None."""
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    given = [
        action.option_strings[0]
        for action in parser._actions
        if action.option_strings and action.dest not in RESUME_FLAGS and _given(getattr(args, action.dest, None))
    ]
    if given:
        raise ConfigError(
            f"--resume takes the plan and the results directory from {args.resume!r}; drop {', '.join(given)} "
            f"(with --resume only {', '.join(RESUME_FLAGS.values())} apply)"
        )


def _given(value: object) -> bool:
    # Identity, not equality: --seed 0 or --dropout-rate 0 are given (0 == False).
    return value is not None and value is not False


def resume_plan(args: argparse.Namespace) -> tuple[list[RunSpec], Path, dict[str, Any]]:
    from harness.store.layout import read_manifest

    _refuse_plan_flags(args)
    out_dir = Path(args.resume)
    specs, meta = read_manifest(out_dir)
    planned = meta.get("backend", "local")
    if args.backend is not None and args.backend != planned:
        raise ConfigError(
            f"--backend {args.backend}: the suite in {str(out_dir)!r} runs on {planned!r}; "
            "drop --backend (a suite's runs all run on one backend)"
        )
    args.backend = planned
    if args.data_dir is None:
        args.data_dir = meta.get("data_dir")
    recorded = meta.get("placement") or {}  # absent: a suite started before placement was recorded
    lanes_given = any(getattr(args, key) for key in LANES)
    for key in PLACEMENT:
        if getattr(args, key) is None and not (key in LANES and lanes_given) and recorded.get(key) is not None:
            setattr(args, key, recorded[key])
    return specs, out_dir, meta


def placement(args: argparse.Namespace) -> dict[str, Any]:
    """The placement flags given to a new suite (see :data:`PLACEMENT`); a hosts file by absolute path."""
    given = {key: getattr(args, key) for key in PLACEMENT if getattr(args, key) is not None}
    if "hosts" in given:
        given["hosts"] = str(Path(given["hosts"]).resolve())
    return given


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
        where = placement(args)
        if where:
            meta["placement"] = where
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
    from harness.orchestrate import lanes, runner
    from harness.render.text import run_summary
    from harness.store.protocol import signal_name

    meta: dict[str, Any] = {}
    if args.resume:
        if args.repeats is not None:
            raise ConfigError("--resume takes the plan (repeats included) from the suite directory; drop --repeats")
        specs, out_dir, meta = resume_plan(args)
        entries = benchmarks.entries_for(specs)
        benchmarks.check_unchanged(meta.get("benchmarks"), entries, out_dir)
    else:
        if args.retry_failed:
            raise ConfigError("--retry-failed re-runs the failed runs of a suite: give it with --resume DIR")
        args.backend = args.backend or "local"
        args.results_dir = args.results_dir or DEFAULT_RESULTS_DIR
        specs, suite_name, entries = plan_runs(args)
    scale.check(args)
    fingerprints = check_plan(specs, entries, args.data_dir, out_dir if args.resume else None, meta)
    backend = make_backend(args, specs[0].path.device)
    backend.prepare(specs)
    hosts = scale.hosts(args, backend) if scale.wanted(args) else None
    if not args.resume:
        recorded = {"benchmarks": benchmarks.definitions(entries), "datasets": fingerprints}
        out_dir = _new_suite(args, specs, suite_name, recorded)
    print(f"tfparity: {len(specs)} run(s) -> {out_dir}", file=sys.stderr)
    options: dict[str, Any] = {"on_event": ProgressPrinter(), "timeout_s": args.timeout}
    try:
        if hosts is not None:
            results = lanes.run_lanes(specs, hosts, out_dir, retry_failed=args.retry_failed, **options)
        else:
            results = runner.run_specs(specs, backend, out_dir, retry_failed=args.retry_failed, **options)
    except RunInterrupted as exc:
        print(
            f"tfparity: interrupted by {signal_name(exc.signum)}; finished results are kept in {out_dir}; "
            f"resume with: tfparity run --resume {out_dir}",
            file=sys.stderr,
        )
        return exc.exit_code
    except SuiteStoppedError as exc:  # the machinery failed, not a benchmark: its own exit code
        print(f"tfparity: error: {exc}", file=sys.stderr)
        return EXIT_SUITE_STOPPED
    print(run_summary(results))
    if any(spec.repeat for spec in specs):
        from harness.analysis.noise import write_noise

        noise = write_noise(out_dir, results)
        if noise is not None:
            print(f"noise floor (A/A spread of the repeats): {noise}")
    print(f"\nresults: {out_dir}")
    return EXIT_RUNS_FAILED if any(not r.ok for r in results) else 0
