"""Keras's validation split, computed without Keras: which training rows validate.

``validation_split`` follows Keras 3.15 exactly (``train_validation_split`` in
``keras/src/trainers/data_adapters/array_slicing.py``): the *last* ``n - floor(n * (1 - split))``
rows of the training arrays, taken before any shuffling. ``max_train_samples`` limits both parts
alike (:func:`split_sizes`), and a plan whose training or validation part would hold less than one
batch is refused before anything runs (:func:`check_run_split`).
"""

from __future__ import annotations

import math

from harness.errors import ConfigError, DataError
from harness.spec.run_spec import RunSpec


def split_at(n: int, validation_split: float) -> int:
    """Index where Keras splits ``n`` training samples: rows ``[split_at:]`` validate."""
    return int(math.floor(n * (1.0 - validation_split)))


def n_validation(n_train: int, validation_split: float) -> int:
    """Rows Keras's ``validation_split`` takes from the end of ``n_train`` training rows (0: no split)."""
    if not validation_split:
        return 0
    return n_train - split_at(n_train, validation_split)


def check_split(value: object) -> float:
    """A validation split in [0, 1)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not 0.0 <= value < 1.0:  # type: ignore[operator]
        raise DataError(f"validation_split must be a number in [0.0, 1.0), got {value!r}")
    return float(value)  # type: ignore[arg-type]


def split_sizes(n_train: int, validation_split: float, max_train_samples: int | None = None) -> tuple[int, int]:
    """(training, validation) samples a run uses: Keras's split of the first ``max_train_samples``
    (all when None) of ``n_train`` rows, as ``harness.worker.pipeline`` feeds them."""
    keep = n_train if max_train_samples is None else min(n_train, max_train_samples)
    at = split_at(keep, validation_split)
    return at, keep - at


def smallest_valid_samples(spec: RunSpec) -> int:
    """The fewest training rows (before the split) whose parts each hold one batch of ``spec``."""

    def too_small(n: int) -> bool:
        return spec.split_too_small(*split_sizes(n, spec.validation_split))

    low, high = 0, spec.batch_size  # too_small(low) always; double high until it is enough
    while too_small(high):
        low, high = high, 2 * high
    while high - low > 1:  # both part sizes grow with n, so "enough" is monotone: bisect
        mid = (low + high) // 2
        low, high = (mid, high) if too_small(mid) else (low, mid)
    return high


def check_run_split(spec: RunSpec, n_available: int) -> None:
    """Refuse (one line) a training run whose training or validation part is smaller than one batch."""
    n_train, n_val = split_sizes(n_available, spec.validation_split, spec.max_train_samples)
    if spec.mode != "train" or not spec.split_too_small(n_train, n_val):
        return
    limited = spec.max_train_samples is not None and spec.max_train_samples < n_available
    what = f"--max-train-samples {spec.max_train_samples}" if limited else f"{spec.dataset} ({n_available} samples)"
    parts = f"{n_train} training and {n_val} validation" if spec.validation_split else f"{n_train} training"
    need = smallest_valid_samples(spec)
    if need <= n_available:
        fix = f"the smallest valid --max-train-samples is {need}"
    else:
        fix = f"{spec.dataset} has only {n_available} training samples: lower --batch-size or --validation-split"
    raise ConfigError(
        f"{what} gives {parts} samples (validation_split {spec.validation_split:g}), fewer than one batch of "
        f"{spec.batch_size}: each part needs at least one full batch; {fix}"
    )
