"""Property-based tests (hypothesis) of the run-spec parser: whatever JSON reaches it, it either loads
or is refused with one clear ConfigError quoting the value, never another exception; whatever it
accepts is safe as a file name. TensorFlow is not imported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.errors import ConfigError
from harness.spec.run_spec import PathSpec, RunSpec, load_spec
from tests.strategies import (
    FILE_SETTINGS,
    SETTINGS,
    file_payloads,
    json_values,
    loads_or_clear_error,
    paths_of,
    replaced,
)

SPEC_PATHS = paths_of(RunSpec().to_dict())


@SETTINGS
@given(json_values)
def test_arbitrary_json_never_crashes_the_spec_parser(data: Any) -> None:
    spec = loads_or_clear_error(RunSpec.from_dict, data, ConfigError)
    if spec is not None:
        assert RunSpec.from_dict(spec.to_dict()) == spec


@SETTINGS
@given(st.sampled_from(SPEC_PATHS), json_values, st.booleans())
def test_a_mutated_spec_loads_or_is_refused_with_the_value_quoted(path: tuple, value: Any, delete: bool) -> None:
    data = replaced(RunSpec().to_dict(), path, value, delete)
    spec = loads_or_clear_error(RunSpec.from_dict, data, ConfigError)
    if spec is not None:
        assert RunSpec.from_dict(spec.to_dict()) == spec
        # Whatever was accepted is file-name safe: the run id cannot leave the suite directory.
        assert "/" not in spec.run_id and "\\" not in spec.run_id and not spec.run_id.startswith(".")
        assert Path(spec.run_id).name == spec.run_id and ".." not in Path(spec.run_id).parts


@SETTINGS
@given(st.dictionaries(st.sampled_from(["device", "precision", "xla", "mixed_policy"]), json_values))
def test_arbitrary_path_specs(data: dict[str, Any]) -> None:
    path = loads_or_clear_error(PathSpec.from_dict, data, ConfigError)
    if path is not None:
        assert "/" not in path.name


@SETTINGS
@given(st.text(max_size=60))
def test_suite_names_cannot_escape(name: str) -> None:
    # The suite name becomes a directory name: separators, '..', leading dots are refused.
    spec = loads_or_clear_error(lambda n: RunSpec(suite=n), name, ConfigError)
    if spec is not None:
        assert "/" not in name and "\\" not in name and not name.startswith((".", "-")) and "\0" not in name


@FILE_SETTINGS
@given(file_payloads)
def test_arbitrary_bytes_in_a_spec_file(tmp_path_factory: pytest.TempPathFactory, payload: bytes) -> None:
    path = tmp_path_factory.mktemp("s") / "spec.json"
    path.write_bytes(payload)
    try:
        load_spec(str(path))
    except ConfigError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
