"""The isolated entry point: ``python -m harness.worker SPEC.json RESULT.json [--data-dir DIR]``.

Runs in a fresh process (local backend) or container (docker backend), so every run pays its own
TensorFlow import and gets a clean memory figure. It always tries to leave a result file: ``ok``
(exit 0) or ``failed`` with the error and traceback tail (exit 1). A spec that cannot be read is a
user error (exit 2, one line, nothing written). A result that cannot be written (disk full, directory
gone) is exit 3, one line, no file: the run is not finished and a resumed suite runs it again.
Progress goes to stdout as ``TFPARITY_PROGRESS {json}`` lines for the backend to parse.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from harness import environment
from harness.backends.base import EXIT_CANNOT_WRITE, PROGRESS_PREFIX
from harness.config import ConfigError, RunSpec, load_spec
from harness.errors import UserError
from harness.metrics import (
    RssSampler,
    StepRecord,
    make_step_timer,
    resolve_warmup_steps,
    ru_maxrss_mb,
    step_stats,
)
from harness.results import (
    EpochMetrics,
    Evidence,
    Memory,
    RunResult,
    Timing,
    write_result,
)
from harness.timeutil import utc_now

log = logging.getLogger(__name__)


class PathMismatchError(RuntimeError):
    """What ran is not what was asked for (e.g. XLA dropped, GPU missing, wrong policy)."""


class NonFiniteLossError(RuntimeError):
    """Training diverged: the loss became NaN, infinite, or impossibly large."""


# Keras clips probabilities to [1e-7, 1 - 1e-7] in cross-entropy, so a sane per-sample loss is at
# most -log(1e-7) ~ 16.1. A mean loss far above that means the numerics broke down (seen with
# learning_rate=1e6 in fp32: loss ~4e21 at accuracy 0.10) even when nothing became NaN.
DIVERGED_LOSS = 1e3


def set_tf_environment() -> None:
    """Environment TF reads at import time; called before anything can import TensorFlow."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    # The default CPU allocator keeps no statistics; the BFC allocator does, so that
    # get_memory_info('CPU:0') reports TF's peak on CPU paths too (GPU always uses BFC).
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")


def configure_tensorflow(spec: RunSpec) -> Any:
    """Import TF and set seed, determinism, visible devices and dtype policy *before* any op runs."""
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if spec.path.device == "gpu":
        if not gpus:
            raise PathMismatchError(
                "device 'gpu' requested but TensorFlow sees no GPU (CPU-only build, no CUDA device, or no "
                "NVIDIA runtime in the container); refusing to fall back to CPU")
        for gpu in gpus:  # allocate as needed so the memory figure means something
            tf.config.experimental.set_memory_growth(gpu, True)
    elif gpus:
        # A CPU path on a GPU host must not silently use the GPU.
        tf.config.set_visible_devices([], "GPU")

    keras.utils.set_random_seed(spec.seed)
    if spec.deterministic_ops:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(spec.path.policy)
    return tf


def variable_device(model: Any) -> str:
    """Device string of the first trainable variable, e.g. '/job:localhost/replica:0/task:0/device:CPU:0'."""
    var = model.trainable_variables[0]
    value = getattr(var, "value", var)
    return str(getattr(value, "device", "") or "")


def device_kind(device: str) -> str:
    """'cpu' or 'gpu' (or 'unknown') from a TF device string."""
    upper = device.upper()
    if "GPU" in upper:
        return "gpu"
    if "CPU" in upper:
        return "cpu"
    return "unknown"


def collect_evidence(tf: Any, model: Any, spec: RunSpec) -> Evidence:
    import keras

    return Evidence(
        physical_devices=[d.name for d in tf.config.list_physical_devices()],
        variable_device=variable_device(model),
        dtype_policy=keras.mixed_precision.global_policy().name,
        jit_compile=bool(model.jit_compile),
        deterministic_ops=op_determinism_enabled(),
        steps_per_execution=int(getattr(model, "steps_per_execution", spec.steps_per_execution) or 1),
        training_loop=spec.loop,
    )


