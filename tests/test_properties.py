"""Property-based tests (hypothesis): whatever JSON reaches the result loader, the run-spec parser
or the suite manifest reader, it either loads or is refused with the module's one clear error
(ResultError / ConfigError / ResumeError, all UserErrors that the CLI prints as one line). Never
another exception, i.e. never a traceback. TensorFlow is not imported here.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.config import ConfigError, PathSpec, RunSpec, load_spec
from harness.errors import UserError
from harness.results import (
    SCHEMA_VERSION,
    DatasetInfo,
    EpochMetrics,
    Evidence,
    Memory,
    ResultError,
    RunResult,
    Timing,
    load_result,
    write_json_atomic,
    write_result,
)
from harness.runner import MANIFEST, ResumeError, read_manifest

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FILE_SETTINGS = settings(max_examples=60, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Arbitrary JSON: every JSON type, nested, with the awkward numbers (huge ints, floats near the
# limits) and strings (path-like, unicode, empty) that hand-written tests forget.
json_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30)
                | st.sampled_from(["../../etc/passwd", "/abs", "ok", "failed", "interrupted", "cpu", "gpu",
                                   "fp32", "mixed", "baseline", "mnist-5k", ""]))
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=25)


def valid_result_dict() -> dict[str, Any]:
    """A complete, valid result (every nested section filled) as its JSON form."""
    spec = RunSpec(epochs=2, max_train_samples=640)
    result = RunResult(
        run_id=spec.run_id, status="ok", spec=spec.to_dict(), started_utc="2026-01-01T00:00:00Z",
        finished_utc="2026-01-01T00:00:10Z",
        dataset=DatasetInfo("mnist-5k", "test", 640, 128, 1000, "ab" * 32),
        epochs=[EpochMetrics(1, 0.5, 0.9, 0.6, 0.88, 1.5), EpochMetrics(2, 0.4, 0.92, None, None, 1.2)],
        test_loss=0.4, test_accuracy=0.9, generalization_gap=0.02, params=110154,
        timing=Timing([3.0, 2.0, 2.5], 1, 1, 0.003, 0.003, 12000.0, 2.25, 2.45, 2.5, 1.5, 9.0),
        memory=Memory(800.0, 810.0, 0.05, "CPU:0", None),
        evidence=Evidence(["/physical_device:CPU:0"], "/device:CPU:0", "float32", False, True, 1),
        environment={"backend": "local", "env": {"TF_CPP_MIN_LOG_LEVEL": "2"}},
        log_tail=["a", "b"], extra={"k": [1, 2]})
    return json.loads(json.dumps(result.to_dict()))


# Every place in a valid result where a value can be replaced: (path of keys/indexes).
def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, prefix + (i,))
    return out


RESULT_PATHS = _paths(valid_result_dict())
SPEC_PATHS = _paths(RunSpec().to_dict())


def _replace(obj: Any, path: tuple, value: Any, delete: bool = False) -> Any:
    obj = json.loads(json.dumps(obj))
    parent = obj
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return obj


def assert_loads_or_clear_error(fn, data: Any, error: type[UserError]) -> Any:
    try:
        return fn(data)
    except error as exc:
        message = str(exc)
        assert message and "\n" not in message, f"error must be one line: {message!r}"
        assert "Traceback" not in message
        return None


# --- the result loader ---------------------------------------------------------------------------


@SETTINGS
@given(json_values)
def test_arbitrary_json_never_crashes_the_result_loader(data: Any) -> None:
    result = assert_loads_or_clear_error(RunResult.from_dict, data, ResultError)
    if result is not None:  # only complete, valid documents load
        assert result.schema_version == SCHEMA_VERSION and result.status in ("ok", "failed", "interrupted")


@SETTINGS
@given(st.sampled_from(RESULT_PATHS), json_values, st.booleans())
def test_a_mutated_valid_result_loads_or_is_refused_clearly(path: tuple, value: Any, delete: bool) -> None:
    data = _replace(valid_result_dict(), path, value, delete)
    result = assert_loads_or_clear_error(RunResult.from_dict, data, ResultError)
    if result is not None:
        # What loads is exactly what the file said (modulo int -> float), and it writes back loadable.
        again = RunResult.from_dict(json.loads(json.dumps(result.to_dict())))
        assert again == result


@SETTINGS
@given(st.sampled_from(RESULT_PATHS), json_values)
def test_a_wrong_value_in_a_result_is_named_in_the_error(path: tuple, value: Any) -> None:
    data = _replace(valid_result_dict(), path, value)
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
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
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
def test_what_loads_round_trips_through_an_atomic_write(tmp_path_factory: pytest.TempPathFactory, path: tuple,
                                                          value: Any) -> None:
    try:
        result = RunResult.from_dict(_replace(valid_result_dict(), path, value))
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
    text = json.dumps(json.loads(json.dumps(data)))  # sanity: the dict itself is JSON
    assert text
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = write_json_atomic(Path(tmp) / "r.json", data)
        loaded = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"wrote {c}"))
        assert loaded["test_loss"] == (value if math.isfinite(value) else None)
        assert RunResult.from_dict(loaded).test_loss == loaded["test_loss"]


# --- the run-spec parser -------------------------------------------------------------------------


@SETTINGS
@given(json_values)
def test_arbitrary_json_never_crashes_the_spec_parser(data: Any) -> None:
    spec = assert_loads_or_clear_error(RunSpec.from_dict, data, ConfigError)
    if spec is not None:
        assert RunSpec.from_dict(spec.to_dict()) == spec


@SETTINGS
@given(st.sampled_from(SPEC_PATHS), json_values, st.booleans())
def test_a_mutated_spec_loads_or_is_refused_with_the_value_quoted(path: tuple, value: Any, delete: bool) -> None:
    data = _replace(RunSpec().to_dict(), path, value, delete)
    spec = assert_loads_or_clear_error(RunSpec.from_dict, data, ConfigError)
    if spec is not None:
        assert RunSpec.from_dict(spec.to_dict()) == spec
        # Whatever was accepted is file-name safe: the run id cannot leave the suite directory.
        assert "/" not in spec.run_id and "\\" not in spec.run_id and not spec.run_id.startswith(".")
        assert Path(spec.run_id).name == spec.run_id and ".." not in Path(spec.run_id).parts


@SETTINGS
@given(st.dictionaries(st.sampled_from(["device", "precision", "xla", "mixed_policy"]), json_values))
def test_arbitrary_path_specs(data: dict[str, Any]) -> None:
    path = assert_loads_or_clear_error(PathSpec.from_dict, data, ConfigError)
    if path is not None:
        assert "/" not in path.name


@SETTINGS
@given(st.text(max_size=60))
def test_suite_names_cannot_escape(name: str) -> None:
    # The suite name becomes a directory name: separators, '..', leading dots are refused.
    spec = assert_loads_or_clear_error(lambda n: RunSpec(suite=n), name, ConfigError)
    if spec is not None:
        assert "/" not in name and "\\" not in name and not name.startswith((".", "-")) and "\0" not in name


@FILE_SETTINGS
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_bytes_in_a_spec_file(tmp_path_factory: pytest.TempPathFactory, payload: bytes) -> None:
    path = tmp_path_factory.mktemp("s") / "spec.json"
    path.write_bytes(payload)
    try:
        load_spec(str(path))
    except ConfigError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)


# --- the suite manifest (what --resume trusts) ----------------------------------------------------


@FILE_SETTINGS
@given(json_values | st.fixed_dictionaries({"manifest_version": st.just(1), "runs": st.lists(json_values, max_size=3)}))
def test_arbitrary_manifests_resume_or_are_refused(tmp_path_factory: pytest.TempPathFactory, data: Any) -> None:
    out = tmp_path_factory.mktemp("suite")
    (out / MANIFEST).write_text(json.dumps(data))
    try:
        specs, _meta = read_manifest(out)
    except ResumeError as exc:
        assert "\n" not in str(exc)
        return
    assert all(isinstance(s, RunSpec) for s in specs)
