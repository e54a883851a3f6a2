"""Prepared .npz files: prepare -> load round trip, manifests, and every way a prepared file can be broken."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest

from harness import data
from harness.errors import DataError
from tests.data.support import PINNED_SHA256, flip_byte, needs_fashion, one_line


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


def test_prepared_files_are_readable_by_others_under_a_strict_umask(tmp_path: Path) -> None:
    # A non-root container user reads the mounted data dir: 0644 even when the host's umask is 077.
    before = os.umask(0o077)
    try:
        path = data.prepare("synthetic", tmp_path)
    finally:
        os.umask(before)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "synthetic.sha256").stat().st_mode) == 0o644


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


def test_modified_prepared_file_is_a_checksum_mismatch(tmp_path: Path) -> None:
    path = data.prepare("synthetic", tmp_path)
    flip_byte(path, path.stat().st_size // 2)
    with pytest.raises(DataError) as exc:
        data.load("synthetic", tmp_path)
    msg = one_line(exc)
    assert "checksum mismatch" in msg and str(path) in msg and "tfparity data prepare synthetic" in msg


def test_truncated_prepared_file_is_refused(tmp_path: Path) -> None:
    path = data.prepare("synthetic", tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(DataError) as exc:
        data.load("synthetic", tmp_path)
    assert "checksum mismatch" in one_line(exc)
    # Without the manifest the file itself is found to be broken.
    (tmp_path / "synthetic.sha256").unlink()
    with pytest.raises(DataError) as exc:
        data.load("synthetic", tmp_path)
    msg = one_line(exc)
    assert "truncated or corrupt" in msg and str(path) in msg


def test_manifest_without_a_line_for_the_file_is_refused(tmp_path: Path) -> None:
    data.prepare("synthetic", tmp_path)
    (tmp_path / "synthetic.sha256").write_text("not a checksum\n")
    with pytest.raises(DataError) as exc:
        data.load("synthetic", tmp_path)
    assert "no sha256 line" in one_line(exc)


def test_unmanifested_file_with_wrong_arrays_is_refused(tmp_path: Path) -> None:
    valid = {"x_train": np.zeros((10, 784), np.uint8), "y_train": np.zeros(10, np.uint8),
             "x_test": np.zeros((2, 784), np.uint8), "y_test": np.zeros(2, np.uint8)}  # fmt: skip
    np.savez(tmp_path / "synthetic.npz", **{**valid, "x_train": np.zeros((10, 784), np.float32)})
    with pytest.raises(DataError) as exc:
        data.load("synthetic", tmp_path)
    assert "uint8" in one_line(exc)
    np.savez(tmp_path / "synthetic.npz", x_train=valid["x_train"])
    with pytest.raises(DataError) as exc:
        data.load("synthetic", tmp_path)
    assert "lacks array(s)" in one_line(exc)
    np.savez(tmp_path / "synthetic.npz", **{**valid, "y_train": np.full(10, 12, np.uint8)})
    with pytest.raises(DataError) as exc:
        data.load("synthetic", tmp_path)
    assert "labels must be 0-9" in one_line(exc)
