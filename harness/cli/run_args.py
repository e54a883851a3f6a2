"""The flags of ``tfparity run`` (argparse groups); :mod:`harness.cli.run` plans and runs from them.

Every flag that changes the plan or where results go defaults to None, so that ``--resume`` can tell
a flag that was given from one that was not (and refuse it).
"""

from __future__ import annotations

import argparse

from harness.cli import scale, types
from harness.spec import names
from harness.spec.presets import PRESETS

Group = argparse._ArgumentGroup
DEFAULT_RESULTS_DIR = "results"


def add_arguments(p: argparse.ArgumentParser) -> None:
    _what(p.add_argument_group("what to run"))
    _hyperparameters(p.add_argument_group("hyperparameters (defaults: the seed script's)"))
    _path(p.add_argument_group("path (device x precision x XLA x replicas) and execution"))
    _replicas(p.add_argument_group("replicas on one host (tf.distribute.MirroredStrategy)"))
    p.add_argument_group("workers across containers (tf.distribute.MultiWorkerMirroredStrategy)").add_argument(
        "--workers",
        action="append",
        type=types.positive_int,
        metavar="N",
        help="--backend docker: N containers of each run, one replica each, sharing the chief's loopback-only "
        "network (path name e.g. cpu-fp32-w2; needs --loop compiled; default 1); repeat for a series, "
        "e.g. --workers 1 --workers 2",
    )
    _where(p.add_argument_group("where and how"))


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
        "--max-train-samples",
        type=types.positive_int,
        help="use only the first N training samples (quick runs); the training and the validation part must "
        "each hold at least one batch (N >= 156 at batch 32 and split 0.2)",
    )
    seeds = hp.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=types.non_negative_int, help="one seed (default 0)")
    seeds.add_argument("--seeds", type=types.positive_int, metavar="N", help="repeat with seeds 0..N-1")
    hp.add_argument(
        "--repeats",
        type=types.positive_int,
        metavar="R",
        help="run every spec R times, each in a fresh process, interleaved (all specs, then all again, ...); "
        "with R >= 2 the suite's A/A spread is written to noise.json (the noise floor compare uses); default 1",
    )


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
    # test-only: one of names.FAULTS, "slow:F" with a fraction (harness.spec.run_spec.parse_fault)
    ex.add_argument("--inject-fault", type=types.from_parser(_fault), help=argparse.SUPPRESS)
    scale.add_arguments(ex)


def _fault(text: str) -> str:
    from harness.spec.run_spec import parse_fault

    parse_fault(text)
    return text


def _gpu_ids(text: str) -> str:
    """Validated here (one line, exit 2), handed to the docker backend as given."""
    from harness.cli.docker import gpu_ids

    return ",".join(gpu_ids(text))
