"""The real Keras loading path for ``mnist`` and ``fashion-mnist``: the Keras cache, then a download.

The only place outside the worker that may import TensorFlow (through Keras), and only when a
dataset has no local copy. TensorFlow's C++ start-up lines ignore ``TF_CPP_MIN_LOG_LEVEL`` in 2.21
(TF-FACTS.md); they are kept off the user's terminal (file descriptor 2 is redirected around the
import and the text is logged at debug level), so that a failure stays one line.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.canonical import Canonical, first_line, validated
from harness.data.npz import read_npz
from harness.errors import DataError
from harness.spec.names import OFFLINE_DATASETS

log = logging.getLogger(__name__)

# The sha256 Keras 3.15 pins for mnist.npz (keras/src/datasets/mnist.py).
KERAS_MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"


def keras_home() -> Path:
    """Where Keras caches downloads, resolved the way Keras 3.15 resolves it (without importing it)."""
    env = os.environ.get("KERAS_HOME")
    if env:
        return Path(env).expanduser()
    return Path(os.path.expanduser("~")) / ".keras"


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Redirect file descriptor 2 (C++ logging writes there, not to ``sys.stderr``) to a temp file."""
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", errors="replace").strip()
            if text:
                log.debug("TensorFlow start-up output: %s", text[-2000:])


def import_keras() -> Any:
    """``import keras`` with TensorFlow's start-up chatter kept off the terminal."""
    with quiet_stderr():
        import keras
    return keras


def download(name: str) -> dict[str, np.ndarray]:
    """Download ``mnist`` or ``fashion-mnist`` through ``keras.datasets`` (needs the internet)."""
    keras = import_keras()
    module = {"mnist": keras.datasets.mnist, "fashion-mnist": keras.datasets.fashion_mnist}[name]
    # Keras prints download progress on stdout, where the worker's progress protocol runs and a
    # failure must stay one line: capture it and log it instead.
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            (x_train, y_train), (x_test, y_test) = module.load_data()
    finally:
        if captured.getvalue().strip():
            log.info("keras.datasets %s: %s", name, captured.getvalue().strip()[-300:])
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def load_mnist(ddir: Path, dir_state: str) -> Canonical:
    """``mnist`` from the Keras cache (sha256 checked) or Keras's download."""
    cached = keras_home() / "datasets" / "mnist.npz"
    if cached.is_file():
        try:
            return read_npz(
                cached, "mnist", has_manifest=False, expected_sha256=KERAS_MNIST_SHA256, source=f"keras-cache:{cached}"
            )
        except DataError as exc:
            # Keras itself re-downloads a cache file whose hash is wrong; let it try.
            log.warning("ignoring the Keras cache: %s", exc)
    try:
        arrays = download("mnist")
    except Exception as exc:  # Keras raises a plain Exception offline (TF-FACTS.md)
        missing = " (the data dir does not exist)" if dir_state == "missing" else ""
        raise DataError(
            f"dataset 'mnist' is not in '{ddir / 'mnist.npz'}'{missing} nor in the Keras cache '{cached}', and "
            f"could not be downloaded (offline?): {first_line(exc)}; run `tfparity data prepare mnist` on a "
            "machine with internet and use its data dir, or copy mnist.npz into DATA_DIR; offline datasets: "
            f"{', '.join(OFFLINE_DATASETS)}"
        ) from None
    return validated(arrays, "keras-download:mnist", "keras.datasets.mnist")
