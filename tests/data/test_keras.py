"""mnist in Keras format: the offline error, a copied Keras file, and the Keras cache (pinned hash only)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness import data
from harness.data import keras as data_keras
from harness.data.idx import read_idx_set
from harness.errors import DataError
from tests.data.support import FASHION_DIR, needs_fashion, one_line


def test_mnist_offline_fails_fast_with_the_offline_names(keras_probe: dict[str, Any]) -> None:
    """Real Keras, forced offline (see the keras_probe fixture)."""
    out, home, tmp = keras_probe["out"], keras_probe["home"], keras_probe["tmp"]
    for label in ("default", "missing"):
        msg = out[label]
        assert msg != "LOADED"
        assert "\n" not in msg
        assert "could not be downloaded (offline?)" in msg
        assert "tfparity data prepare mnist" in msg and "copy mnist.npz into DATA_DIR" in msg
        assert "mnist-5k, fashion-mnist, synthetic" in msg
        assert str(home / ".keras" / "datasets" / "mnist.npz") in msg  # the tmp HOME's cache, not the real one
        assert out[label + "_s"] < 5.0, out  # ~0.03 s measured; no retries, no long timeouts
    assert str(tmp / "data" / "mnist.npz") in out["default"]
    assert "/nonexistent-tfparity/mnist.npz' (the data dir does not exist)" in out["missing"]
    assert not (home / ".keras" / "datasets" / "mnist.npz").exists()


def _fake_keras_mnist(path: Path, n_train: int = 600, n_test: int = 100) -> dict[str, np.ndarray]:
    """A small file in Keras's mnist.npz layout built from real Fashion-MNIST bytes."""
    src = read_idx_set(FASHION_DIR)
    arrays = {"x_train": src["x_train"][:n_train], "y_train": src["y_train"][:n_train],
              "x_test": src["x_test"][:n_test], "y_test": src["y_test"][:n_test]}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return arrays


@needs_fashion
def test_mnist_from_a_copied_keras_file_then_prepared(tmp_path: Path) -> None:
    arrays = _fake_keras_mnist(tmp_path / "mnist.npz")
    ds = data.load("mnist", tmp_path)
    assert ds.info.source == f"file:{tmp_path / 'mnist.npz'}"
    expected = data.fingerprint(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"])
    assert ds.info.sha256 == expected
    # prepare turns the user copy into a manifested prepared file with the same arrays
    data.prepare("mnist", tmp_path)
    assert (tmp_path / "mnist.sha256").is_file()
    again = data.load("mnist", tmp_path)
    assert again.info.source == f"prepared:{tmp_path / 'mnist.npz'}" and again.info.sha256 == expected


@needs_fashion
def test_mnist_keras_cache_is_used_only_with_the_pinned_hash(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    keras_home = tmp_path / "kh"
    cached = keras_home / "datasets" / "mnist.npz"
    _fake_keras_mnist(cached)
    monkeypatch.setenv("KERAS_HOME", str(keras_home))

    def no_network(name: str) -> dict[str, np.ndarray]:
        raise Exception("URL fetch failure: test has no network")  # what Keras raises offline

    monkeypatch.setattr(data_keras, "download", no_network)
    # Wrong hash (not the file Keras pins): ignored like Keras would, then the offline error.
    with pytest.raises(DataError) as exc:
        data.load("mnist", tmp_path / "empty")
    assert "could not be downloaded" in one_line(exc)
    # The pinned hash: used directly, without Keras.
    monkeypatch.setattr(data_keras, "KERAS_MNIST_SHA256", hashlib.sha256(cached.read_bytes()).hexdigest())
    ds = data.load("mnist", tmp_path / "empty")
    assert ds.info.source == f"keras-cache:{cached}"
