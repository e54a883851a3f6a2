"""Canonical arrays, their validation and their fingerprint.

Every built-in dataset yields the same *canonical arrays*: ``uint8`` images of 784 pixels (0-255)
and ``uint8`` labels 0-9, split into train (the validation part included, in the order Keras will
split it) and test. :func:`harness.data.load` scales images to ``float32`` in [0, 1] and labels to
``int32``; :func:`fingerprint` hashes the canonical arrays before scaling, so two runs that report
the same ``dataset.sha256`` trained and tested on byte-identical data. Users' datasets (any shape
and dtype, :mod:`harness.data.arrays`) are hashed by the same :func:`fingerprint_arrays`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import DataError
from harness.store.results import DatasetInfo

FINGERPRINT_VERSION = "tfparity-dataset-fingerprint-v1"
N_PIXELS = 784
IMAGE_SHAPE = (28, 28)
N_CLASSES = 10
ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")
# The order arrays enter a fingerprint; the validation pair only exists for some users' datasets.
FINGERPRINT_ORDER = (*ARRAY_KEYS, "x_val", "y_val")


@dataclass(frozen=True)
class Dataset:
    """Arrays ready for ``model.fit``: train includes the validation part, in Keras's split order,
    unless the dataset brings its own validation arrays (``x_val``/``y_val``, users' datasets)."""

    x_train: np.ndarray  # float32 (n, *sample_shape); the built-ins' (n, 784) in [0, 1]
    y_train: np.ndarray  # int32 (n,)
    x_test: np.ndarray
    y_test: np.ndarray
    info: DatasetInfo
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def n_classes(self) -> int:
        """Classes the labels span: 1 + the largest label of any part."""
        parts = [self.y_train, self.y_test] + ([self.y_val] if self.y_val is not None else [])
        return 1 + max(int(p.max()) for p in parts if p.size)


@dataclass(frozen=True)
class Canonical:
    """The canonical uint8 arrays of a dataset and where they came from."""

    x_train: np.ndarray  # uint8 (n, 784)
    y_train: np.ndarray  # uint8 (n,)
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None


def fingerprint(x_train_u8: np.ndarray, y_train: np.ndarray, x_test_u8: np.ndarray, y_test: np.ndarray) -> str:
    """sha256 hex digest identifying the canonical arrays of a dataset.

    Definition (version ``tfparity-dataset-fingerprint-v1``): images are taken as uint8
    ``(n, 784)`` (``(n, 28, 28)`` is accepted and flattened, same bytes), labels as uint8 ``(n,)``
    (any integer dtype with values 0-255 is accepted). The digest is computed over the UTF-8
    bytes of the version string, then for each array in the order x_train, y_train, x_test,
    y_test: ``"<name>|<dtype.str>|<shape>\\n"`` followed by the array's C-order bytes. It depends
    only on the array contents and order, so it is stable across processes, machines and
    NumPy versions, and any changed, added, removed or reordered byte changes it.
    """
    return fingerprint_arrays(
        {
            "x_train": canonical_images(x_train_u8, "x_train"),
            "y_train": canonical_labels(y_train, "y_train"),
            "x_test": canonical_images(x_test_u8, "x_test"),
            "y_test": canonical_labels(y_test, "y_test"),
        }
    )


def fingerprint_arrays(arrays: dict[str, np.ndarray]) -> str:
    """The fingerprint of canonical arrays of any shape and dtype (the definition of :func:`fingerprint`).

    For each array present, in the order x_train, y_train, x_test, y_test, x_val, y_val:
    ``"<name>|<dtype.str>|<shape>\n"`` and its C-order bytes, after the version string. With the
    four arrays of a built-in dataset this is exactly :func:`fingerprint`'s digest.
    """
    digest = hashlib.sha256(FINGERPRINT_VERSION.encode())
    for key in FINGERPRINT_ORDER:
        if key in arrays:
            canon = np.ascontiguousarray(arrays[key])
            digest.update(f"{key}|{canon.dtype.str}|{canon.shape}\n".encode())
            digest.update(canon.tobytes(order="C"))
    return digest.hexdigest()


def canonical_images(arr: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8 images, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[1:] == IMAGE_SHAPE:
        arr = arr.reshape(arr.shape[0], N_PIXELS)
    if arr.ndim != 2 or arr.shape[1] != N_PIXELS:
        raise ValueError(f"{what} must have shape (n, 784) or (n, 28, 28), got {arr.shape}")
    return np.ascontiguousarray(arr)


def canonical_labels(arr: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what} must be a 1-d integer array, got dtype {arr.dtype} shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ValueError(f"{what} values must be in 0-255, got {arr.min()}..{arr.max()}")
    return np.ascontiguousarray(arr.astype(np.uint8, copy=False))


def validated(arrays: dict[str, np.ndarray], source: str, where: str) -> Canonical:
    """Canonicalise and check four arrays; any problem is a DataError naming ``where``."""
    try:
        x_train = canonical_images(arrays["x_train"], "x_train")
        y_train = canonical_labels(arrays["y_train"], "y_train")
        x_test = canonical_images(arrays["x_test"], "x_test")
        y_test = canonical_labels(arrays["y_test"], "y_test")
    except ValueError as exc:
        raise DataError(f"{where}: {exc}") from None
    for xs, ys, part in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if len(xs) != len(ys):
            raise DataError(f"{where}: {part} has {len(xs)} images but {len(ys)} labels")
        if len(ys) == 0:
            raise DataError(f"{where}: {part} split is empty")
        if ys.max() >= N_CLASSES:
            raise DataError(f"{where}: {part} labels must be 0-{N_CLASSES - 1}, found {int(ys.max())}")
    return Canonical(x_train, y_train, x_test, y_test, source)


def scale(x_u8: np.ndarray) -> np.ndarray:
    out = x_u8.astype(np.float32)
    out /= np.float32(255.0)
    return out


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
