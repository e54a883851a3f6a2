"""Result schema: round trip, strict loading, version refusal, atomic never-overwriting writes."""

from __future__ import annotations

import json
import os

import pytest

from harness.config import RunSpec
from harness.results import (
    SCHEMA_VERSION,
    DatasetInfo,
    EpochMetrics,
    ResultError,
    RunResult,
    Timing,
    load_result,
    load_results,
    write_json_atomic,
    write_result,
)


def make_result(**changes) -> RunResult:
    spec = RunSpec(epochs=1)
    fields = dict(
        run_id=spec.run_id, status="ok", spec=spec.to_dict(), started_utc="2026-01-01T00:00:00Z",
        finished_utc="2026-01-01T00:00:10Z",
        dataset=DatasetInfo("mnist-5k", "test", 4000, 800, 1000, "ab" * 32),
        epochs=[EpochMetrics(1, 0.5, 0.9, 0.6, 0.88, 1.5)], test_loss=0.4, test_accuracy=0.9,
        generalization_gap=0.02, params=110154,
        timing=Timing([3.0, 2.0, 2.5], 1, 1, 0.003, 0.003, 12000.0, 2.25, 2.45, 2.5, 1.5, 9.0),
    )
    fields.update(changes)
    return RunResult(**fields)


def test_round_trip(tmp_path) -> None:
    result = make_result()
    path = write_result(result, tmp_path / "r.json")
    assert load_result(path) == result
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION


def test_never_overwrites(tmp_path) -> None:
    path = write_result(make_result(), tmp_path / "r.json")
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        write_result(make_result(test_accuracy=0.1), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left behind


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch) -> None:
    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_result(make_result(), tmp_path / "r.json")
    assert list(tmp_path.iterdir()) == []


def test_nan_is_stored_as_null(tmp_path) -> None:
    path = write_json_atomic(tmp_path / "x.json", {"a": float("nan"), "b": [float("inf"), 1.0]})
    assert json.loads(path.read_text()) == {"a": None, "b": [None, 1.0]}


def test_newer_and_older_schema_refused_with_action(tmp_path) -> None:
    data = make_result().to_dict()
    for version, hint in ((SCHEMA_VERSION + 1, "upgrade tfparity"), (0, "re-run"), ("1", "re-run")):
        path = tmp_path / f"v{version}.json"
        path.write_text(json.dumps({**data, "schema_version": version}))
        with pytest.raises(ResultError, match=hint):
            load_result(path)


@pytest.mark.parametrize("mutate", [
    lambda d: d.pop("run_id"),
    lambda d: d.update(status="weird"),
    lambda d: d.update(test_accuracy="high"),
    lambda d: d.update(epochs=[{"epoch": 1}]),
    lambda d: d.update(timing={"step_time_ms": ["x"]}),
    lambda d: d.update(surprise=1),
    lambda d: d["spec"].update(epochs=0),
])
def test_malformed_results_refused(tmp_path, mutate) -> None:
    data = make_result().to_dict()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ResultError, match="bad.json"):
        load_result(path)


def test_load_results_dir_skips_specs_and_manifest(tmp_path) -> None:
    write_result(make_result(), tmp_path / "a.json")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "a.json").write_text("{}")
    (tmp_path / "suite.json").write_text("{}")
    assert len(load_results([tmp_path])) == 1
    with pytest.raises(ResultError, match="no result files"):
        load_results([tmp_path / "specs" / ".." / "specs"])
    with pytest.raises(ResultError, match="no such results"):
        load_results([tmp_path / "missing"])
