"""Performance benchmark of tfparity's training paths and of the harness itself (``make perf``).

One invocation runs, round after round, each configuration in its own fresh process:

(a) ``seed``    the seed script's way: ``model.fit`` on numpy arrays, one step per call (the real
                worker, ``--preset seed``);
(b) ``harness`` the harness's default run: tf.data input, one step per call (the real worker);
(c) ``fast``    the ``fast`` preset: the compiled multi-step loop of :mod:`harness.fastloop` with
                XLA, the seed's data order (the real worker, ``--preset fast``);
(d) ``bare``    ``model.fit`` with exactly (b)'s settings (same environment, seed, determinism,
                model, tf.data pipeline), but without the harness's step timer, progress
                callback and RSS sampler.

Rounds alternate a, b, c, d, a, b, c, d, ... so that load drift on a shared machine hits all
configurations alike; statistics are medians and medians of per-round ratios. Round ``r`` uses
seed ``r % seeds``: (a) and (c) train the full experiment (``--epochs``) and give the test-accuracy
difference per seed; (b) and (d) only need a few epochs (``--overhead-epochs``).

Throughput has one definition for every path: samples/s of steady-state training steps, the first
epoch (tracing, XLA compilation) excluded. The worker derives it from its per-step timer; the bare
run (d) cannot have that timer (it is what is being measured), so it times each epoch from
``on_epoch_begin`` to ``on_test_begin`` (the start of validation) with epoch-level hooks only.
As a cross-check with an identical definition on both sides, (b) and (d) are also compared on
whole epochs 2..N including validation (``epoch_time_s``).

A probe process measures the machine's matmul peak (``tf.linalg.matmul``, large and step-sized),
and the input stages alone: the harness's tf.data pipeline (b), Keras's numpy array adapter (a),
and the fast loop's in-graph gather (c), each against the training rate of the path it feeds.

Output: ``OUT/perf-<UTC stamp>.json`` (raw samples and derived figures), ``.md`` (a short
table), per-run result JSONs under ``OUT/perf-<stamp>/``; the summary is printed to stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout: make the harness importable
    sys.path.insert(0, str(ROOT))

from harness.config import ConfigError, RunSpec  # noqa: E402
from harness.errors import UserError  # noqa: E402
from harness.presets import apply_preset  # noqa: E402
from harness.results import write_json_atomic  # noqa: E402
from harness.timeutil import utc_now, utc_stamp  # noqa: E402

log = logging.getLogger("tfparity.perf")

PERF_SCHEMA_VERSION = 1
CONFIGS = ("seed", "harness", "fast", "bare")
LABELS = {"seed": "(a) seed way", "harness": "(b) harness default", "fast": "(c) fast preset",
          "bare": "(d) bare model.fit"}
GOAL_SPEEDUP = 4.0
GOAL_ACC_DIFF_PP = 0.5
GOAL_OVERHEAD = 0.02
GOAL_INPUT_RATIO = 10.0
GOAL_MEMORY_RATIO = 1.10
MATMUL_N = 1024
PROBE_RESERVE_S = 40.0  # what the probe takes on this machine under load, with margin
PAIRED_RESERVE_S = 130.0


# --- specs -----------------------------------------------------------------------------------


def make_specs(args: argparse.Namespace, seed: int) -> dict[str, RunSpec]:
    """The four configurations of one round (``harness`` and ``bare`` share one spec)."""
    base = RunSpec(benchmark=args.model, dataset=args.dataset, seed=seed, epochs=args.epochs,
                   max_train_samples=args.max_train_samples, suite="perf")
    short = base.replace(epochs=args.overhead_epochs)  # harness defaults: tfdata, one step per call
    return {
        "seed": apply_preset("seed", base),
        "harness": short,
        "fast": apply_preset("fast", base),
        "bare": short,
    }


# --- running one configuration in a fresh process ----------------------------------------------


def run_worker(config: str, spec: RunSpec, out_dir: Path, data_dir: str | None, timeout_s: float) -> dict[str, Any]:
    """Run (a)/(b)/(c) through the worker; returns the measured figures of the run."""
    from harness.backends.local import LocalBackend

    backend = LocalBackend(data_dir=data_dir)
    started = time.perf_counter()
    result = backend.run(spec, out_dir, timeout_s=timeout_s)
    wall_s = time.perf_counter() - started
    if not result.ok:
        raise RuntimeError(f"{LABELS[config]} run {spec.run_id} {result.status}: {result.error}")
    assert result.timing is not None and result.memory is not None and result.evidence is not None
    epochs = result.epochs
    return {
        "run_id": result.run_id,
        "result_file": str(Path(out_dir) / f"{result.run_id}.json"),
        "seed": spec.seed,
        "epochs": spec.epochs,
        "steady_samples_per_s": result.timing.steady_throughput_samples_per_s,
        "epoch_time_s": [e.epoch_time_s for e in epochs],
        "samples_per_epoch": _samples_per_epoch(result),
        "compile_time_s": result.timing.compile_time_s,
        "train_time_s": result.timing.train_time_s,
        "process_wall_time_s": wall_s,
        "test_accuracy": result.test_accuracy,
        "peak_rss_mb": result.memory.peak_rss_mb,
        "ru_maxrss_mb": result.memory.ru_maxrss_mb,
        "jit_compile": result.evidence.jit_compile,
        "deterministic_ops": result.evidence.deterministic_ops,
        "steps_per_execution": result.evidence.steps_per_execution,
        "input": spec.input,
        "loop": result.evidence.training_loop,
    }


def _samples_per_epoch(result: Any) -> int:
    spec = result.run_spec
    assert result.dataset is not None
    n = result.dataset.n_train - result.dataset.n_val
    if spec.max_train_samples is not None:
        from harness.pipeline import split_at

        n = min(n, split_at(spec.max_train_samples, spec.validation_split))
    return math.ceil(n / spec.batch_size) * spec.batch_size


def run_bare(spec: RunSpec, out_dir: Path, data_dir: str | None, timeout_s: float) -> dict[str, Any]:
    """Run (d) in a fresh process (this file's ``_bare`` entry point)."""
    spec_path = out_dir / f"bare-{spec.run_id}.spec.json"
    out_path = out_dir / f"bare-{spec.run_id}.json"
    write_json_atomic(spec_path, spec.to_dict(), overwrite=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "_bare", str(spec_path), str(out_path)]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    started = time.perf_counter()
    proc = _run_child(cmd, timeout_s)
    wall_s = time.perf_counter() - started
    if proc.returncode != 0 or not out_path.exists():
        raise RuntimeError(f"bare run failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
    data = json.loads(out_path.read_text(encoding="utf-8"))
    data.update(result_file=str(out_path), process_wall_time_s=wall_s, seed=spec.seed, epochs=spec.epochs,
                input=spec.input, loop="fit")
    return data


def run_probe(args: argparse.Namespace, out_dir: Path, timeout_s: float) -> dict[str, Any]:
    out_path = out_dir / "probe.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "_probe", str(out_path), "--dataset", args.dataset,
           "--model", args.model]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    if args.max_train_samples:
        cmd += ["--max-train-samples", str(args.max_train_samples)]
    proc = _run_child(cmd, timeout_s)
    if proc.returncode != 0 or not out_path.exists():
        raise RuntimeError(f"probe failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
    return json.loads(out_path.read_text(encoding="utf-8"))


def run_paired(spec: RunSpec, out_dir: Path, data_dir: str | None, pairs: int, timeout_s: float) -> dict[str, Any]:
    """The in-process paired overhead check (this file's ``_paired`` entry point)."""
    spec_path = out_dir / "paired.spec.json"
    out_path = out_dir / "paired.json"
    write_json_atomic(spec_path, spec.to_dict(), overwrite=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "_paired", str(spec_path), str(out_path),
           "--pairs", str(pairs)]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    proc = _run_child(cmd, timeout_s)
    if proc.returncode != 0 or not out_path.exists():
        raise RuntimeError(f"paired overhead run failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
    return json.loads(out_path.read_text(encoding="utf-8"))


def _run_child(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run a child exactly as LocalBackend runs a worker: same environment, own session.

    The own session matters for fairness, not only for signals: with the kernel's scheduler
    autogroups (``/proc/sys/kernel/sched_autogroup_enabled``) a new session is a new CPU-share
    group, and on a loaded machine a child left in this session's group ran ~20-40 % slower than
    the workers (measured), which showed up as a negative "harness overhead".
    """
    env = {**os.environ, "TFPARITY_BACKEND": "local", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                            env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise RuntimeError(f"timed out after {timeout_s:g} s: {' '.join(cmd)}") from None
    except BaseException:  # Ctrl-C: never leave a child behind
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


# --- child entry points ------------------------------------------------------------------------


def child_bare(spec_path: str, out_path: str, data_dir: str | None) -> int:
    """``_bare SPEC OUT``: plain ``model.fit`` with the worker's settings and no harness instruments."""
    import resource

    from harness import data, pipeline, worker
    from harness.config import load_spec
    from harness.models import build_model

    spec = load_spec(spec_path)
    worker.set_tf_environment()  # same TF environment (allocator, log level) as the worker
    dataset = data.load(spec.dataset, Path(data_dir) if data_dir else None, validation_split=spec.validation_split)
    tf = worker.configure_tensorflow(spec)  # same seed, op determinism and dtype policy
    import keras

    train_s: list[float] = []
    epoch_s: list[float] = []

    class EpochTimer(keras.callbacks.Callback):
        """Epoch-level hooks only: no per-batch callback is added to fit."""

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

    with tf.device("/CPU:0"):
        model = build_model(spec)
        fit_args, n_train, _ = pipeline.fit_kwargs(dataset.x_train, dataset.y_train, spec)
        fit_start = time.perf_counter()
        model.fit(epochs=spec.epochs, verbose=0, callbacks=[EpochTimer()], **fit_args)
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
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "jit_compile": bool(model.jit_compile),
        "deterministic_ops": worker.op_determinism_enabled(),
        "steps_per_execution": int(model.steps_per_execution),
    }
    write_json_atomic(out_path, payload)
    return 0


def child_paired(spec_path: str, out_path: str, data_dir: str | None, pairs: int,
                 window_steps: int = 300) -> int:
    """``_paired SPEC OUT``: harness instruments on/off in alternate short fits of ONE process.

    Cross-process comparisons of (b) and (d) carry the run-to-run noise of a shared machine (often
    10-30 %), far above the 2 % being judged. Here the model, the compiled train function and the
    tf.data pipeline (repeated, so windows need not be whole epochs) are shared; only the step
    timer, the progress callback and the RSS sampler are switched on and off between consecutive
    windows of ``window_steps`` steps (order alternating per pair), so each pair differs by the
    instruments alone and sees nearly the same machine load.
    """
    from harness import data, pipeline, worker
    from harness.config import load_spec
    from harness.metrics import RssSampler, StepRecord, make_step_timer, step_stats
    from harness.models import build_model

    spec = load_spec(spec_path)
    worker.set_tf_environment()
    dataset = data.load(spec.dataset, Path(data_dir) if data_dir else None, validation_split=spec.validation_split)
    tf = worker.configure_tensorflow(spec)
    import contextlib
    import io

    import keras

    window_s: list[float] = []

    class WindowTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._begin = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            window_s.append(time.perf_counter() - self._begin)

    with tf.device("/CPU:0"):
        model = build_model(spec)
        parts = pipeline.split_train_val(dataset.x_train, dataset.y_train, spec)
        train, _ = pipeline.make_tfdata(parts, spec)
        train = train.repeat()
        steps = max(1, min(window_steps, len(parts.x_train) // spec.batch_size))
        fit_kwargs = {"x": train, "steps_per_epoch": steps, "epochs": 1, "verbose": 0}
        model.fit(callbacks=[WindowTimer()], **fit_kwargs)  # warm-up: tracing
        rows = []
        for i in range(2 * pairs):
            instrumented = (i % 2 == 0) == ((i // 2) % 2 == 0)  # h,b then b,h then h,b ...
            if instrumented:
                record = StepRecord()
                callbacks = [make_step_timer(record), worker.make_progress_callback(spec, time.perf_counter()),
                             WindowTimer()]
                with contextlib.redirect_stdout(io.StringIO()), RssSampler():
                    model.fit(callbacks=callbacks, **fit_kwargs)
                timer = step_stats(record, warmup_steps=0, batch_size=spec.batch_size)
                rows.append({"pair": i // 2, "instrumented": True, "window_s": window_s[-1],
                             "step_timer_samples_per_s": timer.steady_throughput_samples_per_s})
            else:
                model.fit(callbacks=[WindowTimer()], **fit_kwargs)
                rows.append({"pair": i // 2, "instrumented": False, "window_s": window_s[-1]})
    overheads = []
    for p in range(pairs):
        t_h = next(r["window_s"] for r in rows if r["pair"] == p and r["instrumented"])
        t_b = next(r["window_s"] for r in rows if r["pair"] == p and not r["instrumented"])
        overheads.append((t_h - t_b) / t_h)
    write_json_atomic(out_path, {"window_steps": steps, "windows": rows, "overhead_per_pair": overheads,
                                 "overhead_median": statistics.median(overheads),
                                 "overhead_mean": statistics.mean(overheads)})
    return 0


def child_probe(out_path: str, dataset_name: str, model_name: str, data_dir: str | None,
                max_train_samples: int | None) -> int:
    """``_probe OUT``: matmul peak and the input stages alone (no training)."""
    from harness import data, pipeline, worker

    worker.set_tf_environment()
    spec = RunSpec(benchmark=model_name, dataset=dataset_name, max_train_samples=max_train_samples)
    dataset = data.load(spec.dataset, Path(data_dir) if data_dir else None, validation_split=spec.validation_split)
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    parts = pipeline.split_train_val(dataset.x_train, dataset.y_train, spec)
    n = len(parts.x_train)
    out: dict[str, Any] = {"matmul": _matmul_peak(tf), "input": {}}

    train_ds, _ = pipeline.make_tfdata(parts, spec)
    out["instrument_cost"] = _instrument_cost()
    out["input"]["tfdata"] = _iterate_rate(train_ds, n, epochs=4)
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

    adapter = ArrayDataAdapter(parts.x_train, parts.y_train, batch_size=spec.batch_size, shuffle=True)
    out["input"]["numpy_adapter"] = _iterate_rate(adapter.get_tf_dataset(), n, epochs=4)
    fast = apply_preset("fast", spec)
    out["input"]["chunk_gather"] = _gather_rate(tf, parts.x_train, parts.y_train, spec.batch_size,
                                                fast.steps_per_execution)
    write_json_atomic(out_path, out)
    return 0


def _instrument_cost(calls: int = 200_000) -> dict[str, Any]:
    """CPU cost of the harness's instruments, measured directly (noise-free, unlike run comparisons).

    The step timer's ``on_train_batch_end`` is timed on its own (called with the logs Keras passes);
    for scale, so is Keras's own per-step ``CallbackList.on_train_batch_end`` without it. The RSS
    sampler's one sample (a /proc read) is timed on its own and counts once per 50 ms.
    """
    import keras

    from harness.metrics import RSS_SAMPLE_INTERVAL_S, RssSampler, StepRecord, make_step_timer

    logs = {"loss": 0.5, "accuracy": 0.9}  # what CallbackList hands every callback (already Python floats)

    def best_us(fn: Any) -> float:
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            for step in range(calls):
                fn(step, logs)
            best = min(best, (time.perf_counter() - t) / calls * 1e6)
        return best

    timer = make_step_timer(StepRecord())
    timer.on_epoch_begin(0)
    with_timer = best_us(timer.on_train_batch_end)
    # What Keras pays per step without any user callback (History's no-op + pythonify_logs), for scale.
    cbl = keras.callbacks.CallbackList([], add_history=True, add_progbar=False)
    cbl.on_epoch_begin(0)
    without = best_us(cbl.on_train_batch_end)
    sampler = RssSampler()
    t = time.perf_counter()
    for _ in range(2000):
        sampler._sample()  # noqa: SLF001 - timing the exact work of one sample
    sample_us = (time.perf_counter() - t) / 2000 * 1e6
    return {"step_timer_us_per_step": with_timer, "callbacklist_us_per_step_without_timer": without,
            "rss_sample_us": sample_us, "rss_samples_per_s": 1 / RSS_SAMPLE_INTERVAL_S,
            "rss_sampler_fraction_of_one_core": sample_us * 1e-6 / RSS_SAMPLE_INTERVAL_S}


def _matmul_peak(tf: Any) -> dict[str, Any]:
    """Best-of-trials FLOP/s of fp32 matmul: one large square and the model's first-layer shape."""
    def best_rate(fn: Any, flops: float, reps: int, trials: int = 5) -> float:
        fn()  # trace / warm up
        best = 0.0
        for _ in range(trials):
            t = time.perf_counter()
            fn()
            best = max(best, flops * reps / (time.perf_counter() - t))
        return best

    n = MATMUL_N
    a = tf.random.normal((n, n))
    # A chain c <- c @ b: every product depends on the previous one, so graph optimisation cannot
    # merge repeated identical matmuls; b is scaled to keep the magnitudes bounded.
    b = tf.random.normal((n, n)) / math.sqrt(n)
    reps = 10

    @tf.function
    def big() -> Any:
        c = a
        for _ in range(reps):
            c = tf.linalg.matmul(c, b)
        return tf.reduce_sum(c)

    from harness.models import HIDDEN_UNITS, INPUT_DIM

    x = tf.random.normal((32, INPUT_DIM))
    w = tf.random.normal((INPUT_DIM, HIDDEN_UNITS[0]))
    small_reps = 2000

    @tf.function(jit_compile=True)
    def small() -> Any:
        def body(i: Any, acc: Any) -> tuple[Any, Any]:
            return i + 1, acc + tf.linalg.matmul(x + tf.cast(i, tf.float32), w)

        return tf.while_loop(lambda i, acc: i < small_reps, body,
                             (tf.constant(0), tf.zeros((32, HIDDEN_UNITS[0]))))[1]

    big_rate = best_rate(lambda: big().numpy(), 2.0 * n**3, reps)
    small_rate = best_rate(lambda: small().numpy(), 2.0 * 32 * INPUT_DIM * HIDDEN_UNITS[0], small_reps)
    return {"square_n": n, "square_flops_per_s": big_rate,
            "step_shape": [32, INPUT_DIM, HIDDEN_UNITS[0]], "step_shape_flops_per_s": small_rate}


def _iterate_rate(ds: Any, n: int, epochs: int) -> dict[str, Any]:
    """Samples/s a dataset delivers: consumed in-graph (``Dataset.reduce``, the pipeline's capacity)
    and from Python (one ``next`` per batch, as ``model.fit`` with one step per call pulls it);
    first epoch (cache fill, tracing) excluded, median of the rest."""
    import tensorflow as tf

    in_graph, python = [], []
    for epoch in range(epochs):
        t = time.perf_counter()
        count = int(ds.reduce(tf.constant(0, tf.int64), lambda acc, b: acc + tf.shape(b[0], out_type=tf.int64)[0]))
        if epoch:
            in_graph.append(count / (time.perf_counter() - t))
    for epoch in range(2):
        t = time.perf_counter()
        count = sum(int(batch[0].shape[0]) for batch in ds)
        if epoch:
            python.append(count / (time.perf_counter() - t))
    return {"samples_per_s": statistics.median(in_graph), "samples_per_s_raw": in_graph,
            "python_iteration_samples_per_s": statistics.median(python), "samples_per_epoch": n}


def _gather_rate(tf: Any, x: Any, y: Any, batch_size: int, k: int) -> dict[str, Any]:
    """The fast loop's input stage alone: per-epoch permutation and one ``tf.gather`` per chunk of
    ``k`` batches (as :func:`harness.fastloop.fit` feeds its compiled steps), reduced so it runs."""
    xt, yt = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    n = len(x)
    full = n // batch_size
    k = max(1, min(k, full))
    chunks = -(-full // k)

    @tf.function
    def chunk(index: Any, c: Any) -> Any:
        rows = index[c * k:(c + 1) * k]
        return tf.reduce_sum(tf.gather(xt, rows)) + tf.cast(tf.reduce_sum(tf.gather(yt, rows)), tf.float32)

    rates = []
    for e in range(6):
        t = time.perf_counter()
        perm = tf.random.shuffle(tf.range(n))
        index = tf.reshape(perm[: full * batch_size], (full, batch_size))
        index = tf.concat([index, tf.zeros((chunks * k - full, batch_size), tf.int32)], axis=0)
        total = 0.0
        for c in range(chunks):
            total += float(chunk(index, tf.constant(c)))
        if e:
            rates.append(full * batch_size / (time.perf_counter() - t))
    return {"samples_per_s": statistics.median(rates), "samples_per_s_raw": rates, "samples_per_epoch": n,
            "chunk_steps": k}


# --- statistics and report ---------------------------------------------------------------------


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(values) if values else None


def flops_per_training_sample() -> dict[str, float]:
    """Matmul FLOPs of one training sample of the seed MLP (BN, activations, Adam are < 2 %)."""
    from harness.models import HIDDEN_UNITS, INPUT_DIM, NUM_CLASSES

    dims = [INPUT_DIM, *HIDDEN_UNITS, NUM_CLASSES]
    forward = sum(2.0 * a * b for a, b in zip(dims[:-1], dims[1:], strict=True))
    first = 2.0 * dims[0] * dims[1]
    # Convention: training = 3x forward (forward, input gradients, weight gradients). The first
    # layer needs no input gradient, so the exact count is 3x forward minus that layer's matmul.
    return {"forward": forward, "training_3x_forward": 3 * forward, "training_exact": 3 * forward - first}


def summarize(runs: list[dict[str, Any]], probe: dict[str, Any] | None, args: argparse.Namespace | None,
              paired: dict[str, Any] | None = None) -> dict[str, Any]:
    by: dict[str, list[dict[str, Any]]] = {c: [r for r in runs if r["config"] == c] for c in CONFIGS}
    med = {c: median([r["steady_samples_per_s"] for r in by[c]]) for c in CONFIGS}
    rounds = sorted({r["round"] for r in runs})

    def per_round(fn: Any) -> list[float]:
        out = []
        for rnd in rounds:
            got = {r["config"]: r for r in runs if r["round"] == rnd}
            if all(c in got for c in CONFIGS):
                value = fn(got)
                if value is not None:
                    out.append(value)
        return out

    speedup = per_round(lambda g: g["fast"]["steady_samples_per_s"] / g["seed"]["steady_samples_per_s"])
    overhead = per_round(lambda g: (g["bare"]["steady_samples_per_s"] - g["harness"]["steady_samples_per_s"])
                         / g["bare"]["steady_samples_per_s"])
    overhead_epochs = per_round(lambda g: _epoch_overhead(g["harness"], g["bare"]))
    e2e = per_round(lambda g: g["seed"]["train_time_s"] / g["fast"]["train_time_s"])
    memory = per_round(lambda g: g["fast"]["peak_rss_mb"] / g["seed"]["peak_rss_mb"])

    # Accuracy: one value per seed (a repeated seed retrains identically, so its first run counts).
    acc: dict[int, dict[str, float]] = {}
    for r in runs:
        if r["config"] in ("seed", "fast") and r["test_accuracy"] is not None:
            acc.setdefault(r["seed"], {}).setdefault(r["config"], r["test_accuracy"])
    seeds = sorted(s for s, v in acc.items() if "seed" in v and "fast" in v)
    diffs_pp = [100 * (acc[s]["fast"] - acc[s]["seed"]) for s in seeds]
    seed_accs = [acc[s]["seed"] for s in seeds]
    spread_pp = 100 * statistics.stdev(seed_accs) if len(seed_accs) >= 2 else None
    n_test = _n_test(runs)
    binomial_se_pp = (100 * math.sqrt(statistics.mean(seed_accs) * (1 - statistics.mean(seed_accs)) / n_test)
                      if seed_accs and n_test else None)

    flops = flops_per_training_sample()
    summary: dict[str, Any] = {
        "median_steady_samples_per_s": med,
        "fast_over_seed": {"per_round": speedup, "median": median(speedup), "of_medians": _ratio(med["fast"], med["seed"])},
        "fast_over_seed_end_to_end_fit": {"per_round": e2e, "median": median(e2e),
                                          "note": "fit() wall time incl. compile and validation"},
        "harness_overhead": {"per_round": overhead, "median": median(overhead),
                             "of_medians": _overhead(med["harness"], med["bare"]),
                             "definition": "(d - b) / d of steady training samples/s"},
        "harness_overhead_whole_epochs": {"per_round": overhead_epochs, "median": median(overhead_epochs),
                                          "definition": "(T_b - T_d) / T_b, epochs 2..N incl. validation"},
        "accuracy": {"seeds": seeds, "seed_way": seed_accs, "fast": [acc[s]["fast"] for s in seeds],
                     "diff_pp": diffs_pp, "mean_diff_pp": statistics.mean(diffs_pp) if diffs_pp else None,
                     "seed_to_seed_sd_pp": spread_pp, "n_test": n_test, "binomial_se_pp": binomial_se_pp},
        "memory": {"seed_peak_rss_mb": median([r["peak_rss_mb"] for r in by["seed"]]),
                   "fast_peak_rss_mb": median([r["peak_rss_mb"] for r in by["fast"]]),
                   "fast_over_seed_per_round": memory, "fast_over_seed": median(memory)},
        "flops_per_training_sample": flops,
        "achieved_flops_per_s": {c: (med[c] * flops["training_3x_forward"] if med[c] else None) for c in CONFIGS},
    }
    if paired:
        summary["harness_overhead_paired_in_process"] = {
            "per_pair": paired["overhead_per_pair"], "median": paired["overhead_median"],
            "mean": paired["overhead_mean"], "window_steps": paired["window_steps"],
            "definition": "(T_instrumented - T_bare) / T_instrumented of alternate fit() windows in one process"}
    if probe and probe.get("instrument_cost") and med["harness"]:
        cost = probe["instrument_cost"]
        step_us = 1e6 * 32 / med["harness"]  # batch 32 (the seed experiment)
        summary["harness_overhead_from_instrument_cost"] = {
            "step_timer_us_per_step": cost["step_timer_us_per_step"], "harness_step_us": step_us,
            "rss_sampler_fraction_of_one_core": cost["rss_sampler_fraction_of_one_core"],
            "estimate": cost["step_timer_us_per_step"] / step_us + cost["rss_sampler_fraction_of_one_core"],
            "definition": "timer cost per step / (b)'s step time + sampler CPU share (upper bound: the sampler "
                          "thread may run on the idle core)"}
    if probe:
        peak = probe["matmul"]["square_flops_per_s"]
        summary["matmul_peak_flops_per_s"] = peak
        summary["matmul_step_shape_flops_per_s"] = probe["matmul"]["step_shape_flops_per_s"]
        summary["fraction_of_peak"] = {c: (v / peak if v else None) for c, v in summary["achieved_flops_per_s"].items()}
        feeds = {"tfdata": "harness", "numpy_adapter": "seed", "chunk_gather": "fast"}
        summary["input_over_training"] = {
            stage: {"feeds": feeds[stage], "input_samples_per_s": probe["input"][stage]["samples_per_s"],
                    "training_samples_per_s": med[feeds[stage]],
                    "ratio": _ratio(probe["input"][stage]["samples_per_s"], med[feeds[stage]])}
            for stage in feeds}
    summary["goals"] = _goals(summary)
    return summary


def _epoch_overhead(b: dict[str, Any], d: dict[str, Any]) -> float | None:
    tb, td = sum(b["epoch_time_s"][1:]), sum(d["epoch_time_s"][1:])
    return (tb - td) / tb if tb > 0 and td > 0 else None


def _n_test(runs: list[dict[str, Any]]) -> int | None:
    for r in runs:
        if r.get("n_test"):
            return int(r["n_test"])
    return None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _overhead(b: float | None, d: float | None) -> float | None:
    return (d - b) / d if b and d else None


def _goals(s: dict[str, Any]) -> dict[str, Any]:
    goals: dict[str, Any] = {}
    sp = s["fast_over_seed"]["median"]
    goals["fast_over_seed >= 4x"] = {"value": sp, "met": sp is not None and sp >= GOAL_SPEEDUP}
    md = s["accuracy"]["mean_diff_pp"]
    goals["|mean test-accuracy diff (c - a)| <= 0.5 pp"] = {
        "value": md, "met": md is not None and abs(md) <= GOAL_ACC_DIFF_PP and len(s["accuracy"]["seeds"]) >= 3,
        "seeds": len(s["accuracy"]["seeds"])}
    ov = s["harness_overhead"]["median"]
    goals["harness overhead <= 2 %"] = {"value": ov, "met": ov is not None and ov <= GOAL_OVERHEAD}
    if "harness_overhead_paired_in_process" in s:
        po = s["harness_overhead_paired_in_process"]["median"]
        goals["harness overhead (paired in-process) <= 2 %"] = {"value": po, "met": po is not None and po <= GOAL_OVERHEAD}
    mem = s["memory"]["fast_over_seed"]
    goals["fast peak RSS <= 1.10 x seed"] = {"value": mem, "met": mem is not None and mem <= GOAL_MEMORY_RATIO}
    if "input_over_training" in s:
        for stage, v in s["input_over_training"].items():
            goals[f"input {stage} >= 10 x {v['feeds']} training"] = {
                "value": v["ratio"], "met": v["ratio"] is not None and v["ratio"] >= GOAL_INPUT_RATIO}
    return goals


def render_markdown(report: dict[str, Any]) -> str:
    """A short Markdown table of the figures (pure: data in, text out)."""
    s = report["summary"]
    m = report["machine"]
    f = _fmt
    lines = [
        f"# tfparity performance ({report['finished_utc']})",
        "",
        f"Machine: {m.get('cpu_model')} ({m.get('cpu_count')} CPUs), TF {m.get('tensorflow_version')}, "
        f"Keras {m.get('keras_version')}; load average {f(report['load_average']['min'], 1)}-"
        f"{f(report['load_average']['max'], 1)} during the runs.",
        f"Experiment: model `{report['settings']['model']}`, dataset `{report['settings']['dataset']}`, batch 32, "
        f"{report['settings']['epochs']} epochs for (a)/(c), {report['settings']['overhead_epochs']} for (b)/(d); "
        f"{report['settings']['rounds']} rounds, seeds {s['accuracy']['seeds']}.",
        f"Command: `{report['command']}`",
        "",
        "| configuration | steady samples/s (median) | x seed | train FLOP/s | % of matmul peak | peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for c in CONFIGS:
        rate = s["median_steady_samples_per_s"][c]
        rss = median([r["peak_rss_mb"] for r in report["runs"] if r["config"] == c])
        frac = s.get("fraction_of_peak", {}).get(c)
        lines.append(f"| {LABELS[c]} | {f(rate, 0)} | {f(_ratio(rate, s['median_steady_samples_per_s']['seed']), 2)} | "
                     f"{_si(s['achieved_flops_per_s'][c])} | {f(frac * 100 if frac else None, 1)} | {f(rss, 0)} |")
    lines += ["", "| ratio | median of per-round | per round | goal | met |", "|---|---|---|---|---|"]
    for name, key, goal in (("fast / seed samples/s", "fast_over_seed", ">= 4"),
                            ("fast / seed, whole fit() wall time", "fast_over_seed_end_to_end_fit", "-"),
                            ("harness overhead (d - b) / d", "harness_overhead", "<= 0.02"),
                            ("harness overhead, whole epochs", "harness_overhead_whole_epochs", "-"),
                            ("harness overhead, paired in one process", "harness_overhead_paired_in_process",
                             "<= 0.02")):
        if key not in s:
            continue
        v = s[key]
        v = {**v, "per_round": v.get("per_round", v.get("per_pair", []))}
        met = {"fast_over_seed": "fast_over_seed >= 4x", "harness_overhead": "harness overhead <= 2 %",
               "harness_overhead_paired_in_process": "harness overhead (paired in-process) <= 2 %"}.get(key)
        lines.append(f"| {name} | {f(v['median'], 3)} | {', '.join(f(x, 3) for x in v['per_round'])} | {goal} | "
                     f"{_yes(s['goals'][met]['met']) if met else '-'} |")
    est = s.get("harness_overhead_from_instrument_cost")
    if est:
        lines.append(f"| harness overhead from instrument cost | {f(est['estimate'], 5)} | timer "
                     f"{f(est['step_timer_us_per_step'], 2)} us / step of {f(est['harness_step_us'], 0)} us, sampler "
                     f"{f(100 * est['rss_sampler_fraction_of_one_core'], 3)} % of a core | <= 0.02 | "
                     f"{_yes(est['estimate'] <= GOAL_OVERHEAD)} |")
    a = s["accuracy"]
    lines.append(f"| test accuracy (c) - (a), pp | mean {f(a['mean_diff_pp'], 2)} | {', '.join(f(x, 2) for x in a['diff_pp'])} | "
                 f"abs <= 0.5 | {_yes(s['goals']['|mean test-accuracy diff (c - a)| <= 0.5 pp']['met'])} |")
    lines.append(f"| fast / seed peak RSS | {f(s['memory']['fast_over_seed'], 3)} | "
                 f"{', '.join(f(x, 3) for x in s['memory']['fast_over_seed_per_round'])} | <= 1.10 | "
                 f"{_yes(s['goals']['fast peak RSS <= 1.10 x seed']['met'])} |")
    for stage, v in s.get("input_over_training", {}).items():
        goal = s["goals"][f"input {stage} >= 10 x {v['feeds']} training"]
        lines.append(f"| input {stage} / {v['feeds']} training | {f(v['ratio'], 1)} | "
                     f"{f(v['input_samples_per_s'], 0)} / {f(v['training_samples_per_s'], 0)} samples/s | >= 10 | "
                     f"{_yes(goal['met'])} |")
    lines += ["", f"Seed-to-seed SD of (a)'s test accuracy: {f(a['seed_to_seed_sd_pp'], 2)} pp; binomial SE of one "
              f"accuracy on {a['n_test']} test samples: {f(a['binomial_se_pp'], 2)} pp.",
              f"Matmul peak ({s.get('matmul_peak_flops_per_s') and MATMUL_N}^2 fp32): {_si(s.get('matmul_peak_flops_per_s'))}FLOP/s; "
              f"step-shaped matmul (32x784x128, XLA loop): {_si(s.get('matmul_step_shape_flops_per_s'))}FLOP/s. "
              f"FLOP per training sample (3x forward): {_si(s['flops_per_training_sample']['training_3x_forward'])}.",
              "", report["dataset_note"], ""]
    return "\n".join(lines)


def _fmt(v: float | None, digits: int) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:,.{digits}f}"


def _si(v: float | None) -> str:
    if not v:
        return "n/a"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= scale:
            return f"{v / scale:.2f} {unit}"
    return f"{v:.0f} "


def _yes(met: bool) -> str:
    return "yes" if met else "NO"


def dataset_note(dataset: str, epochs: int) -> str:
    if dataset == "fashion-mnist":
        return ("Dataset choice: Fashion-MNIST, the issue's measurement set: 48,000 training samples give 1,500 steps "
                "per epoch (long steady windows) and 10,000 test samples resolve accuracy to ~0.3 pp (binomial SE), "
                f"finer than the 0.5 pp criterion; {epochs} epochs of the seed way take ~45-55 s on this machine, so "
                "3 rounds fit in the 15-minute budget. mnist-5k would be ~10x cheaper, but its 1,000 test samples "
                "(SE ~0.9 pp) cannot resolve 0.5 pp.")
    return (f"Dataset {dataset!r}: chosen on the command line (Fashion-MNIST is the default for the goals; "
            "smaller sets are for smoke tests and resolve accuracy differences less finely).")


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="benchmarks/perf.py", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/perf", help="output directory (default results/perf)")
    p.add_argument("--dataset", default="fashion-mnist", help="dataset (default fashion-mnist)")
    p.add_argument("--model", default="batchnorm", help="benchmark model (default batchnorm)")
    p.add_argument("--epochs", type=int, default=10, help="epochs of (a) and (c), the full experiment (default 10)")
    p.add_argument("--overhead-epochs", type=int, default=2,
                   help="epochs of (b) and (d); >= 2, the first is warm-up (default 2)")
    p.add_argument("--seeds", type=int, default=3, help="distinct seeds 0..N-1 for the accuracy comparison (default 3)")
    p.add_argument("--rounds", type=int, default=None, help="a,b,c,d rounds; round r uses seed r %% seeds (default: seeds)")
    p.add_argument("--max-train-samples", type=int, default=None, help="limit training samples (smoke tests)")
    p.add_argument("--data-dir", default=None, help="dataset directory (default $TFPARITY_DATA_DIR or ./data)")
    p.add_argument("--timeout", type=float, default=900.0, help="per-process timeout in seconds (default 900)")
    p.add_argument("--skip-probe", action="store_true", help="skip the matmul / input-stage probe")
    p.add_argument("--budget-s", type=float, default=840.0,
                   help="skip the probe / paired check when the rounds leave too little of this (default 840)")
    p.add_argument("--pairs", type=int, default=12,
                   help="300-step window pairs of the in-process instruments-on/off check; 0 skips it (default 12)")
    args = p.parse_args(argv)
    args.rounds = args.rounds or args.seeds
    for name, low in (("epochs", 2), ("overhead_epochs", 2), ("seeds", 1), ("rounds", 1)):
        if getattr(args, name) < low:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= {low}, got {getattr(args, name)!r}")
    RunSpec(benchmark=args.model, dataset=args.dataset, max_train_samples=args.max_train_samples)  # validates names
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("_bare", "_probe", "_paired"):
        return _child_main(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        args = parse_args(argv)
        return run_benchmark(args, argv)
    except UserError as exc:
        print(f"perf: error: {exc}", file=sys.stderr)
        return 2


def _child_main(argv: list[str]) -> int:
    kind, rest = argv[0], argv[1:]
    p = argparse.ArgumentParser(prog=f"perf.py {kind}")
    p.add_argument("paths", nargs="+")
    p.add_argument("--data-dir")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--model", default="batchnorm")
    p.add_argument("--max-train-samples", type=int)
    p.add_argument("--pairs", type=int, default=12)
    a = p.parse_args(rest)
    if kind == "_paired":
        return child_paired(a.paths[0], a.paths[1], a.data_dir, a.pairs)
    if kind == "_bare":
        return child_bare(a.paths[0], a.paths[1], a.data_dir)
    return child_probe(a.paths[0], a.dataset, a.model, a.data_dir, a.max_train_samples)


def run_benchmark(args: argparse.Namespace, argv: list[str]) -> int:
    from harness import data

    started = time.perf_counter()
    started_utc = utc_now()
    stamp = utc_stamp()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_dir = out / f"perf-{stamp}"
    run_dir.mkdir()
    ds = data.load(args.dataset, Path(args.data_dir) if args.data_dir else None)  # missing data: one line, exit 2
    print(f"perf: {args.rounds} round(s) of a,b,c,d on {args.dataset} (model {args.model}) -> {run_dir}", flush=True)

    runs: list[dict[str, Any]] = []
    loads: list[float] = []
    for rnd in range(args.rounds):
        seed = rnd % args.seeds
        specs = make_specs(args, seed)
        round_dir = run_dir / f"round-{rnd + 1:02d}"
        round_dir.mkdir()
        for config in CONFIGS:
            load1 = os.getloadavg()[0]
            loads.append(load1)
            if config == "bare":
                record = run_bare(specs[config], round_dir, args.data_dir, args.timeout)
            else:
                record = run_worker(config, specs[config], round_dir, args.data_dir, args.timeout)
            record.update(config=config, round=rnd + 1, load_average_1m=load1, n_test=ds.info.n_test)
            runs.append(record)
            print(f"perf: round {rnd + 1}/{args.rounds} seed {seed} {LABELS[config]:<22} "
                  f"{_fmt(record['steady_samples_per_s'], 0):>8} samples/s  test acc {_fmt(record['test_accuracy'], 4)}  "
                  f"load {load1:.1f}  [{time.perf_counter() - started:.0f} s]", flush=True)

    # The acceptance budget is 15 minutes on a shared machine: the two extra checks yield when the
    # rounds took longer than planned (what was skipped is printed and recorded).
    skipped = []
    probe = None
    if not args.skip_probe:
        if time.perf_counter() - started > args.budget_s - PROBE_RESERVE_S:
            skipped.append("probe")
        else:
            probe = run_probe(args, run_dir, args.timeout)
    paired = None
    if args.pairs and time.perf_counter() - started > args.budget_s - PAIRED_RESERVE_S:
        skipped.append("paired overhead check")
    elif args.pairs:
        paired = run_paired(make_specs(args, 0)["harness"], run_dir, args.data_dir, args.pairs, args.timeout)
        print(f"perf: in-process paired overhead: median {paired['overhead_median']:+.4f} "
              f"(pairs {', '.join(f'{v:+.4f}' for v in paired['overhead_per_pair'])})", flush=True)
    machine = _machine(runs)
    report = {
        "perf_schema_version": PERF_SCHEMA_VERSION,
        "started_utc": started_utc,
        "finished_utc": utc_now(),
        "wall_time_s": time.perf_counter() - started,
        "command": " ".join([Path(sys.executable).name, "benchmarks/perf.py", *argv]),
        "settings": {"dataset": args.dataset, "model": args.model, "epochs": args.epochs,
                     "overhead_epochs": args.overhead_epochs, "seeds": args.seeds, "rounds": args.rounds,
                     "max_train_samples": args.max_train_samples},
        "machine": machine,
        "load_average": {"min": min(loads), "max": max(loads), "median": statistics.median(loads)},
        "dataset_fingerprint": ds.info.sha256,
        "dataset_note": dataset_note(args.dataset, args.epochs),
        "runs": runs,
        "probe": probe,
        "paired_overhead": paired,
        "skipped_for_budget": skipped,
    }
    for what in skipped:
        print(f"perf: skipped the {what}: {time.perf_counter() - started:.0f} s used of --budget-s {args.budget_s:g}",
              flush=True)
    report["summary"] = summarize(runs, probe, args, paired)
    json_path = write_json_atomic(out / f"perf-{stamp}.json", report)
    md = render_markdown(report)
    md_path = out / f"perf-{stamp}.md"
    md_path.write_text(md, encoding="utf-8")
    print(md)
    print(f"perf: wrote {json_path} and {md_path} in {report['wall_time_s']:.0f} s", flush=True)
    return 0


def _machine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    from harness.results import load_result

    for r in runs:
        if r["config"] != "bare":
            env = load_result(r["result_file"]).environment
            keys = ("cpu_model", "cpu_count", "platform", "python_version", "tensorflow_version", "keras_version",
                    "hostname", "git_commit")
            return {k: env.get(k) for k in keys}
    return {}


if __name__ == "__main__":
    raise SystemExit(main())
