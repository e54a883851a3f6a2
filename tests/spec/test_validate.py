"""The shared value validators of user input: the bad value is quoted."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.spec.validate import parse_on_off


def test_on_off() -> None:
    assert parse_on_off("--xla", "on") is True and parse_on_off("--xla", "off") is False
    with pytest.raises(ConfigError, match="'maybe'"):
        parse_on_off("--xla", "maybe")
