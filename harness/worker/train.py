"""Training mode: the experiment itself, measured (accuracy, loss, step times, memory, evidence)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import data
from harness.spec.run_spec import RunSpec
from harness.store.results import EpochMetrics, Memory, Timing
from harness.worker import distribute, environment, evidence, fastloop, pipeline
from harness.worker.callbacks import fault_callback, progress_callback
from harness.worker.metrics import (
    RssSampler,
    StepRecord,
    make_step_timer,
    resolve_warmup_steps,
    ru_maxrss_mb,
    step_stats,
)
from harness.worker.models import build_model
from harness.worker.telemetry import TelemetrySampler, sampler_for
from harness.worker.tf_setup import gpu_devices, gpu_peak_mb, reset_memory_stats, setup, tf_peak_mb

# Keras clips probabilities to [1e-7, 1 - 1e-7] in cross-entropy, so a sane per-sample loss is at
# most -log(1e-7) ~ 16.1. A mean loss far above that means the numerics broke down (seen with
# learning_rate=1e6 in fp32: loss ~4e21 at accuracy 0.10) even when nothing became NaN.
DIVERGED_LOSS = 1e3


class NonFiniteLossError(RuntimeError):
    """Training diverged: the loss became NaN, infinite, or impossibly large."""


@dataclass(frozen=True)
class Fitted:
    """What one fit() left behind: Keras's history, the sample counts and the wall time."""

    history: dict[str, list[float]]
    n_train: int
    n_val: int
    train_time_s: float


def train(spec: RunSpec, data_dir: Path | None, started: float, sampler: RssSampler) -> dict[str, Any]:
    """Run the experiment; returns the fields of an ``ok`` RunResult."""
    ready = setup(spec, data_dir)
    tf, dataset, device = ready.tf, ready.dataset, ready.device
    for name in {device, *gpu_devices(tf)}:
        reset_memory_stats(tf, name)
    record = StepRecord()
    callbacks = [make_step_timer(record), progress_callback(spec, started)]
    fault = fault_callback(spec) if spec.inject_fault else None
    if fault is not None:
        callbacks.append(fault)
    place = distribute.placement(tf, spec, device, ready.cluster)
    batch = spec.global_batch_size
    with sampler_for(spec.path.device) as telemetry, place.scope():
        model = build_model(spec, data=dataset)
        distribute.synchronize_batchnorm(model, spec)
        fitted = _fit(model, dataset, spec, callbacks, telemetry, place)
        test_loss, test_accuracy = _evaluate(model, dataset, batch, ready.cluster)
    epochs = _epochs(fitted.history, record)
    _refuse_divergence(epochs, float(test_loss), spec)
    ran = evidence.collect(tf, model, spec, global_batch_size=batch)
    evidence.require_match(ran, spec)
    sampler.stop()
    last = epochs[-1]
    return {
        "dataset": dataset.info,
        "epochs": epochs,
        "test_loss": float(test_loss),
        "test_accuracy": float(test_accuracy),
        "generalization_gap": None if last.val_accuracy is None else last.train_accuracy - last.val_accuracy,
        "params": int(model.count_params()),
        "n_train_used": fitted.n_train,
        "n_val_used": fitted.n_val,
        "timing": _timing(record, spec, fitted),
        "memory": Memory(
            peak_rss_mb=sampler.peak_rss_mb,
            ru_maxrss_mb=ru_maxrss_mb(),
            rss_sample_interval_s=sampler.interval_s,
            tf_device=device,
            tf_peak_mb=tf_peak_mb(tf, device),
            tf_gpu_peak_mb=gpu_peak_mb(tf),
        ),
        "evidence": ran,
        "environment": environment.collect(tf),
        "telemetry": telemetry.telemetry(),
        # what an injected slowdown (test-only) actually applied, measured in this process
        "extra": {"injected_slowdown": fault.summary()} if fault is not None and hasattr(fault, "summary") else {},
    }


