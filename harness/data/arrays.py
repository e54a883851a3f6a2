"""Users' own arrays: ``--dataset npz:PATH`` files and plugin datasets, validated, canonical and fingerprinted.

A user dataset is six arrays: ``x_train, y_train, x_test, y_test`` and optionally ``x_val, y_val``
(then the validation data is exactly those rows, not a split of the training rows). Samples may
have any shape and any real numeric dtype; labels are 1-d integer class ids ``0..n-1``. The
canonical form keeps the images' dtype and shape (little-endian, C order) and stores labels as
uint8 when they fit, int64 otherwise, so the fingerprint (:func:`harness.data.canonical.fingerprint_arrays`,
the built-ins' algorithm) does not depend on how a file happened to store its labels. Training
uses float32 samples; uint8 samples are scaled to [0, 1] as the built-in datasets are. Every
problem is one :class:`DataError` line naming the array and what is wrong with it.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.canonical import Canonical, first_line
from harness.data.npz import PREPARED_FILE_MODE, manifest_path, read_manifest
from harness.errors import DataError
from harness.store.atomic import write_atomic

REQUIRED = ("x_train", "y_train", "x_test", "y_test")
OPTIONAL = ("x_val", "y_val")
PARTS = (("x_train", "y_train"), ("x_test", "y_test"), ("x_val", "y_val"))
MAX_LABEL = 2**31 - 1  # labels become int32 for Keras


def canonical_arrays(arrays: Mapping[str, Any], source: str, where: str) -> Canonical:
    """Check six (or four) arrays and put them in canonical form; DataError names the bad array."""
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise DataError(f"{where}: missing array(s) {missing}; a dataset has {', '.join(REQUIRED)} (+ x_val, y_val)")
    present = [k for k in OPTIONAL if k in arrays]
    if len(present) == 1:
        other = "y_val" if present[0] == "x_val" else "x_val"
        raise DataError(f"{where}: {present[0]} is given without {other}; give both or neither")
    canon: dict[str, np.ndarray] = {}
    for x_key, y_key in PARTS:
        if x_key in arrays:
            canon[x_key] = _samples(arrays[x_key], x_key, where)
            canon[y_key] = _labels(arrays[y_key], y_key, where)
            if len(canon[x_key]) != len(canon[y_key]):
                raise DataError(
                    f"{where}: {x_key} has {len(canon[x_key])} rows but {y_key} has {len(canon[y_key])} labels"
                )
    _check_agreement(canon, where)
    return Canonical(
        canon["x_train"], canon["y_train"], canon["x_test"], canon["y_test"], source,
        x_val=canon.get("x_val"), y_val=canon.get("y_val"),
    )  # fmt: skip


def _samples(value: Any, key: str, where: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise DataError(f"{where}: {key} has non-numeric dtype {arr.dtype} (samples must be integers or floats)")
    if arr.ndim < 2:
        raise DataError(f"{where}: {key} must have one row per sample, shape (n, ...), got shape {arr.shape}")
    if len(arr) == 0:
        raise DataError(f"{where}: {key} is empty")
    if arr.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        if bad:
            raise DataError(f"{where}: {key} has {bad} non-finite value(s) (NaN or infinity)")
    return np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"), copy=False))


def _labels(value: Any, key: str, where: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise DataError(f"{where}: {key} must hold integer class labels 0..n-1, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise DataError(f"{where}: {key} must be 1-d class labels (not one-hot), got shape {arr.shape}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > MAX_LABEL):
        raise DataError(
            f"{where}: {key} labels out of range: found {int(arr.min())}..{int(arr.max())}, labels must be 0..n-1"
        )
    small = not arr.size or int(arr.max()) <= 255
    return np.ascontiguousarray(arr.astype(np.uint8 if small else "<i8"))


def _check_agreement(canon: dict[str, np.ndarray], where: str) -> None:
    shape = canon["x_train"].shape[1:]
    for key in ("x_test", "x_val"):
        if key in canon and canon[key].shape[1:] != shape:
            raise DataError(
                f"{where}: {key} samples have shape {canon[key].shape[1:]}, x_train's have {shape}; they must agree"
            )
    classes = int(canon["y_train"].max()) + 1
    for key in ("y_test", "y_val"):
        if key in canon and int(canon[key].max()) >= classes:
            raise DataError(
                f"{where}: {key} labels out of range: found label {int(canon[key].max())}, "
                f"but y_train's labels are 0..{classes - 1}"
            )


def as_dict(canon: Canonical) -> dict[str, np.ndarray]:
    """The canonical arrays by name (the validation pair only when the dataset has one)."""
    out = {"x_train": canon.x_train, "y_train": canon.y_train, "x_test": canon.x_test, "y_test": canon.y_test}
    if canon.x_val is not None and canon.y_val is not None:
        out.update(x_val=canon.x_val, y_val=canon.y_val)
    return out


def read_user_npz(path: Path, *, expected_sha256: str | None = None, source: str | None = None) -> Canonical:
    """A user's .npz file (or a prepared copy with its manifest digest), validated and canonical."""
    where = f"npz file '{path}'"
    try:
        if expected_sha256 is not None:
            actual = hashlib.sha256(path.read_bytes()).hexdigest()
            if actual != expected_sha256:
                raise DataError(f"{where}: checksum mismatch with its manifest (truncated or modified)")
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in (*REQUIRED, *OPTIONAL) if k in npz.files}
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{where} does not exist") from None
    except PermissionError:
        raise DataError(f"{where} is not readable (permission denied)") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        # allow_pickle=False refuses object arrays with a ValueError: a non-numeric dtype too.
        raise DataError(f"{where} cannot be read as numeric arrays ({type(exc).__name__}: {first_line(exc)})") from None
    return canonical_arrays(arrays, source or f"npz:{path}", where)


def read_prepared(path: Path, source: str) -> Canonical:
    """A prepared copy (``tfparity`` wrote it for a container), checked against its manifest."""
    return read_user_npz(path, expected_sha256=read_manifest(manifest_path(path), path), source=source)


def write_prepared_arrays(canon: Canonical, npz_path: Path) -> str:
    """Write the canonical arrays and their manifest (both atomic, world-readable); returns the digest."""
    buf = io.BytesIO()
    np.savez(buf, **as_dict(canon))  # type: ignore[arg-type]  # numpy stubs type **kwds poorly
    payload = buf.getvalue()
    digest = hashlib.sha256(payload).hexdigest()
    # Manifest first: a crash between the renames leaves a mismatch the reader reports, never a stale pass.
    write_atomic(manifest_path(npz_path), f"{digest}  {npz_path.name}\n".encode(), overwrite=True,
                 mode=PREPARED_FILE_MODE)  # fmt: skip
    write_atomic(npz_path, payload, overwrite=True, mode=PREPARED_FILE_MODE)
    return digest


def training_samples(x: np.ndarray) -> np.ndarray:
    """float32 samples for training: uint8 scaled to [0, 1] (as the built-in datasets), others cast."""
    if x.dtype == np.uint8:
        out = x.astype(np.float32)
        out /= np.float32(255.0)
        return out
    return x.astype(np.float32)
