"""SIGINT/SIGTERM while a worker runs: turned into :class:`~harness.errors.RunInterrupted`, and held
back while a backend stops or cleans up, so that a Ctrl-C can never cut a cleanup short.

Python runs signal handlers in the main thread only, between bytecodes; a handler that raises there
can land in the middle of any cleanup (a container half removed, left running). Blocking the signals
(``pthread_sigmask``) keeps them pending instead; unblocking delivers them at once, so the
interruption is raised right after the cleanup, never lost.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from harness.errors import RunInterrupted

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def raise_interrupted(signum: int, frame: Any) -> None:
    raise RunInterrupted(signum)


def install_signal_handlers() -> dict[int, Any]:
    """SIGINT/SIGTERM -> RunInterrupted while a worker runs, unless the caller handles them already
    (the CLI does); returns what to restore."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    saved: dict[int, Any] = {}
    for sig in STOP_SIGNALS:
        current = signal.getsignal(sig)
        if current in (signal.SIG_DFL, signal.default_int_handler, None):
            saved[sig] = current
            signal.signal(sig, raise_interrupted)
    return saved


def restore_signal_handlers(saved: dict[int, Any]) -> None:
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def block_stop_signals() -> set[int] | None:
    """Block SIGINT/SIGTERM (main thread only, where Python runs handlers); returns the old mask."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return {int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)}


def restore_mask(saved: set[int] | None) -> None:
    """Restore the mask; a signal that arrived while blocked is handled (raised) right here."""
    if saved is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, saved)


@contextlib.contextmanager
def deferred_stop_signals() -> Iterator[None]:
    """Hold SIGINT/SIGTERM for the duration of the block; one that arrived is raised at its end."""
    saved = block_stop_signals()
    try:
        yield
    finally:
        restore_mask(saved)
