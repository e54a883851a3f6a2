"""Every user-facing error type of tfparity, in one place.

Anything raised as a :class:`UserError` is printed by the CLI as one line
(``tfparity: error: <message>``) with exit code 2 and no traceback (``harness.cli`` owns that rule);
everything else is a bug and keeps its traceback. Subclasses name the layer that found the problem,
so callers can catch narrowly; their messages quote the bad value and say what to do.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input or an unusable environment, explained in one line."""


class ConfigError(UserError, ValueError):
    """A configuration value (flag, spec field, preset, suite) is invalid; the message quotes it."""


class ResultError(UserError, ValueError):
    """A result file is missing, unreadable, malformed, or of another schema version."""


class DataError(UserError):
    """A dataset cannot be found, read or trusted."""


class ResumeError(UserError):
    """The directory to resume is not a suite directory, or its manifest is unusable."""


class SuiteStoppedError(UserError):
    """The suite cannot go on (results directory full or unwritable, machinery gone): stop in one line."""


class BackendError(UserError, RuntimeError):
    """The backend cannot run anything (engine down, image build failed, no GPU runtime, ...)."""


class CompareError(UserError, ValueError):
    """Results that cannot be compared (none, mismatched data or hyperparameters, unknown reference)."""


class GateError(UserError, ValueError):
    """A ``--gate`` specification is malformed; the message quotes it and shows the syntax."""


class HistoryError(UserError, ValueError):
    """A history directory or an argument of ``tfparity history`` is unusable."""


class ReportError(UserError, ValueError):
    """Bad report arguments (output directory, ...)."""


class RunInterrupted(BaseException):
    """SIGINT/SIGTERM arrived (raised by the CLI's signal handler).

    A backend that catches it stops its worker/container, records the run as ``interrupted`` and
    re-raises it. A BaseException so that generic ``except Exception`` blocks do not swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
