"""Fixtures of the data-layer tests: loaded datasets and one real-Keras subprocess, each paid for once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from harness import data
from harness.data import Dataset
from tests.data.support import HAVE_FASHION, NO_DATA_DIR
from tests.helpers import ROOT

# Dataset sizes whose Keras validation split is compared with data.n_validation (keras_probe).
SPLIT_GRID_N = (10, 99, 100, 101, 333, 4000, 6000, 48_001, 60_000)
SPLIT_GRID = (0.1, 0.15, 0.2, 0.25, 0.3, 1 / 3, 0.33, 0.5, 0.7, 0.9, 0.99)


@pytest.fixture(scope="session")
def mnist5k() -> Dataset:
    return data.load("mnist-5k", NO_DATA_DIR)


@pytest.fixture(scope="session")
def fashion() -> Dataset:
    if not HAVE_FASHION:
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    return data.load("fashion-mnist", NO_DATA_DIR)


@pytest.fixture(scope="session")
def keras_probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One subprocess with real Keras (its import costs 4-20 s here, so it is paid once):
    Keras's own validation-split lengths for a grid, and ``load('mnist')`` forced offline by a
    dead proxy (meaningful with or without internet) under a temporary HOME."""
    pytest.importorskip("keras")
    tmp = tmp_path_factory.mktemp("keras_probe")
    home = tmp / "home"
    home.mkdir()
    code = (
        "import json, math, time, keras, numpy as np, harness.data as d\n"  # Keras first: time only load()
        "from harness.errors import DataError\n"
        "from keras.src.trainers.data_adapters.array_slicing import train_validation_split\n"
        "from pathlib import Path\n"
        "out = {'splits': []}\n"
        f"for n in {SPLIT_GRID_N!r}:\n"
        f"    for s in {SPLIT_GRID!r}:\n"
        "        if math.floor(n * (1.0 - s)) in (0, n): continue  # Keras refuses these\n"
        "        _, val = train_validation_split((np.arange(n),), validation_split=s)\n"
        "        out['splits'].append([n, s, len(val[0])])\n"
        "for label, ddir in (('default', None), ('missing', Path('/nonexistent-tfparity'))):\n"
        "    t = time.perf_counter()\n"
        "    try:\n        d.load('mnist', ddir)\n        out[label] = 'LOADED'\n"
        "    except DataError as e:\n        out[label] = str(e)\n"
        "    out[label + '_s'] = time.perf_counter() - t\n"
        "print('RESULT ' + json.dumps(out))\n"
    )
    dead = "http://127.0.0.1:9"
    env = {"HOME": str(home), "https_proxy": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "HTTP_PROXY": dead,
           "no_proxy": "", "NO_PROXY": "", data.DATA_DIR_ENV: str(tmp / "data")}  # fmt: skip
    env_clean = {k: v for k, v in os.environ.items() if k != "KERAS_HOME"}
    proc = subprocess.run([sys.executable, "-c", code], env={**env_clean, "PYTHONPATH": str(ROOT), **env},
                          cwd=tmp, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    return {"out": json.loads(line[len("RESULT ") :]), "home": home, "tmp": tmp}
