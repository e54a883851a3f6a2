"""Container memory limits: parsed at the edge into docker's form, and shown back in human units."""

from __future__ import annotations

import re

from harness.errors import ConfigError


def parse_memory_limit(value: str | int | None) -> str | None:
    """``512m``, ``2g``, ``1073741824`` -> docker's form (bytes); ``None`` = no limit. Quotes a bad value."""
    if value is None:
        return None
    text = str(value).strip().lower()
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([bkmg]?)", text)
    if not match:
        raise ConfigError(f"memory limit must be a size like 512m or 2g, got {value!r}")
    number, unit = match.groups()
    size_b = float(number) * {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]
    if size_b < 6 * 1024**2:  # docker's own minimum
        raise ConfigError(f"memory limit must be at least 6m (docker's minimum), got {value!r}")
    return str(int(size_b))


def human_bytes(value: str | None) -> str:
    if not value:
        return "none"
    n = int(value)
    for unit, size in (("g", 1024**3), ("m", 1024**2), ("k", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n} bytes"
