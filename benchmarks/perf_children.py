"""The TensorFlow side of ``benchmarks/perf.py``: the child processes it starts, one per measurement.

``python benchmarks/perf_children.py _bare SPEC OUT [--data-dir D]``
    (d): plain ``model.fit`` with the worker's settings and none of its instruments;
``python benchmarks/perf_children.py _paired SPEC OUT [--pairs N] [--data-dir D]``
    the harness's instruments on and off in alternate ``fit()`` windows of one process;
``python benchmarks/perf_children.py _probe OUT --dataset D --model M [--max-train-samples N] [--data-dir D]``
    the matmul peak, the input stages alone and the instruments' own cost (no training;
    :mod:`benchmarks.perf_probe`).

``_bare`` and ``_paired`` set themselves up with the worker's own code
(:func:`harness.worker.tf_setup.setup`: data, then seed, op determinism and dtype policy; the model
built on the set-up's device), so they differ from a worker run only by what is being measured.
Each child writes one JSON file. TensorFlow is imported inside the functions only.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout: make the harness importable
    sys.path.insert(0, str(ROOT))

from benchmarks.perf_probe import child_probe  # noqa: E402
from harness.spec.run_spec import RunSpec, load_spec  # noqa: E402
from harness.store.jsonio import write_json  # noqa: E402
from harness.worker import pipeline  # noqa: E402
from harness.worker.callbacks import progress_callback  # noqa: E402
from harness.worker.evidence import op_determinism_enabled  # noqa: E402
from harness.worker.metrics import RssSampler, StepRecord, make_step_timer, ru_maxrss_mb, step_stats  # noqa: E402
from harness.worker.models import build_model  # noqa: E402
from harness.worker.tf_setup import set_tf_environment, setup  # noqa: E402

KINDS = ("_bare", "_paired", "_probe")
WINDOW_STEPS = 300


def _data_dir(data_dir: str | None) -> Path | None:
    return Path(data_dir) if data_dir else None


# --- (d) bare model.fit ------------------------------------------------------------------------


def _epoch_timer(train_s: list[float], epoch_s: list[float]) -> Any:
    """Epoch-level hooks only (no per-batch callback is added to fit): training time of each epoch
    from ``on_epoch_begin`` to ``on_test_begin`` (the start of validation), and the whole epoch."""
    import keras

    class EpochTimer(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._begin = time.perf_counter()
            self._train_end: float | None = None

        def on_test_begin(self, logs: Any = None) -> None:
            if self._train_end is None:
                self._train_end = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            now = time.perf_counter()
            train_s.append((self._train_end or now) - self._begin)
            epoch_s.append(now - self._begin)

    return EpochTimer()


def child_bare(spec_path: str, out_path: str, data_dir: str | None) -> int:
    """``_bare SPEC OUT``: plain ``model.fit`` with the worker's settings and no harness instruments."""
    spec = load_spec(spec_path)
    ready = setup(spec, _data_dir(data_dir))  # the worker's data, seed, op determinism and dtype policy
    dataset = ready.dataset
    train_s: list[float] = []
    epoch_s: list[float] = []
    with ready.tf.device(f"/{ready.device}"):
        model = build_model(spec)
        fit_args, n_train, _ = pipeline.fit_kwargs(dataset.x_train, dataset.y_train, spec)
        fit_start = time.perf_counter()
        model.fit(epochs=spec.epochs, verbose=0, callbacks=[_epoch_timer(train_s, epoch_s)], **fit_args)
        train_time_s = time.perf_counter() - fit_start
        _, test_accuracy = model.evaluate(dataset.x_test, dataset.y_test, batch_size=spec.batch_size, verbose=0)
    samples_per_epoch = math.ceil(n_train / spec.batch_size) * spec.batch_size
    steady = train_s[1:]
    payload = {
        "epoch_train_s": train_s,
        "epoch_time_s": epoch_s,
        "samples_per_epoch": samples_per_epoch,
        "steady_samples_per_s": samples_per_epoch * len(steady) / sum(steady) if steady else None,
        "compile_time_s": None,
        "train_time_s": train_time_s,
        "test_accuracy": float(test_accuracy),
        "peak_rss_mb": None,  # no sampler by design
        "ru_maxrss_mb": ru_maxrss_mb(),
        "jit_compile": bool(model.jit_compile),
        "deterministic_ops": op_determinism_enabled(),
        "steps_per_execution": int(model.steps_per_execution),
    }
    write_json(out_path, payload, overwrite=True)
    return 0