def op_determinism_enabled() -> bool:
    """Read back op determinism (public API only exposes enable/disable in TF 2.21)."""
    from tensorflow.python.framework import config as tf_config

    return bool(tf_config.is_op_determinism_enabled())


def check_evidence(evidence: Evidence, spec: RunSpec) -> None:
    """A run whose resolved settings differ from the request is an error, not a quiet success."""
    problems = []
    if evidence.jit_compile != spec.path.xla:
        problems.append(f"jit_compile resolved to {evidence.jit_compile}, asked for xla={'on' if spec.path.xla else 'off'}")
    if evidence.dtype_policy != spec.path.policy:
        problems.append(f"dtype policy is {evidence.dtype_policy!r}, asked for {spec.path.policy!r}")
    if device_kind(evidence.variable_device) != spec.path.device:
        problems.append(f"model variables live on {evidence.variable_device!r}, asked for device {spec.path.device!r}")
    if evidence.deterministic_ops != spec.deterministic_ops:
        problems.append(f"op determinism is {evidence.deterministic_ops}, expected {spec.deterministic_ops}")
    if problems:
        raise PathMismatchError("the path that ran is not the path asked for: " + "; ".join(problems))


def tf_peak_mb(tf: Any, device: str) -> float | None:
    try:
        info = tf.config.experimental.get_memory_info(device)
    except (ValueError, RuntimeError):  # not supported for this device
        return None
    return info["peak"] / 2**20


