"""Value validators shared by every parser of user input: each error quotes the bad value."""

from __future__ import annotations

import math
import re
from typing import Any

from harness.errors import ConfigError

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def one_of(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``; else a ConfigError listing the valid names."""
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def int_at_least(name: str, value: Any, minimum: int) -> int:
    """An int (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def float_in(
    name: str, value: Any, low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> float:
    """A finite number in the interval; ``low_open``/``high_open`` exclude the bound."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        ok = above and below
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ConfigError(f"{name} must be a number in {lo}{low}, {high}{hi}, got {value!r}")
    return float(value)


def boolean(name: str, value: Any) -> bool:
    """A JSON/Python bool, nothing else (no 0/1, no strings)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value


def parse_on_off(name: str, value: str) -> bool:
    """Parse a CLI ``on|off`` flag (``true/false``, ``1/0``, ``yes/no`` are accepted too)."""
    if value in ("on", "true", "1", "yes"):
        return True
    if value in ("off", "false", "0", "no"):
        return False
    raise ConfigError(f"{name} must be 'on' or 'off', got {value!r}")


def safe_name(name: str, value: Any) -> str:
    """A name that becomes part of a file name: no path separators, no leading dot or dash."""
    if not isinstance(value, str) or not _SAFE_NAME.match(value):
        raise ConfigError(
            f"{name} must be 1-128 characters of letters, digits, '.', '_' or '-' "
            f"(not starting with '.' or '-'), got {value!r}"
        )
    return value
