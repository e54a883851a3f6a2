"""JSON in and out: non-finite numbers are stored as null, never as invalid JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from harness.store.jsonio import finite_or_none, json_safe, write_json


def test_nan_is_stored_as_null(tmp_path: Path) -> None:
    path = write_json(tmp_path / "x.json", {"a": float("nan"), "b": [float("inf"), 1.0]})
    assert json.loads(path.read_text()) == {"a": None, "b": [None, 1.0]}


def test_write_json_never_overwrites(tmp_path: Path) -> None:
    path = write_json(tmp_path / "x.json", {"a": 1})
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1}
    write_json(path, {"a": 3}, overwrite=True)
    assert json.loads(path.read_text()) == {"a": 3}


def test_json_safe_and_finite_or_none() -> None:
    safe = json_safe({"t": (1, float("-inf")), 2: np.float32(0.5), "n": np.int64(3), "nan": np.float64("nan")})
    assert safe == {"t": [1, None], "2": 0.5, "n": 3, "nan": None}
    assert json.loads(json.dumps(safe, allow_nan=False)) == safe
    assert finite_or_none(None) is None and finite_or_none(math.inf) is None and finite_or_none(2) == 2.0
