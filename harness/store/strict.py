"""Strict construction of typed dataclasses from JSON (results and what they nest): every key known,
every required field present, every value of its annotated type; the first problem is one line.

Annotations are read as strings (``from __future__ import annotations``): scalars, ``X | None``,
``list[...]``, ``dict[str, Any]``/``dict[str, float]`` and the nested dataclasses named in ``schema``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from harness.errors import ResultError

_SCALARS: dict[str, tuple[type, ...]] = {"float": (int, float), "int": (int,), "str": (str,), "bool": (bool,)}
_SCALAR_WORDS = {"float": "a number", "int": "an integer", "str": "a string", "bool": "true or false"}


def _check_type(value: Any, annotation: str, where: str, schema: dict[str, type]) -> Any:
    """Check a JSON value against the (string) annotation of a field; ints are accepted as floats."""
    optional = annotation.endswith(" | None")
    base = annotation.removesuffix(" | None")
    if value is None:
        if optional:
            return None
        raise ResultError(f"{where} must not be null")
    if base in _SCALARS:
        if (isinstance(value, bool) and base != "bool") or not isinstance(value, _SCALARS[base]):
            raise ResultError(f"{where} must be {_SCALAR_WORDS[base]}, got {value!r:.80}")
        number: Any = value
        return float(number) if base == "float" else value
    if base in schema:
        return build(schema[base], value, where, schema)
    if base.startswith("list[") and base.endswith("]"):
        if not isinstance(value, list):
            raise ResultError(f"{where} must be a list, got {type(value).__name__}")
        return [_check_type(v, base[5:-1], f"{where}[{i}]", schema) for i, v in enumerate(value)]
    if base in ("dict[str, Any]", "dict[str, float]"):
        if not isinstance(value, dict):
            raise ResultError(f"{where} must be an object, got {type(value).__name__}")
        if base == "dict[str, float]":
            return {k: _check_type(v, "float", f"{where}[{k!r}]", schema) for k, v in value.items()}
        return value
    raise AssertionError(f"unhandled annotation {annotation!r}")  # a bug in this module, not input


def build(cls: type, data: Any, where: str, schema: dict[str, type]) -> Any:
    """An instance of dataclass ``cls`` from JSON ``data``: unknown keys, missing required fields and
    wrong types are a one-line :class:`ResultError` naming the field (``where``); ``schema`` maps the
    names of nested dataclasses in the annotations to their classes."""
    if not isinstance(data, dict):
        raise ResultError(f"{where} must be an object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields), key=str)
    if unknown:
        raise ResultError(f"{where} has unknown key(s) {unknown!r:.200}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        sub = f"{where}.{name}"
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ResultError(f"{sub} is missing")
            continue
        kwargs[name] = _check_type(data[name], str(f.type), sub, schema)
    try:
        return cls(**kwargs)
    except ResultError as exc:
        raise ResultError(f"{where}: {exc}") from None
