"""The user-error base class: anything raised as a UserError is printed by the CLI as one line
(``tfparity: error: <message>``) with exit code 2 and no traceback. Everything else is a bug and
keeps its traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or an unusable environment, explained in one line."""
