"""``tfparity run``: plan the runs, check the data and the backend, run the suite, print the summary."""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path
from typing import Any

from harness.cli import scale, types
from harness.errors import ConfigError, RunInterrupted, SuiteStoppedError
from harness.spec import names
from harness.spec.presets import PRESETS, apply_preset
from harness.spec.run_spec import PathSpec, RunSpec
from harness.spec.validate import parse_on_off

HELP = "run one benchmark or a suite"
DEFAULT_RESULTS_DIR = "results"
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
}
DESCRIPTION = "Run one benchmark or a suite; each run in its own process or container, one result JSON per run."


def add_arguments(p: argparse.ArgumentParser) -> None:
    _what(p.add_argument_group("what to run"))
    _hyperparameters(p.add_argument_group("hyperparameters (defaults: the seed script's)"))
    _path(p.add_argument_group("path (device x precision x XLA x replicas) and execution"))
    _replicas(p.add_argument_group("replicas on one host (tf.distribute.MirroredStrategy)"))
    _where(p.add_argument_group("where and how"))


Group = argparse._ArgumentGroup


def _what(what: Group) -> None:
    what.add_argument(
        "--model", action="append", metavar="NAME", help=f"benchmark model (repeatable): {', '.join(names.BENCHMARKS)}"
    )
    what.add_argument("--suite", help="named suite: seed, paths, bn (see 'tfparity list')")
    what.add_argument(
        "--dataset",
        action="append",
        metavar="NAME",
        help=f"dataset (repeatable; default mnist-5k): {', '.join(names.DATASETS)}",
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
        "--max-train-samples",
        type=types.positive_int,
        help="use only the first N training samples (quick runs); the training and the validation part must "
        "each hold at least one batch (N >= 156 at batch 32 and split 0.2)",
    )
    seeds = hp.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=types.non_negative_int, help="one seed (default 0)")
    seeds.add_argument("--seeds", type=types.positive_int, metavar="N", help="repeat with seeds 0..N-1")


def _path(path: Group) -> None:
    # Defaults are None and resolved in spec_from_args: --resume must see which flags were given.
    path.add_argument("--device", help=f"{' | '.join(names.DEVICES)} (default cpu)")
    path.add_argument("--precision", help=f"{' | '.join(names.PRECISIONS)} (default fp32)")
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


def _replicas(rep: Group) -> None:
    rep.add_argument(
        "--replicas",
        action="append",
        type=types.positive_int,
        metavar="N",
        help="N replicas: N GPUs on a GPU path, N logical CPU devices on a CPU path (path name e.g. cpu-fp32-x2; "
        "default 1, no strategy); repeat for a scaling series, e.g. --replicas 1 --replicas 2",
    )
    rep.add_argument(
        "--batch-per-replica",
        action="store_true",
        default=None,
        help="--batch-size is each replica's batch, the global batch N times it (weak scaling, for throughput: "
        "another optimisation); default: --batch-size is the global batch, so N replicas must agree with one",
    )
    rep.add_argument(
        "--sync-bn",
        metavar="on|off",
        help="on: BatchNormalization(synchronized=True), statistics over the global batch; off (default): "
        "Keras's per-replica statistics, which makes the batchnorm models another experiment on N replicas",
    )


def _where(ex: Group) -> None:
    ex.add_argument("--backend", help=f"{' | '.join(names.BACKENDS)} (default local; with --resume: the suite's)")
    ex.add_argument("--results-dir", help=f"parent of the suite directory (default ./{DEFAULT_RESULTS_DIR})")
    ex.add_argument("--resume", metavar="DIR", help="finish an interrupted suite directory (its plan, its backend)")
    ex.add_argument(
        "--retry-failed",
        action="store_true",
        help="with --resume: run failed runs again too (their results are archived under attempts/)",
    )
    ex.add_argument("--timeout", type=types.positive_float, metavar="SECONDS", help="per-run timeout")
    ex.add_argument("--rebuild", action="store_true", help="docker: rebuild the image first")
    ex.add_argument("--memory-limit", help="docker: container memory limit, e.g. 2g")
    ex.add_argument(
        "--gpus",
        type=_gpu_ids,
        metavar="IDS",
        help="docker --device gpu: the GPU ids each container gets, e.g. 0 or 0,1 (default 0: one GPU per run)",
    )
    ex.add_argument("--inject-fault", choices=names.FAULTS, help=argparse.SUPPRESS)
    scale.add_arguments(ex)


def _gpu_ids(text: str) -> str:
    """Validated here (one line, exit 2), handed to the docker backend as given."""
    from harness.cli.docker import gpu_ids

    return ",".join(gpu_ids(text))


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
    explicit["path"] = dataclasses.replace(spec.path, xla=spec.path.xla if xla is None else xla, replicas=replicas)
    if args.deterministic is not None:
        explicit["deterministic"] = parse_on_off("--deterministic", args.deterministic)
    if args.sync_bn is not None:
        explicit["sync_batchnorm"] = parse_on_off("--sync-bn", args.sync_bn)
    return spec.replace(**explicit)


def plan_runs(args: argparse.Namespace) -> tuple[list[RunSpec], str]:
    from harness.spec.suites import SuiteSpec, get_suite

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
    replicas = list(dict.fromkeys(args.replicas or []))
    return suite.expand(base, seeds, datasets, replicas), suite.name


def check_data(specs: list[RunSpec], data_dir: str | None) -> dict[str, str]:
    """Load every dataset once up front: missing/corrupt data, or a split with less than one batch in
    its training or validation part, is a user error before any run starts."""
    from harness import data
    from harness.data.split import check_run_split

    infos = {
        name: data.load(name, Path(data_dir) if data_dir else None).info
        for name in dict.fromkeys(s.dataset for s in specs)
    }
    for spec in specs:
        check_run_split(spec, infos[spec.dataset].n_train)
    return {name: info.sha256 for name, info in infos.items()}


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


def _resume_plan(args: argparse.Namespace) -> tuple[list[RunSpec], Path]:
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
    return specs, out_dir


def _new_suite(args: argparse.Namespace, specs: list[RunSpec], suite_name: str) -> Path:
    from harness.store.layout import new_suite_dir, write_manifest

    out_dir = new_suite_dir(Path(args.results_dir), suite_name)
    try:
        write_manifest(out_dir, specs, {"suite": suite_name, "backend": args.backend, "data_dir": args.data_dir})
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

    if args.resume:
        specs, out_dir = _resume_plan(args)
    else:
        if args.retry_failed:
            raise ConfigError("--retry-failed re-runs the failed runs of a suite: give it with --resume DIR")
        args.backend = args.backend or "local"
        args.results_dir = args.results_dir or DEFAULT_RESULTS_DIR
        specs, suite_name = plan_runs(args)
    scale.check(args)
    check_data(specs, args.data_dir)
    backend = make_backend(args, specs[0].path.device)
    backend.prepare(specs)
    hosts = scale.hosts(args, backend) if scale.wanted(args) else None
    if not args.resume:
        out_dir = _new_suite(args, specs, suite_name)
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
    print(f"\nresults: {out_dir}")
    return EXIT_RUNS_FAILED if any(not r.ok for r in results) else 0
