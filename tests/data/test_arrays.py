"""Users' own datasets (``--dataset npz:PATH``, plugin datasets): real files validated, fingerprinted with the
built-ins' algorithm, prepared for containers; every bad file is one line naming the array and the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness import data
from harness.data.arrays import read_user_npz
from harness.data.canonical import fingerprint_arrays
from harness.errors import DataError
from harness.spec.names import npz_dataset_name
from tests.data.support import PINNED_SHA256, canonical_u8, one_line
from tests.factories import npz_file, plugin_file


def load(path: Path) -> data.Dataset:
    return data.load(npz_dataset_name(str(path)), file=str(path))


def test_the_general_fingerprint_is_the_builtins(mnist5k: data.Dataset) -> None:
    x_tr, y_tr, x_te, y_te = canonical_u8(mnist5k)
    arrays = {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te}
    assert fingerprint_arrays(arrays) == PINNED_SHA256["mnist-5k"] == mnist5k.info.sha256


def test_an_npz_dataset_loads_fingerprinted(tmp_path: Path) -> None:
    path = npz_file(tmp_path / "cells.npz", shape=(4, 4), classes=3)
    ds = load(path)
    assert ds.info.name == "npz-cells" and ds.info.source == f"npz:{path}"
    assert (ds.info.n_train, ds.info.n_val, ds.info.n_test) == (120, 24, 40)  # Keras's 20 % split
    assert ds.sample_shape == (4, 4) and ds.n_classes == 3
    assert ds.x_train.dtype == np.float32 and float(ds.x_train.max()) <= 1.0  # uint8 scaled like the built-ins
    with np.load(path) as npz:
        assert np.array_equal(ds.x_test, npz["x_test"].astype(np.float32) / 255)
    # The label dtype of the file does not matter; any changed byte does.
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    same = npz_file(tmp_path / "again.npz", **{**arrays, "y_train": arrays["y_train"].astype(np.int16)})
    assert load(same).info.sha256 == ds.info.sha256
    arrays["x_test"][0, 0, 0] ^= 1
    assert load(npz_file(tmp_path / "other.npz", **arrays)).info.sha256 != ds.info.sha256


def test_own_validation_arrays_are_the_validation_data(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x_val = rng.normal(size=(30, 6)).astype(np.float64)
    path = npz_file(tmp_path / "v.npz", shape=(6,), x_train=rng.normal(size=(120, 6)), x_test=rng.normal(size=(40, 6)),
                    x_val=x_val, y_val=np.arange(30) % 3)  # fmt: skip
    ds = load(path)
    assert ds.x_val is not None and ds.y_val is not None and np.allclose(ds.x_val, x_val)
    assert (ds.info.n_train, ds.info.n_val) == (150, 30)  # training rows include the validation rows
    assert ds.x_train.dtype == np.float32  # floats are cast, not scaled
    without = load(npz_file(tmp_path / "nov.npz", shape=(6,), x_train=ds.x_train, x_test=ds.x_test))
    assert without.info.sha256 != ds.info.sha256


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"y_test": None}, "missing array(s) ['y_test']"),
        ({"x_val": np.zeros((3, 4, 4), np.uint8)}, "x_val is given without y_val"),
        ({"y_train": np.arange(119) % 3}, "x_train has 120 rows but y_train has 119 labels"),
        ({"x_test": np.zeros((40, 4, 5), np.uint8)}, "x_test samples have shape (4, 5), x_train's have (4, 4)"),
        ({"x_train": np.full((120, 4, 4), "a")}, "x_train has non-numeric dtype <U1"),
        ({"x_train": np.ones((120, 4, 4), bool)}, "x_train has non-numeric dtype bool"),
        ({"y_train": np.arange(120) % 3 - 1}, "y_train labels out of range: found -1..1"),
        ({"y_test": np.full(40, 7)}, "y_test labels out of range: found label 7, but y_train's labels are 0..2"),
        ({"y_train": (np.arange(120) % 3).astype(np.float32)}, "y_train must hold integer class labels"),
        ({"y_train": np.eye(3, dtype=np.uint8)[np.arange(120) % 3]}, "y_train must be 1-d class labels (not one-hot)"),
        ({"x_train": np.full((120, 4, 4), np.nan)}, "x_train has 1920 non-finite value(s)"),
        ({"x_train": np.zeros((0, 4, 4)), "y_train": np.zeros(0, int)}, "x_train is empty"),
        ({"x_train": np.zeros(120)}, "x_train must have one row per sample, shape (n, ...), got shape (120,)"),
    ],
)  # fmt: skip
def test_a_bad_file_is_one_line_naming_the_array(tmp_path: Path, overrides: dict[str, object], message: str) -> None:
    path = npz_file(tmp_path / "bad.npz", **overrides)
    with pytest.raises(DataError) as exc:
        load(path)
    assert message in one_line(exc) and str(path) in str(exc.value)


def test_unreadable_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load(tmp_path / "nothing.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="cannot be read as numeric arrays"):
        read_user_npz(garbage)
    objects = tmp_path / "objects.npz"
    np.savez(objects, x_train=np.array([{"a": 1}], dtype=object), y_train=[0], x_test=[[0]], y_test=[0])
    with pytest.raises(DataError, match="cannot be read as numeric arrays"):
        load(objects)


def test_prepared_for_a_container_by_path_and_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = npz_file(tmp_path / "src" / "cells.npz")
    other = npz_file(tmp_path / "elsewhere" / "cells.npz", seed=5)  # another file, the same stem
    ddir = tmp_path / "data"
    copies = [data.prepare_for_container("npz-cells", ddir, file=str(p)) for p in (src, other)]
    assert copies[0] != copies[1] and all(c.parent == ddir and c.name.startswith("npz-cells-") for c in copies)
    assert oct(copies[0].stat().st_mode & 0o777) == "0o644" and copies[0].with_suffix(".sha256").is_file()
    host = load(src)
    monkeypatch.setenv("TFPARITY_BACKEND", "docker")  # in the container: the host file is not there
    src.unlink()
    inside = data.load("npz-cells", ddir, file=str(src))
    assert inside.info.sha256 == host.info.sha256 and inside.info.source == f"prepared:{copies[0]}"
    copies[0].write_bytes(copies[0].read_bytes()[:-10])
    with pytest.raises(DataError, match="checksum mismatch with its manifest"):
        data.load("npz-cells", ddir, file=str(src))


@pytest.mark.usefixtures("fresh_registry")
def test_a_plugin_dataset_loads_like_an_npz_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.spec.benchmarks import registry

    arrays = tmp_path / "arrays.npz"
    npz_file(arrays, shape=(8,), classes=2)
    header = ("import numpy as np\nfrom harness.spec.benchmarks import DatasetDef\n"
              f"def arrays():\n    with np.load({str(arrays)!r}) as f:\n        return dict(f)\n"
              "def broken():\n    raise OSError('the source is offline')\n")  # fmt: skip
    fields = ("datasets=('pairs',), provides=(DatasetDef(name='pairs', description='d', arrays=arrays), "
              "DatasetDef(name='offline', description='d', arrays=broken))")  # fmt: skip
    registry.load_user_reference(f"{plugin_file(tmp_path, name='pp', attr='P', fields=fields, header=header)}:P")
    ds = data.load("pairs")
    assert ds.info.source == "plugin:pp" and ds.info.sha256 == load(arrays).info.sha256
    with pytest.raises(DataError) as exc:
        data.load("offline")
    assert one_line(exc) == "dataset 'offline' of benchmark 'pp': arrays() failed: OSError: the source is offline"
    prepared = data.prepare_for_container("pairs", tmp_path / "data")
    assert prepared.name == "pairs.npz"
    monkeypatch.setenv("TFPARITY_BACKEND", "docker")
    assert data.load("pairs", tmp_path / "data").info.sha256 == ds.info.sha256
