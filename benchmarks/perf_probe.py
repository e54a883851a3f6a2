"""The probe child of ``benchmarks/perf.py``: the machine's matmul peak, the input stages alone and
the cost of the harness's instruments, measured directly (no training).

Started as ``python benchmarks/perf_children.py _probe OUT --dataset D --model M
[--max-train-samples N] [--data-dir D]``. It needs only the worker's TF environment
(:func:`harness.worker.tf_setup.set_tf_environment`) and the data (:func:`harness.data.load`); it
does not use :func:`harness.worker.tf_setup.setup`, which would also turn op determinism on (it
constrains tf.data and kernel choice), something the probe has never measured under. TensorFlow is
imported inside the functions only.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import Any

from harness import data
from harness.spec.benchmarks.mlp import HIDDEN_UNITS, INPUT_DIM
from harness.spec.presets import apply_preset
from harness.spec.run_spec import RunSpec
from harness.store.jsonio import write_json
from harness.worker import pipeline
from harness.worker.metrics import RSS_SAMPLE_INTERVAL_S, RssSampler, StepRecord, make_step_timer
from harness.worker.tf_setup import set_tf_environment

MATMUL_N = 1024


def child_probe(
    out_path: str, dataset_name: str, model_name: str, data_dir: str | None, max_train_samples: int | None
) -> int:
    """``_probe OUT``: matmul peak and the input stages alone (no training).

    Only the worker's TF environment and its data: no :func:`~harness.worker.tf_setup.setup` (no op
    determinism, no dtype policy); Keras's global seed 0 fixes the shuffles.
    """
    set_tf_environment()
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
    out["input"]["chunk_gather"] = _gather_rate(
        tf, parts.x_train, parts.y_train, spec.batch_size, fast.steps_per_execution
    )
    write_json(out_path, out, overwrite=True)
    return 0


def _best_us(fn: Any, calls: int, logs: dict[str, float]) -> float:
    """Best of five: microseconds per ``fn(step, logs)`` call."""
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for step in range(calls):
            fn(step, logs)
        best = min(best, (time.perf_counter() - t) / calls * 1e6)
    return best


def _instrument_cost(calls: int = 200_000) -> dict[str, Any]:
    """CPU cost of the harness's instruments, measured directly (noise-free, unlike run comparisons).

    The step timer's ``on_train_batch_end`` is timed on its own (called with the logs Keras passes);
    for scale, so is Keras's own per-step ``CallbackList.on_train_batch_end`` without it. The RSS
    sampler's one sample (a /proc read) is timed on its own and counts once per 50 ms.
    """
    import keras

    logs = {"loss": 0.5, "accuracy": 0.9}  # what CallbackList hands every callback (already Python floats)
    timer = make_step_timer(StepRecord())
    timer.on_epoch_begin(0)
    with_timer = _best_us(timer.on_train_batch_end, calls, logs)
    # What Keras pays per step without any user callback (History's no-op + pythonify_logs), for scale.
    cbl = keras.callbacks.CallbackList([], add_history=True, add_progbar=False)
    cbl.on_epoch_begin(0)
    without = _best_us(cbl.on_train_batch_end, calls, logs)
    sampler = RssSampler()
    t = time.perf_counter()
    for _ in range(2000):
        sampler._sample()  # noqa: SLF001 - timing the exact work of one sample
    sample_us = (time.perf_counter() - t) / 2000 * 1e6
    return {
        "step_timer_us_per_step": with_timer,
        "callbacklist_us_per_step_without_timer": without,
        "rss_sample_us": sample_us,
        "rss_samples_per_s": 1 / RSS_SAMPLE_INTERVAL_S,
        "rss_sampler_fraction_of_one_core": sample_us * 1e-6 / RSS_SAMPLE_INTERVAL_S,
    }


def _best_rate(fn: Any, flops: float, reps: int, trials: int = 5) -> float:
    """Best-of-trials FLOP/s of ``fn`` (``reps`` products of ``flops`` each), after one warm-up call."""
    fn()  # trace / warm up
    best = 0.0
    for _ in range(trials):
        t = time.perf_counter()
        fn()
        best = max(best, flops * reps / (time.perf_counter() - t))
    return best


def _matmul_peak(tf: Any) -> dict[str, Any]:
    """Best-of-trials FLOP/s of fp32 matmul: one large square and the model's first-layer shape."""
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

    x = tf.random.normal((32, INPUT_DIM))
    w = tf.random.normal((INPUT_DIM, HIDDEN_UNITS[0]))
    small_reps = 2000

    @tf.function(jit_compile=True)
    def small() -> Any:
        def body(i: Any, acc: Any) -> tuple[Any, Any]:
            return i + 1, acc + tf.linalg.matmul(x + tf.cast(i, tf.float32), w)

        start = (tf.constant(0), tf.zeros((32, HIDDEN_UNITS[0])))
        return tf.while_loop(lambda i, acc: i < small_reps, body, start)[1]

    big_rate = _best_rate(lambda: big().numpy(), 2.0 * n**3, reps)
    small_rate = _best_rate(lambda: small().numpy(), 2.0 * 32 * INPUT_DIM * HIDDEN_UNITS[0], small_reps)
    return {
        "square_n": n,
        "square_flops_per_s": big_rate,
        "step_shape": [32, INPUT_DIM, HIDDEN_UNITS[0]],
        "step_shape_flops_per_s": small_rate,
    }


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
    return {
        "samples_per_s": statistics.median(in_graph),
        "samples_per_s_raw": in_graph,
        "python_iteration_samples_per_s": statistics.median(python),
        "samples_per_epoch": n,
    }


def _gather_rate(tf: Any, x: Any, y: Any, batch_size: int, k: int) -> dict[str, Any]:
    """The fast loop's input stage alone: per-epoch permutation and one ``tf.gather`` per chunk of
    ``k`` batches (as :func:`harness.worker.fastloop.fit` feeds its compiled steps), reduced so it runs."""
    xt, yt = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    n = len(x)
    full = n // batch_size
    k = max(1, min(k, full))
    chunks = -(-full // k)

    @tf.function
    def chunk(index: Any, c: Any) -> Any:
        rows = index[c * k : (c + 1) * k]
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
    return {
        "samples_per_s": statistics.median(rates),
        "samples_per_s_raw": rates,
        "samples_per_epoch": n,
        "chunk_steps": k,
    }
