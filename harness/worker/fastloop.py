"""A compiled multi-step training loop: the same experiment as ``model.fit``, less per-step overhead.

At batch 32 this model costs ~0.65 MFLOP per training sample, so a step is dominated by the
Python/TF dispatch around it, not by arithmetic (TF-FACTS.md). Keras's ``steps_per_execution``
removes the Python part but still runs one ``tf.data`` ``get_next_as_optional`` plus a
``tf.cond`` and an XLA launch per step. This loop keeps the data in memory; per chunk of
``steps_per_execution`` batches it gathers the chunk's rows with one ``tf.gather`` and runs the
steps inside *one* ``tf.function`` (one XLA cluster when the model was compiled with
``jit_compile=True``): a ``tf.while_loop`` calling the model's own :meth:`keras.Model.train_step`.

What stays the same as ``model.fit`` (the experiment does not change):

* the model, its initial weights, loss, optimizer (the compiled ``model.optimizer``) and metrics:
  every step is ``model.train_step``, so the loss tracker, the accuracy metric and the optimizer
  update are Keras's own code;
* batch size, epochs, the training/validation split (the caller passes the split arrays);
* the data order, sample for sample, of either input mode of the harness (``order``):
  ``"numpy"`` is ``model.fit(x, y, batch_size, shuffle=True)`` on arrays (the seed script's way):
  the permutation is drawn by Keras's own ``ArrayDataAdapter`` applied to indices;
  ``"tfdata"`` is :func:`harness.worker.pipeline.make_tfdata`: ``Dataset.shuffle(n, seed=seed,
  reshuffle_each_iteration=True)`` applied to indices. Either way batches are consecutive
  slices of ``batch_size`` with a final partial batch, and the permutation source is iterated
  exactly as Keras 3.15's epoch iterator does: one iterator per epoch plus one unused iterator at
  the end of every epoch (``trainers/epoch_iterator.py``; it advances the tf.data reshuffle).
  Without XLA and with op determinism the history is therefore identical to ``model.fit``
  (tested for both modes). Measured on this machine: with the global TF seed set
  (``keras.utils.set_random_seed``), the array adapter draws the *same* permutation every epoch;
  ``tfdata`` draws a new one per epoch. Both are reproduced as they are;
* per-epoch logs (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``) computed like Keras:
  metrics reset at each epoch, validation in order after each epoch;
* the Keras callback protocol: ``on_train_batch_end(end_step, logs)`` once per executed chunk
  (like ``steps_per_execution``), so :func:`harness.worker.metrics.make_step_timer` and any other
  callback work unchanged, and a ``keras.callbacks.History`` is returned.

What differs: the steps of one chunk run without returning to Python, and whether they run as
one XLA cluster follows ``model.jit_compile`` (read back as evidence as usual).

Under a ``tf.distribute`` strategy (replicas) every step is ``strategy.run`` of the same step on each
replica's share of the global batch, called from inside the loop
(:func:`harness.worker.distribute.step_functions`): bit-identical to ``model.fit`` under the same
strategy, also with several steps per call, which Keras's own ``steps_per_execution`` cannot run there.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from harness.worker import distribute

log = logging.getLogger(__name__)

ORDERS = ("tfdata", "numpy")  # the data order of the harness's input modes (RunSpec.input)


def fit(
    model: Any,
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    batch_size: int,
    epochs: int,
    seed: int,
    steps_per_execution: int,
    order: str = "tfdata",
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    callbacks: list[Any] | None = None,
    strategy: Any | None = None,
) -> Any:
    """Train a compiled Keras ``model`` like ``model.fit(..., verbose=0)``; returns its ``History``.

    ``steps_per_execution`` steps run per compiled call (and per ``on_train_batch_end``); the
    loops are XLA-compiled exactly when ``model.jit_compile`` is true. ``order`` is the data order
    of ``"tfdata"`` or ``"numpy"`` input (see the module docstring); ``seed`` is the tf.data
    shuffle seed (the run seed) and is not used by ``"numpy"``, whose order follows the global
    TF seed like ``model.fit``. ``strategy``: the ``tf.distribute`` strategy the model was built
    under (None: one device); ``batch_size`` is then the global batch.
    """
    # Cannot be split without hiding the design: the closures below share the model, the data and
    # the chunk geometry, and the epoch loop mirrors Keras's own fit loop step for step (callbacks,
    # metric resets, the spent permutation draw), which is what keeps it bit-identical to fit().
    import keras
    import tensorflow as tf

    if batch_size < 1 or epochs < 1 or steps_per_execution < 1:
        raise ValueError(
            f"batch_size, epochs and steps_per_execution must be >= 1, got "
            f"{batch_size!r}, {epochs!r}, {steps_per_execution!r}"
        )
    n = int(len(x_train))
    if n == 0 or len(y_train) != n:
        raise ValueError(f"need equally long, non-empty training arrays, got {len(x_train)} and {len(y_train)}")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if model.optimizer is None:
        raise ValueError("the model must be compiled (optimizer, loss, metrics) before fastloop.fit")

    x = tf.convert_to_tensor(x_train)
    y = tf.convert_to_tensor(y_train)
    full = n // batch_size
    remainder = n - full * batch_size
    num_batches = full + (1 if remainder else 0)
    jit = bool(model.jit_compile)
    train_step, test_step = distribute.step_functions(model, strategy)

    with distribute.build_scope(strategy):
        _build(model, x[:batch_size], y[:batch_size])

    permutations = _permutation_source(order, n, seed)

    k = min(steps_per_execution, full) if full else 1
    chunks = -(-full // k) if full else 0

    def run_steps(xs: Any, ys: Any, count: Any) -> dict[str, Any]:
        """Steps on ``xs[i], ys[i]`` for ``i < count`` (XLA-compiled when the model is)."""

        def body(i: Any) -> tuple[Any]:
            train_step(xs[i], ys[i])
            return (i + 1,)

        tf.while_loop(lambda i: i < count, body, (tf.constant(0),))
        return _metric_results(model)

    run_steps_fn = tf.function(run_steps, jit_compile=jit)

    def train_chunk(index: Any, chunk: Any, count: Any) -> dict[str, Any]:
        """One chunk of ``k`` batches: gather its rows with TF's gather kernel, then run the steps.

        The gather stays outside the XLA cluster on purpose: XLA's CPU gather copied a 32-row
        batch in ~60 us (measured), TF's kernel moves a whole [k, batch] chunk at memcpy speed.
        ``index`` is padded to whole chunks so every call has the same shapes (one compilation).
        """
        rows = index[chunk * k : (chunk + 1) * k]
        result: dict[str, Any] = run_steps_fn(tf.gather(x, rows), tf.gather(y, rows), count)
        return result

    def train_batch(rows: Any) -> dict[str, Any]:
        train_step(tf.gather(x, rows), tf.gather(y, rows))
        return _metric_results(model)

    train_chunk_fn = tf.function(train_chunk)
    train_batch_fn = tf.function(train_batch, jit_compile=jit, reduce_retracing=True)
    evaluate = None
    if validation_data is not None:
        evaluate = _make_evaluator(test_step, model, validation_data, batch_size, jit)

    cb = keras.callbacks.CallbackList(
        callbacks, add_history=True, add_progbar=False, verbose=0, epochs=epochs, steps=num_batches, model=model
    )
    model.stop_training = False
    cb.on_train_begin()
    logs: dict[str, Any] = {}
    for epoch in range(epochs):
        model.reset_metrics()
        cb.on_epoch_begin(epoch)
        perm = tf.cast(_first(next(iter(permutations))), tf.int32)
        index = tf.reshape(perm[: full * batch_size], (full, batch_size))
        if chunks * k > full:  # pad to whole chunks; padded rows are never trained on (count)
            index = tf.concat([index, tf.zeros((chunks * k - full, batch_size), tf.int32)], axis=0)
        for chunk in range(chunks):
            begin, end = chunk * k, min((chunk + 1) * k, full)
            cb.on_train_batch_begin(begin)
            step_logs = train_chunk_fn(index, tf.constant(chunk, tf.int32), tf.constant(end - begin, tf.int32))
            cb.on_train_batch_end(end - 1, step_logs)
            if model.stop_training:
                break
        if remainder and not model.stop_training:
            cb.on_train_batch_begin(full)
            step_logs = train_batch_fn(perm[full * batch_size :])
            cb.on_train_batch_end(full, step_logs)
        epoch_logs = {name: float(v) for name, v in _metric_results(model).items()}
        if evaluate is not None:
            cb.on_test_begin()
            val_logs = evaluate()
            cb.on_test_end(val_logs)
            epoch_logs.update({f"val_{name}": v for name, v in val_logs.items()})
        cb.on_epoch_end(epoch, epoch_logs)
        logs = epoch_logs
        iter(permutations)  # the draw Keras's epoch iterator spends at the end of an epoch (see module doc)
        if model.stop_training:
            break
    model.optimizer.finalize_variable_values(model.trainable_weights)
    cb.on_train_end(logs=logs)
    return model.history


def evaluate(
    model: Any, x: np.ndarray, y: np.ndarray, *, batch_size: int, strategy: Any | None = None
) -> dict[str, float]:
    """``model.evaluate(x, y, batch_size)``'s logs (in order, batch by batch) with this loop's test step,
    under ``strategy`` when given (each replica its share of every global batch)."""
    _, test_step = distribute.step_functions(model, strategy)
    evaluator = _make_evaluator(test_step, model, (x, y), batch_size, bool(model.jit_compile))
    if evaluator is None:
        raise ValueError("cannot evaluate on no samples")
    logs: dict[str, float] = evaluator()
    return logs


def _permutation_source(order: str, n: int, seed: int) -> Any:
    """A dataset whose first element is one epoch's permutation of ``range(n)``, drawn like the input mode."""
    import tensorflow as tf

    if order == "tfdata":
        # The harness pipeline's shuffle (pipeline.make_tfdata) on indices: same op, same seeds.
        return tf.data.Dataset.range(n).cache().shuffle(n, seed=seed, reshuffle_each_iteration=True).batch(n)
    # Keras's own array adapter on indices with one batch of n: its permutation op does not depend
    # on the arrays or the batch size, so it draws what fit(x, y, shuffle=True) draws.
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

    return ArrayDataAdapter(np.arange(n, dtype=np.int64), batch_size=n, shuffle=True).get_tf_dataset()


