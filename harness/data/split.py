"""Keras's validation split, computed without Keras: which training rows validate.

``validation_split`` follows Keras 3.15 exactly (``train_validation_split`` in
``keras/src/trainers/data_adapters/array_slicing.py``): the *last* ``n - floor(n * (1 - split))``
rows of the training arrays, taken before any shuffling.
"""

from __future__ import annotations

import math

from harness.errors import DataError


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
