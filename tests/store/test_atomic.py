"""The one atomic writer: never overwrites by accident, never leaves a partial file, mode follows the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.store.atomic import write_atomic


@pytest.fixture()
def umask() -> Iterator[None]:
    """Restore the process umask after a test that sets it."""
    before = os.umask(0o022)
    os.umask(before)
    yield
    os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_the_bytes_and_returns_the_path(tmp_path: Path) -> None:
    path = write_atomic(tmp_path / "x.bin", b"\x00payload\xff")
    assert path == tmp_path / "x.bin"
    assert path.read_bytes() == b"\x00payload\xff"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_never_overwrites(tmp_path: Path) -> None:
    path = write_atomic(tmp_path / "r.json", b"first")
    with pytest.raises(FileExistsError, match="refusing to overwrite existing file") as exc:
        write_atomic(path, b"second")
    assert str(path) in str(exc.value)
    assert path.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left behind


def test_overwrite_replaces_when_asked(tmp_path: Path) -> None:
    path = write_atomic(tmp_path / "spec.json", b"old")
    write_atomic(path, b"new", overwrite=True)
    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["spec.json"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_failed_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overwrite: bool) -> None:
    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_atomic(tmp_path / "r.json", b"{}", overwrite=overwrite)
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_atomic(tmp_path / "r.json", b"complete")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_atomic(path, b"half", overwrite=True)
    assert path.read_bytes() == b"complete"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
@pytest.mark.usefixtures("umask")
def test_mode_follows_the_umask(tmp_path: Path, mask: int, expected: int) -> None:
    os.umask(mask)
    path = write_atomic(tmp_path / "r.json", b"{}")
    assert _mode(path) == expected
    # The same mode open() gives a new file (mkstemp alone would give 0600).
    with open(tmp_path / "plain.json", "w") as fh:
        fh.write("{}")
    assert _mode(path) == _mode(tmp_path / "plain.json")
    replaced = write_atomic(tmp_path / "r.json", b"[]", overwrite=True)
    assert _mode(replaced) == expected


@pytest.mark.usefixtures("umask")
def test_explicit_mode_wins_over_the_umask(tmp_path: Path) -> None:
    os.umask(0o077)
    path = write_atomic(tmp_path / "shared.npz", b"data", mode=0o644)
    assert _mode(path) == 0o644
