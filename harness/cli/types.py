"""argparse types: every command-line value is validated here, once, with the bad value quoted.

Inner code trusts the types it receives (see ../shared/STYLE-EXAMPLES.md, "validate once").
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from harness.errors import UserError


def number(convert: Callable[[str], Any], minimum: float, *, strict: bool, what: str) -> Callable[[str], Any]:
    """An argparse type: ``convert(text)`` that must be finite and > (strict) or >= minimum."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or not (value > minimum if strict else value >= minimum):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


positive_int = number(int, 0, strict=True, what="a positive integer")
non_negative_int = number(int, 0, strict=False, what="an integer >= 0")
positive_float = number(float, 0.0, strict=True, what="a positive number")
margin_pp = number(float, 0.0, strict=True, what="a positive number of percentage points")


def from_parser(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a parser that raises a UserError (its message becomes argparse's)."""

    def wrapped(text: str) -> Any:
        try:
            return parse(text)
        except UserError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    wrapped.__name__ = getattr(parse, "__name__", "value")
    return wrapped
