"""``fashion-mnist``: the four IDX files from DATA_DIR or Debian's package, else Keras's download.

Sources in order: ``DATA_DIR/``, ``DATA_DIR/fashion-mnist/``, ``/usr/share/datasets/fashion-mnist/``
(Debian package ``dataset-fashion-mnist``), then ``keras.datasets.fashion_mnist.load_data()``.
Magic numbers, dimensions and payload sizes are checked; a truncated or corrupt gzip names the file.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from harness.data import keras as keras_source
from harness.data.canonical import IMAGE_SHAPE, Canonical, first_line, validated
from harness.errors import DataError

DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
IDX_MAGIC_IMAGES = 0x00000803  # unsigned byte, 3 dimensions
IDX_MAGIC_LABELS = 0x00000801  # unsigned byte, 1 dimension


def load_fashion(ddir: Path, dir_state: str) -> Canonical:
    candidates: list[tuple[Path, str]] = []
    if dir_state == "ok":
        candidates += [(ddir, "data-dir"), (ddir / "fashion-mnist", "data-dir")]
    candidates.append((DEBIAN_FASHION_DIR, "debian"))
    for folder, kind in candidates:
        present = [f for f in IDX_FILES.values() if (folder / f).is_file()]
        if not present:
            continue
        if len(present) < len(IDX_FILES):
            missing = sorted(set(IDX_FILES.values()) - set(present))
            raise DataError(f"'{folder}' holds only part of Fashion-MNIST: missing {', '.join(missing)}")
        arrays = read_idx_set(folder)
        return validated(arrays, f"{kind}:{folder}", f"'{folder}'")
    try:
        arrays = keras_source.download("fashion-mnist")
    except Exception as exc:  # plain Exception offline, like mnist
        raise DataError(
            f"dataset 'fashion-mnist' has no IDX files in '{ddir}' or '{DEBIAN_FASHION_DIR}' and could not be "
            f"downloaded (offline?): {first_line(exc)}; install the Debian package dataset-fashion-mnist, "
            "copy the four *-ubyte.gz files into DATA_DIR, or run `tfparity data prepare fashion-mnist` "
            "elsewhere"
        ) from None
    return validated(arrays, "keras-download:fashion-mnist", "keras.datasets.fashion_mnist")


def read_idx_set(folder: Path) -> dict[str, np.ndarray]:
    """The four Fashion-MNIST/MNIST IDX gz files of ``folder``, validated (images as (n, 28, 28))."""
    arrays = {key: read_idx(folder / fname) for key, fname in IDX_FILES.items()}
    for part in ("train", "test"):
        nx, ny = len(arrays[f"x_{part}"]), len(arrays[f"y_{part}"])
        if nx != ny:
            raise DataError(f"'{folder}': {part} has {nx} images but {ny} labels")
    return arrays


def read_idx(path: Path) -> np.ndarray:
    """Read one gzip-compressed IDX file (unsigned-byte images or labels), checking its header."""
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except PermissionError:
        raise DataError(f"'{path}' is not readable (permission denied)") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"'{path}' is truncated or not a valid gzip file ({type(exc).__name__}: {first_line(exc)})"
        ) from None
    if len(raw) < 8:
        raise DataError(f"'{path}' is too short for an IDX header ({len(raw)} bytes)")
    (magic,) = struct.unpack(">I", raw[:4])
    if magic == IDX_MAGIC_LABELS:
        dims_n = 1
    elif magic == IDX_MAGIC_IMAGES:
        dims_n = 3
    else:
        raise DataError(
            f"'{path}' has IDX magic number {magic:#010x}, expected {IDX_MAGIC_IMAGES:#010x} "
            f"(images) or {IDX_MAGIC_LABELS:#010x} (labels); wrong or corrupt file"
        )
    header_len = 4 + 4 * dims_n
    if len(raw) < header_len:
        raise DataError(f"'{path}' is truncated inside its IDX header")
    dims = struct.unpack(f">{dims_n}I", raw[4:header_len])
    if dims_n == 3 and tuple(dims[1:]) != IMAGE_SHAPE:
        raise DataError(f"'{path}' holds {dims[1]}x{dims[2]} images, expected 28x28")
    expected = math.prod(dims)
    payload = len(raw) - header_len
    if payload != expected:
        raise DataError(f"'{path}' holds {payload} data bytes, its IDX header {tuple(dims)} says {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(dims)