def _first(element: Any) -> Any:
    """The tensor of a dataset element that may come wrapped in a 1-tuple."""
    while isinstance(element, (tuple, list)):
        element = element[0]
    return element


def _metric_results(model: Any) -> dict[str, Any]:
    """The model's metrics as a flat dict, like ``Model.get_metrics_result`` (usable in a tf.function)."""
    return dict(model.get_metrics_result())


def _build(model: Any, x_batch: Any, y_batch: Any) -> None:
    """Create optimizer and metric variables before tracing (tf.function must not create them later)."""
    symbolic_build = getattr(model, "_symbolic_build", None)
    if symbolic_build is not None:  # what model.fit does first (Keras 3)
        symbolic_build(data_batch=(x_batch, y_batch))
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def _make_evaluator(
    test_step: Any, model: Any, validation_data: tuple[np.ndarray, np.ndarray], batch_size: int, jit: bool
) -> Any:
    """A function returning validation logs (in order, batch by batch, like ``model.evaluate``);
    ``test_step(x, y)`` runs one batch (see :func:`harness.worker.distribute.step_functions`)."""
    import tensorflow as tf

    x_val, y_val = validation_data
    n = int(len(x_val))
    if n == 0:
        return None
    xv = tf.convert_to_tensor(x_val)
    yv = tf.convert_to_tensor(y_val)
    full = n // batch_size
    remainder = n - full * batch_size

    def test_all() -> dict[str, Any]:
        def body(i: Any) -> tuple[Any]:
            rows = i * batch_size + tf.range(batch_size)  # static length: XLA needs static shapes
            test_step(tf.gather(xv, rows), tf.gather(yv, rows))
            return (i + 1,)

        tf.while_loop(lambda i: i < full, body, (tf.constant(0),))
        return _metric_results(model)

    def test_tail() -> dict[str, Any]:
        test_step(xv[full * batch_size :], yv[full * batch_size :])
        return _metric_results(model)

    test_all_fn = tf.function(test_all, jit_compile=jit)
    test_tail_fn = tf.function(test_tail, jit_compile=jit)

    def evaluate() -> dict[str, float]:
        model.reset_metrics()
        out = test_all_fn() if full else {}
        if remainder:
            out = test_tail_fn()
        return {k: float(v) for k, v in out.items()}

    return evaluate
