"""Dataset fingerprints: pinned, stable across loads and processes, sensitive to every byte and order."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness import data
from harness.data import Dataset
from tests.data.support import NO_DATA_DIR, PINNED_SHA256, canonical_u8, run_python


def test_fingerprints_are_stable_across_loads_and_pinned(mnist5k: Dataset) -> None:
    again = data.load("mnist-5k", NO_DATA_DIR)
    assert again.info.sha256 == mnist5k.info.sha256 == PINNED_SHA256["mnist-5k"]
    assert data.fingerprint(*canonical_u8(mnist5k)) == mnist5k.info.sha256
    assert data.load("synthetic").info.sha256 == PINNED_SHA256["synthetic"]


def test_fingerprints_are_stable_across_processes(mnist5k: Dataset) -> None:
    proc = run_python(
        "import json, harness.data as d;"
        "print(json.dumps({n: d.load(n).info.sha256 for n in ('mnist-5k', 'synthetic')}))",
        env={"PYTHONHASHSEED": "12345"},  # a different str hash seed must not matter
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"mnist-5k": mnist5k.info.sha256, "synthetic": PINNED_SHA256["synthetic"]}


def test_fingerprint_is_sensitive_to_one_byte_and_to_order(mnist5k: Dataset) -> None:
    x_tr, y_tr, x_te, y_te = canonical_u8(mnist5k)
    base = data.fingerprint(x_tr, y_tr, x_te, y_te)

    x2 = x_tr.copy()
    x2[1234, 400] ^= 1
    assert data.fingerprint(x2, y_tr, x_te, y_te) != base
    y2 = y_te.copy()
    y2[-1] = (y2[-1] + 1) % 10
    assert data.fingerprint(x_tr, y_tr, x_te, y2) != base
    # Reordering the training rows changes which rows Keras validates on: a different dataset.
    swap = np.arange(len(y_tr))
    swap[[0, 1]] = swap[[1, 0]]
    assert data.fingerprint(x_tr[swap], y_tr[swap], x_te, y_te) != base
    # Moving a row from train to test is different data as well.
    assert data.fingerprint(x_tr[:-1], y_tr[:-1], np.vstack([x_te, x_tr[-1:]]), np.append(y_te, y_tr[-1])) != base
    # Same bytes in (n, 28, 28) layout, or labels as int32: the same canonical arrays.
    assert data.fingerprint(x_tr.reshape(-1, 28, 28), y_tr.astype(np.int32), x_te, y_te) == base
    with pytest.raises(ValueError):
        data.fingerprint(x_tr.astype(np.float32), y_tr, x_te, y_te)