# --- paired in-process overhead ------------------------------------------------------------------


def _window_timer(window_s: list[float]) -> Any:
    import keras

    class WindowTimer(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._begin = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            window_s.append(time.perf_counter() - self._begin)

    return WindowTimer()


def _paired_windows(model: Any, spec: RunSpec, fit_kwargs: dict[str, Any], pairs: int) -> list[dict[str, Any]]:
    """Alternate instrumented and bare windows (h,b then b,h then h,b ...), after one warm-up window."""
    window_s: list[float] = []
    model.fit(callbacks=[_window_timer(window_s)], **fit_kwargs)  # warm-up: tracing
    rows = []
    for i in range(2 * pairs):
        instrumented = (i % 2 == 0) == ((i // 2) % 2 == 0)
        if instrumented:
            record = StepRecord()
            callbacks = [
                make_step_timer(record),
                progress_callback(spec, time.perf_counter()),
                _window_timer(window_s),
            ]
            with contextlib.redirect_stdout(io.StringIO()), RssSampler():
                model.fit(callbacks=callbacks, **fit_kwargs)
            timer = step_stats(record, warmup_steps=0, batch_size=spec.batch_size)
            rows.append(
                {
                    "pair": i // 2,
                    "instrumented": True,
                    "window_s": window_s[-1],
                    "step_timer_samples_per_s": timer.steady_throughput_samples_per_s,
                }
            )
        else:
            model.fit(callbacks=[_window_timer(window_s)], **fit_kwargs)
            rows.append({"pair": i // 2, "instrumented": False, "window_s": window_s[-1]})
    return rows


def _pair_overheads(rows: list[dict[str, Any]], pairs: int) -> list[float]:
    """(T_instrumented - T_bare) / T_instrumented of each pair."""
    overheads = []
    for p in range(pairs):
        t_h = next(r["window_s"] for r in rows if r["pair"] == p and r["instrumented"])
        t_b = next(r["window_s"] for r in rows if r["pair"] == p and not r["instrumented"])
        overheads.append((t_h - t_b) / t_h)
    return overheads


def child_paired(
    spec_path: str, out_path: str, data_dir: str | None, pairs: int, window_steps: int = WINDOW_STEPS
) -> int:
    """``_paired SPEC OUT``: harness instruments on/off in alternate short fits of ONE process.

    Cross-process comparisons of (b) and (d) carry the run-to-run noise of a shared machine (often
    10-30 %), far above the 2 % being judged. Here the model, the compiled train function and the
    tf.data pipeline (repeated, so windows need not be whole epochs) are shared; only the step
    timer, the progress callback and the RSS sampler are switched on and off between consecutive
    windows of ``window_steps`` steps (order alternating per pair), so each pair differs by the
    instruments alone and sees nearly the same machine load.
    """
    spec = load_spec(spec_path)
    ready = setup(spec, _data_dir(data_dir))
    with ready.tf.device(f"/{ready.device}"):
        model = build_model(spec)
        parts = pipeline.split_train_val(ready.dataset.x_train, ready.dataset.y_train, spec)
        train, _ = pipeline.make_tfdata(parts, spec)
        steps = max(1, min(window_steps, len(parts.x_train) // spec.batch_size))
        fit_kwargs = {"x": train.repeat(), "steps_per_epoch": steps, "epochs": 1, "verbose": 0}
        rows = _paired_windows(model, spec, fit_kwargs, pairs)
    overheads = _pair_overheads(rows, pairs)
    payload = {
        "window_steps": steps,
        "windows": rows,
        "overhead_per_pair": overheads,
        "overhead_median": statistics.median(overheads),
        "overhead_mean": statistics.mean(overheads),
    }
    write_json(out_path, payload, overwrite=True)
    return 0


# --- entry point -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    set_tf_environment()  # as the worker's main: before anything can import TensorFlow
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="perf_children.py", description="perf.py's child processes (internal)")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("paths", nargs="+")
    p.add_argument("--data-dir")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--model", default="batchnorm")
    p.add_argument("--max-train-samples", type=int)
    p.add_argument("--pairs", type=int, default=12)
    a = p.parse_args(argv)
    if a.kind == "_paired":
        return child_paired(a.paths[0], a.paths[1], a.data_dir, a.pairs)
    if a.kind == "_bare":
        return child_bare(a.paths[0], a.paths[1], a.data_dir)
    return child_probe(a.paths[0], a.dataset, a.model, a.data_dir, a.max_train_samples)


if __name__ == "__main__":
    raise SystemExit(main())
