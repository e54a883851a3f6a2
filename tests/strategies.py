"""Hypothesis strategies and checks shared by the property tests (no TensorFlow).

``json_values`` is arbitrary JSON with the awkward values hand-written tests forget; ``paths_of`` and
``replaced`` mutate one place of a valid document; ``loads_or_clear_error`` is the property every
loader of untrusted JSON must have: it loads, or it raises its one :class:`UserError` in one line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from harness.errors import UserError

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FILE_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)

AWKWARD_STRINGS = ["../../etc/passwd", "/abs", "ok", "failed", "interrupted", "cpu", "gpu", "fp32", "mixed",
                   "baseline", "mnist-5k", ""]  # fmt: skip
# Arbitrary JSON: every JSON type, nested, with the awkward numbers (huge ints, floats near the
# limits) and strings (path-like, unicode, empty) that hand-written tests forget.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(AWKWARD_STRINGS)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=25,
)
# What a file of untrusted content may hold: arbitrary bytes, or arbitrary JSON.
file_payloads = st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode())


def paths_of(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON document where a value can be replaced, as a tuple of keys/indexes."""
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += paths_of(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += paths_of(v, prefix + (i,))
    return out


def replaced(obj: Any, path: tuple, value: Any, delete: bool = False) -> Any:
    """A copy of ``obj`` with the value at ``path`` replaced by ``value`` (or its key deleted)."""
    obj = json.loads(json.dumps(obj))
    parent = obj
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return obj


def loads_or_clear_error(fn: Callable[[Any], Any], data: Any, error: type[UserError]) -> Any:
    """``fn(data)``, or None when it raised ``error`` with a one-line message (any other exception fails)."""
    try:
        return fn(data)
    except error as exc:
        message = str(exc)
        assert message and "\n" not in message, f"error must be one line: {message!r}"
        assert "Traceback" not in message
        return None