def _fit(
    model: Any,
    dataset: data.Dataset,
    spec: RunSpec,
    callbacks: list[Any],
    telemetry: TelemetrySampler,
    place: distribute.Placement,
) -> Fitted:
    """``model.fit`` (tf.data or numpy input) or the compiled loop, on the spec's split, under the run's
    placement; the telemetry window is exactly the training loop."""
    run: Any
    if spec.loop == "compiled":
        parts = pipeline.split_train_val(dataset.x_train, dataset.y_train, spec, val=pipeline.own_validation(dataset))
        n_train, n_val = len(parts.x_train), len(parts.x_val)

        def run() -> Any:
            return fastloop.fit(
                model,
                parts.x_train,
                parts.y_train,
                batch_size=spec.global_batch_size,
                epochs=spec.epochs,
                seed=spec.seed,
                steps_per_execution=spec.steps_per_execution,
                order=spec.input,
                validation_data=(parts.x_val, parts.y_val) if n_val else None,
                callbacks=callbacks,
                strategy=place.strategy,
            )

    else:
        fit_args, n_train, n_val = pipeline.fit_kwargs(
            dataset.x_train, dataset.y_train, spec, val=pipeline.own_validation(dataset)
        )
        first = slice(0, spec.global_batch_size)
        distribute.keep_data_order(model, place, dataset.x_train[first], dataset.y_train[first])

        def run() -> Any:
            return model.fit(epochs=spec.epochs, verbose=0, callbacks=callbacks, **fit_args)

    telemetry.mark_start()
    start = time.perf_counter()
    history = run()
    train_time_s = time.perf_counter() - start
    telemetry.mark_end()
    return Fitted(dict(history.history), n_train, n_val, train_time_s)


def _evaluate(model: Any, dataset: data.Dataset, batch: int, cluster: Any | None) -> tuple[float, float]:
    """Test loss and accuracy: ``model.evaluate``, or under workers the compiled loop's evaluation
    (Keras 3.15's ``evaluate`` fails under MultiWorkerMirroredStrategy as its ``fit`` does)."""
    if cluster is None:
        loss, accuracy = model.evaluate(dataset.x_test, dataset.y_test, batch_size=batch, verbose=0)
        return float(loss), float(accuracy)
    logs = fastloop.evaluate(model, dataset.x_test, dataset.y_test, batch_size=batch, strategy=cluster)
    return logs["loss"], logs["accuracy"]


def _epochs(hist: dict[str, list[float]], record: StepRecord) -> list[EpochMetrics]:
    """Keras's per-epoch logs plus the step timer's epoch times."""

    def optional(key: str, i: int) -> float | None:
        return float(hist[key][i]) if key in hist else None

    return [
        EpochMetrics(
            epoch=i + 1,
            train_loss=float(hist["loss"][i]),
            train_accuracy=float(hist["accuracy"][i]),
            val_loss=optional("val_loss", i),
            val_accuracy=optional("val_accuracy", i),
            epoch_time_s=float(record.epoch_time_s[i]) if i < len(record.epoch_time_s) else float("nan"),
        )
        for i in range(len(hist["loss"]))
    ]


def _refuse_divergence(epochs: list[EpochMetrics], test_loss: float, spec: RunSpec) -> None:
    def broken(loss: float) -> bool:
        return not math.isfinite(loss) or loss > DIVERGED_LOSS

    bad = next((e for e in epochs if broken(e.train_loss)), None)
    if bad is None and not broken(test_loss):
        return
    where = (
        f"at epoch {bad.epoch} (train loss {bad.train_loss:.3g})"
        if bad
        else f"in the test evaluation (test loss {test_loss:.3g})"
    )
    raise NonFiniteLossError(
        f"loss became non-finite or exceeded {DIVERGED_LOSS:g} {where}: training diverged "
        f"(learning_rate={spec.learning_rate})"
    )


def _timing(record: StepRecord, spec: RunSpec, fitted: Fitted) -> Timing:
    steps_per_epoch = math.ceil(fitted.n_train / spec.global_batch_size)
    warmup = resolve_warmup_steps(spec.warmup_steps, steps_per_epoch, spec.epochs)
    stats = step_stats(record, warmup_steps=warmup, batch_size=spec.global_batch_size)
    return Timing(
        step_time_ms=[round(t, 4) for t in record.step_time_ms],
        steps_per_sample=spec.steps_per_execution,
        warmup_steps=stats.warmup_steps,
        compile_time_s=stats.compile_time_s,
        warmup_time_s=stats.warmup_time_s,
        steady_throughput_samples_per_s=stats.steady_throughput_samples_per_s,
        step_time_ms_p50=stats.step_time_ms_p50,
        step_time_ms_p90=stats.step_time_ms_p90,
        step_time_ms_p99=stats.step_time_ms_p99,
        train_time_s=fitted.train_time_s,
        total_wall_time_s=0.0,  # the whole worker's time: filled in by run.run()
    )
