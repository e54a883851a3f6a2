"""Datasets: a registry of named, fingerprinted sources with deterministic splits (TF-free).

:func:`load` gives arrays ready for training plus a :class:`~harness.store.results.DatasetInfo`
whose ``sha256`` fingerprints the canonical bytes (:mod:`harness.data.canonical`);
:func:`prepare` writes them to ``DATA_DIR/NAME.npz`` for containers and offline hosts.
Sources per dataset: :mod:`harness.data.registry`.
"""

from harness.data.canonical import Dataset, fingerprint
from harness.data.registry import (
    DATA_DIR_ENV,
    container_file,
    default_data_dir,
    describe_datasets,
    load,
    prepare,
    prepare_for_container,
)
from harness.data.split import n_validation, split_at

__all__ = [
    "DATA_DIR_ENV",
    "Dataset",
    "container_file",
    "default_data_dir",
    "describe_datasets",
    "fingerprint",
    "load",
    "n_validation",
    "prepare",
    "prepare_for_container",
    "split_at",
]
