"""Property-based test (hypothesis) of the suite manifest, what ``--resume`` trusts: any content either
gives the planned RunSpecs or is refused with one clear ResumeError line, never a traceback.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.errors import ResumeError
from harness.spec.run_spec import RunSpec
from harness.store.layout import MANIFEST, MANIFEST_VERSION, read_manifest
from tests.strategies import FILE_SETTINGS, json_values

manifests = json_values | st.fixed_dictionaries(
    {"manifest_version": st.just(MANIFEST_VERSION), "runs": st.lists(json_values, max_size=3)}
)


@FILE_SETTINGS
@given(manifests)
def test_arbitrary_manifests_resume_or_are_refused(tmp_path_factory: pytest.TempPathFactory, data: Any) -> None:
    out = tmp_path_factory.mktemp("suite")
    (out / MANIFEST).write_text(json.dumps(data))
    try:
        specs, _meta = read_manifest(out)
    except ResumeError as exc:
        assert "\n" not in str(exc)
        return
    assert all(isinstance(s, RunSpec) for s in specs)
