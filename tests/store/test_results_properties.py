"""Property-based tests (hypothesis) of the result loader: whatever JSON reaches it, it either loads
or is refused with one clear ResultError (a UserError the CLI prints as one line), never another
exception. TensorFlow is not imported here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.errors import ResultError
from harness.store.jsonio import write_json
from harness.store.results import SCHEMA_VERSION, RunResult, load_result, write_result
from tests import factories
from tests.strategies import (
    FILE_SETTINGS,
    SETTINGS,
    file_payloads,
    json_values,
    loads_or_clear_error,
    paths_of,
    replaced,
)


def valid_result_dict() -> dict[str, Any]:
    """A complete, valid result (every nested section filled, nullable fields both set and null) as JSON."""
    result = factories.result(
        epochs=2, n_steps=3, warmup_steps=1, max_train_samples=640, extra={"k": [1, 2]},
        env={"backend": "local", "env": {"TF_CPP_MIN_LOG_LEVEL": "2"}},
    )  # fmt: skip
    assert result.memory is not None
    last = dataclasses.replace(result.epochs[-1], val_loss=None, val_accuracy=None)
    result = dataclasses.replace(
        result, epochs=[result.epochs[0], last], memory=dataclasses.replace(result.memory, tf_peak_mb=None),
        log_tail=["a", "b"],
    )  # fmt: skip
    return json.loads(json.dumps(result.to_dict()))


RESULT_PATHS = paths_of(valid_result_dict())


@SETTINGS
@given(json_values)
def test_arbitrary_json_never_crashes_the_result_loader(data: Any) -> None:
    result = loads_or_clear_error(RunResult.from_dict, data, ResultError)
    if result is not None:  # only complete, valid documents load
        assert result.schema_version == SCHEMA_VERSION and result.status in ("ok", "failed", "interrupted")


@SETTINGS
@given(st.sampled_from(RESULT_PATHS), json_values, st.booleans())
def test_a_mutated_valid_result_loads_or_is_refused_clearly(path: tuple, value: Any, delete: bool) -> None:
    data = replaced(valid_result_dict(), path, value, delete)
    result = loads_or_clear_error(RunResult.from_dict, data, ResultError)
    if result is not None:
        # What loads is exactly what the file said (modulo int -> float), and it writes back loadable.
        again = RunResult.from_dict(json.loads(json.dumps(result.to_dict())))
        assert again == result


@SETTINGS
@given(st.sampled_from(RESULT_PATHS), json_values)
def test_a_wrong_value_in_a_result_is_named_in_the_error(path: tuple, value: Any) -> None:
    data = replaced(valid_result_dict(), path, value)
    try:
        RunResult.from_dict(data)
    except ResultError as exc:
        top = path[0]
        if top not in ("spec", "schema_version"):
            assert str(top) in str(exc), (path, str(exc))


@pytest.mark.parametrize("version", [SCHEMA_VERSION + 1, 99, 10**6])
def test_a_newer_schema_says_upgrade(version: int) -> None:
    data = valid_result_dict() | {"schema_version": version, "field_of_the_future": 1}
    with pytest.raises(ResultError, match=r"newer than this tfparity reads.*upgrade tfparity"):
        RunResult.from_dict(data)


@FILE_SETTINGS
@given(file_payloads)
def test_arbitrary_bytes_in_a_result_file(tmp_path_factory: pytest.TempPathFactory, payload: bytes) -> None:
    path = tmp_path_factory.mktemp("r") / "x.json"
    path.write_bytes(payload)
    try:
        load_result(path)
    except ResultError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)


def test_deeply_nested_json_is_a_clear_error(tmp_path: Path) -> None:
    # The JSON parser recurses: a hostile file must not produce a RecursionError traceback.
    depth = sys.getrecursionlimit() * 2
    path = tmp_path / "deep.json"
    path.write_text("[" * depth + "]" * depth)
    with pytest.raises(ResultError, match="not valid JSON"):
        load_result(path)
    path = tmp_path / "deep_dict.json"
    # A deep but valid free-form payload (``extra``) loads; it is data, not an attack on the loader.
    data = valid_result_dict()
    data["extra"] = json.loads('{"a":' * 500 + "1" + "}" * 500)
    path.write_text(json.dumps(data))
    assert load_result(path).extra == data["extra"]


@FILE_SETTINGS
@given(st.sampled_from(RESULT_PATHS), json_values)
def test_what_loads_round_trips_through_an_atomic_write(
    tmp_path_factory: pytest.TempPathFactory, path: tuple, value: Any
) -> None:
    try:
        result = RunResult.from_dict(replaced(valid_result_dict(), path, value))
    except ResultError:
        return
    out = tmp_path_factory.mktemp("w") / "r.json"
    write_result(result, out)
    assert load_result(out) == result


@SETTINGS
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_non_finite_numbers_are_written_as_valid_json(value: float) -> None:
    # JSON has no NaN/Infinity: a diverged run's numbers must still give a strictly valid file.
    data = valid_result_dict()
    data["test_loss"] = value
    with tempfile.TemporaryDirectory() as tmp:
        out = write_json(Path(tmp) / "r.json", data)
        loaded = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"wrote {c}"))
        assert loaded["test_loss"] == (value if math.isfinite(value) else None)
        assert RunResult.from_dict(loaded).test_loss == loaded["test_loss"]
