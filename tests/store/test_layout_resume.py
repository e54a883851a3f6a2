"""What a resume finds on disk after a fault (GitHub issues 7 and 11): never a result written through
a planted symlink, no partial file after a full disk, the temp files of a write cut short and the
heartbeats of a harness killed with kill -9 removed before the suite goes on, and failed results
archived (never deleted) when they are to be retried."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from types import ModuleType

import pytest

from harness.store.jsonio import write_json
from harness.store.layout import (
    ATTEMPTS_DIR,
    HEARTBEAT_SUFFIX,
    SPECS_DIR,
    existing_result,
    remove_stale_temp_files,
)
from harness.store.results import write_result


def test_results_never_written_through_a_planted_symlink(tmp_path: Path, factories: ModuleType) -> None:
    """A result path that is a (dangling) symlink to outside is refused, not followed."""
    suite = tmp_path / "suite"
    suite.mkdir()
    outside = tmp_path / "outside" / "stolen.json"
    outside.parent.mkdir()
    result = factories.result(status="failed", error="x")
    (suite / f"{result.run_id}.json").symlink_to(outside)
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        write_result(result, suite / f"{result.run_id}.json")
    assert not outside.exists()
    assert [p.name for p in suite.iterdir()] == [f"{result.run_id}.json"]  # no temp file left


def test_injected_enospc_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, factories: ModuleType
) -> None:
    """An injected ENOSPC at the fsync of an atomic write: no result, no temp file, the error propagates."""

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as info:
        write_result(factories.result(status="failed", error="x"), tmp_path / "r.json")
    assert info.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


def test_resume_removes_temp_files_of_a_cut_short_write(tmp_path: Path) -> None:
    """A kill -9 inside an atomic write can leave only a hidden temp file: resume removes it."""
    (tmp_path / SPECS_DIR).mkdir()
    stale = [tmp_path / ".run.json.abc123.tmp", tmp_path / SPECS_DIR / ".run.json.x.tmp"]
    for path in stale:
        path.write_text('{"half": ')
    keep = write_json(tmp_path / "other.json", {"a": 1})
    assert sorted(remove_stale_temp_files(tmp_path)) == sorted(stale)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [keep]


def test_retry_failed_archives_a_failed_result_and_keeps_an_ok_one(tmp_path: Path, factories: ModuleType) -> None:
    ok, failed = factories.result(seed=0), factories.result(seed=1, status="failed", error="boom")
    for result in (ok, failed):
        write_result(result, tmp_path / f"{result.run_id}.json")
    failed_bytes = (tmp_path / f"{failed.run_id}.json").read_bytes()
    assert existing_result(tmp_path, failed.run_spec) is not None  # final by default
    assert existing_result(tmp_path, failed.run_spec, retry_failed=True) is None  # to run again
    assert not (tmp_path / f"{failed.run_id}.json").exists()
    (archived,) = (tmp_path / ATTEMPTS_DIR).iterdir()
    assert archived.read_bytes() == failed_bytes  # archived, never deleted
    assert existing_result(tmp_path, ok.run_spec, retry_failed=True) is not None  # ok stays final


def test_resume_removes_only_heartbeats_nobody_renews(tmp_path: Path) -> None:
    """A kill -9 leaves the heartbeat of the run it was following; a live harness renews its own."""
    specs = tmp_path / SPECS_DIR
    specs.mkdir()
    stale, fresh = specs / f"a{HEARTBEAT_SUFFIX}", specs / f"b{HEARTBEAT_SUFFIX}"
    stale.touch()
    fresh.touch()
    long_ago = time.time() - 3600
    os.utime(stale, (long_ago, long_ago))
    assert remove_stale_temp_files(tmp_path, heartbeat_stale_s=60) == [stale]
    assert sorted(p.name for p in specs.iterdir()) == [fresh.name]
