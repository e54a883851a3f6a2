"""The heartbeat file whose age tells a run container's worker that its harness is still alive."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from harness.store.protocol import HEARTBEAT_INTERVAL_S

log = logging.getLogger(__name__)


class Heartbeat:
    """The file whose modification time tells the container's worker that its harness is alive."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._renewed = -math.inf

    def renew(self) -> None:
        now = time.monotonic()
        if now - self._renewed >= HEARTBEAT_INTERVAL_S:
            self.path.touch(mode=0o644)  # creates it, or renews its modification time
            self._renewed = now

    def remove(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:  # a resume removes it
            log.warning("cannot remove heartbeat %s: %s", self.path, exc.strerror or exc)