def make_progress_callback(spec: RunSpec, started: float) -> Any:
    import keras

    class ProgressLine(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            line = {"epoch": epoch + 1, "epochs": spec.epochs, "elapsed_s": round(time.perf_counter() - started, 3)}
            sys.stdout.write(PROGRESS_PREFIX + json.dumps(line) + "\n")
            sys.stdout.flush()

    return ProgressLine()


def make_fault_callback(spec: RunSpec) -> Any:
    """Test-only faults, injected after the first training step (so TF is fully initialised)."""
    import keras

    class Fault(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if spec.inject_fault == "raise":
                raise RuntimeError("injected fault: raise")
            if spec.inject_fault == "crash":
                sys.stdout.flush()
                os.abort()  # a hard crash: no Python cleanup, no result written by the worker
            if spec.inject_fault == "nan":
                kernel = self.model.get_layer("dense_1").kernel
                kernel.assign(kernel * float("nan"))
            if spec.inject_fault == "oom":
                _exhaust_memory()

    return Fault()


def _exhaust_memory() -> None:
    """Cap the address space just above current use, then allocate past it: a real MemoryError."""
    import resource

    import numpy as np
    import psutil

    vms = psutil.Process().memory_info().vms
    resource.setrlimit(resource.RLIMIT_AS, (vms + 256 * 2**20, resource.getrlimit(resource.RLIMIT_AS)[1]))
    np.ones(2**31, dtype=np.uint8)  # 2 GiB


def train(spec: RunSpec, data_dir: Path | None, started: float, sampler: RssSampler) -> dict[str, Any]:
    """Run the experiment; returns the fields of an ``ok`` RunResult."""
    from harness import data, pipeline
    from harness.models import build_model

    set_tf_environment()
    dataset = data.load(spec.dataset, data_dir, validation_split=spec.validation_split)
    tf = configure_tensorflow(spec)
    tf_device = "GPU:0" if spec.path.device == "gpu" else "CPU:0"
    try:
        tf.config.experimental.reset_memory_stats(tf_device)
    except (ValueError, RuntimeError):
        pass

    with tf.device(f"/{tf_device}"):
        model = build_model(spec)
        if spec.mode == "probe":
            from harness.probe import run_probe

            payload = run_probe(spec, dataset)
            evidence = collect_evidence(tf, model, spec)
            check_evidence(evidence, spec)
            return {"dataset": dataset.info, "params": int(model.count_params()), "evidence": evidence,
                    "extra": {"probe": payload}, "environment": environment.collect(tf)}

        record = StepRecord()
        callbacks = [make_step_timer(record), make_progress_callback(spec, started)]
        if spec.inject_fault:
            callbacks.append(make_fault_callback(spec))
        if spec.loop == "compiled":
            from harness import fastloop

            parts = pipeline.split_train_val(dataset.x_train, dataset.y_train, spec)
            n_train, n_val = len(parts.x_train), len(parts.x_val)
            fit_start = time.perf_counter()
            history = fastloop.fit(
                model, parts.x_train, parts.y_train, batch_size=spec.batch_size, epochs=spec.epochs,
                seed=spec.seed, steps_per_execution=spec.steps_per_execution, order=spec.input,
                validation_data=(parts.x_val, parts.y_val) if n_val else None, callbacks=callbacks)
        else:
            fit_args, n_train, n_val = pipeline.fit_kwargs(dataset.x_train, dataset.y_train, spec)
            fit_start = time.perf_counter()
            history = model.fit(epochs=spec.epochs, verbose=0, callbacks=callbacks, **fit_args)
        train_time_s = time.perf_counter() - fit_start
        test_loss, test_accuracy = model.evaluate(dataset.x_test, dataset.y_test, batch_size=spec.batch_size,
                                                  verbose=0)

    hist = history.history
    epochs = []
    for i in range(len(hist["loss"])):
        epochs.append(EpochMetrics(
            epoch=i + 1,
            train_loss=float(hist["loss"][i]),
            train_accuracy=float(hist["accuracy"][i]),
            val_loss=float(hist["val_loss"][i]) if "val_loss" in hist else None,
            val_accuracy=float(hist["val_accuracy"][i]) if "val_accuracy" in hist else None,
            epoch_time_s=float(record.epoch_time_s[i]) if i < len(record.epoch_time_s) else float("nan"),
        ))
    def broken(loss: float) -> bool:
        return not math.isfinite(loss) or loss > DIVERGED_LOSS

    if any(broken(e.train_loss) for e in epochs) or broken(float(test_loss)):
        bad = next((e for e in epochs if broken(e.train_loss)), None)
        where = f"at epoch {bad.epoch} (train loss {bad.train_loss:.3g})" if bad else (
            f"in the test evaluation (test loss {float(test_loss):.3g})")
        raise NonFiniteLossError(f"loss became non-finite or exceeded {DIVERGED_LOSS:g} {where}: training "
                                 f"diverged (learning_rate={spec.learning_rate})")

    evidence = collect_evidence(tf, model, spec)
    check_evidence(evidence, spec)

    steps_per_epoch = math.ceil(n_train / spec.batch_size)
    warmup = resolve_warmup_steps(spec.warmup_steps, steps_per_epoch, spec.epochs)
    stats = step_stats(record, warmup_steps=warmup, batch_size=spec.batch_size)
    timing = Timing(
        step_time_ms=[round(t, 4) for t in record.step_time_ms],
        steps_per_sample=spec.steps_per_execution,
        warmup_steps=stats.warmup_steps,
        compile_time_s=stats.compile_time_s,
        warmup_time_s=stats.warmup_time_s,
        steady_throughput_samples_per_s=stats.steady_throughput_samples_per_s,
        step_time_ms_p50=stats.step_time_ms_p50,
        step_time_ms_p90=stats.step_time_ms_p90,
        step_time_ms_p99=stats.step_time_ms_p99,
        train_time_s=train_time_s,
        total_wall_time_s=0.0,  # filled in by main()
    )
    sampler.stop()
    memory = Memory(
        peak_rss_mb=sampler.peak_rss_mb,
        ru_maxrss_mb=ru_maxrss_mb(),
        rss_sample_interval_s=sampler.interval_s,
        tf_device=tf_device,
        tf_peak_mb=tf_peak_mb(tf, tf_device),
    )
    last = epochs[-1]
    gap = last.train_accuracy - last.val_accuracy if last.val_accuracy is not None else None
    return {
        "dataset": dataset.info,
        "epochs": epochs,
        "test_loss": float(test_loss),
        "test_accuracy": float(test_accuracy),
        "generalization_gap": gap,
        "params": int(model.count_params()),
        "n_train_used": n_train,
        "n_val_used": n_val,
        "timing": timing,
        "memory": memory,
        "evidence": evidence,
        "environment": environment.collect(tf),
    }


def run(spec: RunSpec, result_path: Path, data_dir: Path | None) -> RunResult:
    """Run ``spec`` and write its result (ok or failed) to ``result_path``; never raises for run failures."""
    started_utc = utc_now()
    started = time.perf_counter()
    with RssSampler() as sampler:
        try:
            fields = train(spec, data_dir, started, sampler)
            status, error, tail = "ok", None, []
        except (Exception, MemoryError) as exc:  # one failure is a result, not a crash
            log.error("run %s failed: %s", spec.run_id, exc)
            status = "failed"
            if isinstance(exc, MemoryError):
                error = f"out of memory: MemoryError {exc}".strip()
            elif isinstance(exc, UserError):
                error = str(exc)
            else:
                error = f"{type(exc).__name__}: {exc}"
            tail = traceback.format_exc().splitlines()[-30:]
            fields = {"environment": environment.collect(sys.modules.get("tensorflow"))}
    if "timing" in fields:
        fields["timing"] = _with_total(fields["timing"], time.perf_counter() - started)
    result = RunResult(run_id=spec.run_id, status=status, spec=spec.to_dict(), started_utc=started_utc,
                       finished_utc=utc_now(), error=error, log_tail=tail, **fields)
    write_result(result, result_path)
    return result


def _with_total(timing: Timing, total_s: float) -> Timing:
    import dataclasses

    return dataclasses.replace(timing, total_wall_time_s=total_s)



def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when the harness that started it dies (Linux).

    Without it a ``kill -9`` of ``tfparity`` leaves the worker training on as an orphan; it then
    records a bogus ``failed`` result (its progress pipe is gone) that a resumed suite would skip.
    Killed, it leaves no result (writes are atomic) and the resumed suite runs it again.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError) as exc:  # no prctl: best effort
        log.debug("prctl(PR_SET_PDEATHSIG) unavailable: %s", exc)
        return
    if os.getppid() != parent_pid:  # the harness died before the request took effect
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.worker", description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="run spec JSON")
    parser.add_argument("result", help="where to write the result JSON (must not exist)")
    parser.add_argument("--data-dir", default=None, help="dataset directory (default: $TFPARITY_DATA_DIR or ./data)")
    parser.add_argument("--die-with-parent", type=int, metavar="PID", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.die_with_parent:
        die_with_parent(args.die_with_parent)
        # The local backend starts us with SIGINT/SIGTERM blocked (inherited mask): take them again
        # so that its SIGTERM stops us.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        spec = load_spec(args.spec)
        result_path = Path(args.result)
        if result_path.exists():
            raise ConfigError(f"result {args.result!r} already exists; results are never overwritten")
        if not result_path.parent.is_dir():
            raise ConfigError(f"result directory {str(result_path.parent)!r} does not exist")
    except UserError as exc:
        print(f"tfparity-worker: error: {exc}", file=sys.stderr)
        return 2
    try:
        result = run(spec, result_path, Path(args.data_dir) if args.data_dir else None)
    except OSError as exc:  # e.g. disk full while writing: the atomic write left no partial file
        print(f"tfparity-worker: cannot write result {args.result!r}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_CANNOT_WRITE
    if result.ok:
        return 0
    print(f"tfparity-worker: run {spec.run_id} failed: {result.error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
