"""Input pipelines: Keras's validation split, and the tf.data or numpy feeding of ``fit``.

``validation_split`` follows Keras exactly: the *last* ``n - floor(n * (1 - split))`` samples of
the training arrays, taken before any shuffling, so ``--input numpy`` (``fit(x, y,
validation_split=...)``, the seed script's way) and ``--input tfdata`` train and validate on the
same samples. A dataset that brings its own validation arrays (users' datasets, ``x_val``/``y_val``)
validates on exactly those, for both input modes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.data.split import split_at
from harness.spec.run_spec import RunSpec


@dataclass(frozen=True)
class SplitArrays:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


Arrays = tuple[np.ndarray, np.ndarray]


def split_train_val(x: np.ndarray, y: np.ndarray, spec: RunSpec, *, val: Arrays | None = None) -> SplitArrays:
    """Keras-style split, optionally limited to ``spec.max_train_samples`` (train and val shrunk alike);
    with the dataset's own ``val`` arrays, those validate and ``max_train_samples`` limits training only."""
    if val is not None:
        keep = len(x) if spec.max_train_samples is None else min(len(x), spec.max_train_samples)
        return SplitArrays(x[:keep], y[:keep], val[0], val[1])
    at = split_at(len(x), spec.validation_split)
    x_tr, y_tr, x_val, y_val = x[:at], y[:at], x[at:], y[at:]
    if spec.max_train_samples is not None and spec.max_train_samples < len(x):
        keep = spec.max_train_samples
        keep_tr = split_at(keep, spec.validation_split)
        x_tr, y_tr = x_tr[:keep_tr], y_tr[:keep_tr]
        x_val, y_val = x_val[: keep - keep_tr], y_val[: keep - keep_tr]
    return SplitArrays(x_tr, y_tr, x_val, y_val)


def limit_training_arrays(x: np.ndarray, y: np.ndarray, spec: RunSpec) -> tuple[np.ndarray, np.ndarray]:
    """The training arrays the seed way sees: ``fit(x, y, validation_split)`` re-splits them itself."""
    parts = split_train_val(x, y, spec)
    return np.concatenate([parts.x_train, parts.x_val]), np.concatenate([parts.y_train, parts.y_val])


def make_tfdata(parts: SplitArrays, spec: RunSpec) -> tuple[Any, Any | None]:
    """from_tensor_slices -> cache -> shuffle(seeded, full buffer, reshuffled each epoch) -> batch -> prefetch."""
    import tensorflow as tf

    train = (
        tf.data.Dataset.from_tensor_slices((parts.x_train, parts.y_train))
        .cache()
        .shuffle(len(parts.x_train), seed=spec.seed, reshuffle_each_iteration=True)
        .batch(spec.global_batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    val = None
    if len(parts.x_val):
        val = (
            tf.data.Dataset.from_tensor_slices((parts.x_val, parts.y_val))
            .batch(spec.global_batch_size)
            .cache()
            .prefetch(tf.data.AUTOTUNE)
        )
    return train, val


def fit_kwargs(
    x: np.ndarray, y: np.ndarray, spec: RunSpec, *, val: Arrays | None = None
) -> tuple[dict[str, Any], int, int]:
    """Arguments for ``model.fit`` for the spec's input mode, and the training/validation sample counts."""
    if spec.input == "numpy" and val is not None:
        parts = split_train_val(x, y, spec, val=val)
        kwargs = {"x": parts.x_train, "y": parts.y_train, "batch_size": spec.batch_size, "shuffle": True}
        return {**kwargs, "validation_data": val}, len(parts.x_train), len(parts.x_val)
    if spec.input == "numpy":
        x_all, y_all = limit_training_arrays(x, y, spec)
        n_train = split_at(len(x_all), spec.validation_split)
        kwargs = {"x": x_all, "y": y_all, "batch_size": spec.global_batch_size, "shuffle": True}
        if spec.validation_split > 0:
            kwargs["validation_split"] = spec.validation_split
        return kwargs, n_train, len(x_all) - n_train
    parts = split_train_val(x, y, spec, val=val)
    train, val_data = make_tfdata(parts, spec)
    return {"x": train, "validation_data": val_data}, len(parts.x_train), len(parts.x_val)


def own_validation(dataset: Any) -> Arrays | None:
    """The dataset's own validation arrays (a ``harness.data.Dataset``), or None: split as Keras does."""
    if dataset.x_val is None or dataset.y_val is None:
        return None
    return dataset.x_val, dataset.y_val
