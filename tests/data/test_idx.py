"""fashion-mnist from IDX files: sources in order, and every broken file named in one line."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness import data
from harness.data import Dataset
from harness.data.idx import IDX_FILES
from harness.errors import DataError
from tests.data.support import FASHION_DIR, PINNED_SHA256, flip_byte, needs_fashion, one_line

pytestmark = needs_fashion


def _copy_fashion(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for fname in IDX_FILES.values():
        shutil.copyfile(FASHION_DIR / fname, dest / fname)


def test_fashion_sources_in_order(tmp_path: Path, fashion: Dataset) -> None:
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


def test_fashion_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    _copy_fashion(tmp_path)
    victim = tmp_path / IDX_FILES["x_test"]
    victim.write_bytes(victim.read_bytes()[:100_000])
    with pytest.raises(DataError) as exc:
        data.load("fashion-mnist", tmp_path)
    msg = one_line(exc)
    assert str(victim) in msg and "truncated" in msg


def test_fashion_corrupt_gzip_names_the_file(tmp_path: Path) -> None:
    _copy_fashion(tmp_path)
    victim = tmp_path / IDX_FILES["y_train"]
    flip_byte(victim, 2000)  # inside the deflate stream: CRC or stream error
    with pytest.raises(DataError) as exc:
        data.load("fashion-mnist", tmp_path)
    assert str(victim) in one_line(exc)


def test_fashion_wrong_magic_and_wrong_size(tmp_path: Path) -> None:
    _copy_fashion(tmp_path)
    victim = tmp_path / IDX_FILES["y_test"]
    raw = gzip.decompress(victim.read_bytes())
    victim.write_bytes(gzip.compress(b"\x00\x00\x08\x02" + raw[4:]))  # int32 instead of ubyte
    with pytest.raises(DataError) as exc:
        data.load("fashion-mnist", tmp_path)
    msg = one_line(exc)
    assert str(victim) in msg and "magic number 0x00000802" in msg

    victim.write_bytes(gzip.compress(raw[:-5]))  # header says 10000 labels, 9995 present
    with pytest.raises(DataError) as exc:
        data.load("fashion-mnist", tmp_path)
    assert "9995 data bytes" in one_line(exc)

    # A labels file in the images' place: valid IDX, wrong kind.
    shutil.copyfile(FASHION_DIR / IDX_FILES["y_test"], victim)
    shutil.copyfile(FASHION_DIR / IDX_FILES["y_train"], tmp_path / IDX_FILES["x_train"])
    with pytest.raises(DataError) as exc:
        data.load("fashion-mnist", tmp_path)
    assert "must have shape" in one_line(exc)


def test_fashion_partial_set_is_refused(tmp_path: Path) -> None:
    _copy_fashion(tmp_path)
    (tmp_path / IDX_FILES["y_test"]).unlink()
    with pytest.raises(DataError) as exc:
        data.load("fashion-mnist", tmp_path)
    assert IDX_FILES["y_test"] in one_line(exc)
