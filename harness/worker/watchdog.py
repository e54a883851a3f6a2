"""The worker's own deadline and its watch on the harness's heartbeat (a thread, TensorFlow-free).

A container outlives the process that started it: a harness killed with ``kill -9``, or stuck, would
leave its container training on. So the worker watches two things and stops itself, with
:attr:`~harness.store.protocol.ExitCode.ABANDONED` and one line, when either says nobody waits for
it: its deadline (the run's timeout plus a grace) passed, or the heartbeat file the harness renews
was not renewed for ``stale_s`` (or is gone). ``os._exit``: nothing is written on the way out (a
result write cut short leaves only a temp file, which the harness or a resume removes).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from harness.store.protocol import HEARTBEAT_STALE_S, WORKER_ERROR_PREFIX, ExitCode

log = logging.getLogger(__name__)

CHECK_EVERY_S = 2.0


@dataclass(frozen=True)
class Watch:
    """What the worker watches; both are optional."""

    heartbeat: Path | None = None
    stale_s: float = HEARTBEAT_STALE_S
    deadline_s: float | None = None

    def reason_to_stop(self, started: float, now_monotonic: float, now_wall: float) -> str | None:
        """Why the worker must stop now, or None. ``started`` is a ``time.monotonic()`` reading."""
        if self.deadline_s is not None and now_monotonic - started > self.deadline_s:
            return f"stopping: the run's own deadline of {self.deadline_s:g} s passed (its harness did not stop it)"
        if self.heartbeat is None:
            return None
        try:
            silent_s = now_wall - self.heartbeat.stat().st_mtime
        except FileNotFoundError:
            return f"stopping: the harness's heartbeat {str(self.heartbeat)!r} is gone (harness stopped or killed)"
        except OSError as exc:  # unreadable: nobody to report to either way, but say why
            return f"stopping: cannot read the harness's heartbeat {str(self.heartbeat)!r}: {exc.strerror or exc}"
        if silent_s > self.stale_s:
            return f"stopping: no heartbeat from the harness for {silent_s:.0f} s (killed or stuck?)"
        return None


def start(watch: Watch) -> threading.Thread | None:
    """Start the watchdog thread (a daemon); None when there is nothing to watch."""
    if watch.heartbeat is None and watch.deadline_s is None:
        return None
    started = time.monotonic()
    thread = threading.Thread(target=_watch, args=(watch, started), daemon=True, name="tfparity-watchdog")
    thread.start()
    return thread


def _watch(watch: Watch, started: float) -> None:
    while True:
        reason = watch.reason_to_stop(started, time.monotonic(), time.time())
        if reason is not None:
            print(f"{WORKER_ERROR_PREFIX}{reason}", file=sys.stderr, flush=True)
            os._exit(ExitCode.ABANDONED)
        time.sleep(CHECK_EVERY_S)
