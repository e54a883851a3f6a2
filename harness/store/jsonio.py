"""JSON in and out: the one owner of "JSON has no NaN" (non-finite floats become null)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from harness.store.atomic import write_atomic


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a float when it is finite, else None (NaN and inf are not JSON)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def json_safe(obj: Any) -> Any:
    """A copy of ``obj`` that ``json.dumps(..., allow_nan=False)`` accepts.

    Non-finite floats become None, tuples become lists, dict keys become strings, numpy scalars
    become Python numbers. Anything else unknown is a bug and fails in ``json.dumps``.
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):  # numpy scalars
        return json_safe(obj.item())
    return obj


def dumps(obj: Any) -> str:
    """Indented JSON of ``obj`` (made safe first) with a trailing newline."""
    return json.dumps(json_safe(obj), indent=1, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike[str], obj: Any, *, overwrite: bool = False, mode: int | None = None) -> Path:
    """Write ``obj`` as JSON through :func:`harness.store.atomic.write_atomic`."""
    return write_atomic(path, dumps(obj).encode("utf-8"), overwrite=overwrite, mode=mode)
