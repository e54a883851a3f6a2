"""Result schema: round trip, strict loading, version refusal, results never overwritten."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from harness.errors import ResultError
from harness.store.results import SCHEMA_VERSION, load_result, load_results, write_result


def test_round_trip(tmp_path: Path, factories: ModuleType) -> None:
    result = factories.result()
    path = write_result(result, tmp_path / "r.json")
    assert load_result(path) == result
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION


def test_results_are_never_overwritten(tmp_path: Path, factories: ModuleType) -> None:
    path = write_result(factories.result(), tmp_path / "r.json")
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        write_result(factories.result(test_acc=0.1), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left behind


def test_newer_and_older_schema_refused_with_action(tmp_path: Path, factories: ModuleType) -> None:
    data = factories.result().to_dict()
    for version, hint in ((SCHEMA_VERSION + 1, "upgrade tfparity"), (0, "re-run"), ("1", "re-run")):
        path = tmp_path / f"v{version}.json"
        path.write_text(json.dumps({**data, "schema_version": version}))
        with pytest.raises(ResultError, match=hint):
            load_result(path)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("run_id"),
        lambda d: d.update(status="weird"),
        lambda d: d.update(test_accuracy="high"),
        lambda d: d.update(epochs=[{"epoch": 1}]),
        lambda d: d.update(timing={"step_time_ms": ["x"]}),
        lambda d: d.update(surprise=1),
        lambda d: d["spec"].update(epochs=0),
    ],
)
def test_malformed_results_refused(tmp_path: Path, factories: ModuleType, mutate) -> None:
    data = factories.result().to_dict()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ResultError, match="bad.json"):
        load_result(path)


def test_load_results_dir_skips_specs_and_manifest(tmp_path: Path, factories: ModuleType) -> None:
    write_result(factories.result(), tmp_path / "a.json")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "a.json").write_text("{}")
    (tmp_path / "suite.json").write_text("{}")
    assert len(load_results([tmp_path])) == 1
    with pytest.raises(ResultError, match="no result files"):
        load_results([tmp_path / "specs" / ".." / "specs"])
    with pytest.raises(ResultError, match="no such results"):
        load_results([tmp_path / "missing"])
