"""Who owns a run container: the harness process that started it, recorded in the container's labels.

A container outlives a harness killed with ``kill -9`` (and one whose engine went away mid-run).
Every run container is labelled with its owner (host name, kernel boot id, pid namespace, pid and the
pid's start time), so that the next start can tell a container whose harness is gone (remove it,
running or not) from one of a live harness (never touch it). Another host's (or another pid
namespace's) harness cannot be seen from here: its containers end by their own deadline and
heartbeat, and are removed once they have been exited for a long time.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from harness.orchestrate.backends.docker.settings import LABEL_OWNER_PREFIX

FIELDS = ("host", "boot-id", "pid-ns", "pid", "start-ticks")


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii").strip()
    except OSError:
        return ""


def start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22); "" if gone.

    With the pid it names one process for the whole boot: a pid reused by another process differs.
    """
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return ""
    # The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


@dataclass(frozen=True)
class Owner:
    host: str
    boot_id: str
    pid_ns: str
    pid: int
    start_ticks: str

    @classmethod
    def me(cls) -> Owner:
        pid = os.getpid()
        return cls(
            socket.gethostname(), _read("/proc/sys/kernel/random/boot_id"), pid_namespace(), pid, start_ticks(pid)
        )

    def labels(self) -> dict[str, str]:
        values = (self.host, self.boot_id, self.pid_ns, str(self.pid), self.start_ticks)
        return {LABEL_OWNER_PREFIX + name: value for name, value in zip(FIELDS, values, strict=True)}

    @classmethod
    def from_labels(cls, labels: dict[str, str]) -> Owner | None:
        """The owner a container's labels name; None for a container without (or with broken) owner labels."""
        values = [labels.get(LABEL_OWNER_PREFIX + name, "") for name in FIELDS]
        if not all(values) or not values[3].isdigit():
            return None
        host, boot_id, pid_ns, pid, ticks = values
        return cls(host, boot_id, pid_ns, int(pid), ticks)

    def visible_from(self, other: Owner) -> bool:
        """Whether ``other`` can see this owner's process: same host, same boot, same pid namespace."""
        return (self.host, self.boot_id, self.pid_ns) == (other.host, other.boot_id, other.pid_ns)

    def is_alive(self) -> bool:
        """Whether this process still runs (only meaningful when :meth:`visible_from` the caller)."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's process: it exists
            pass
        return start_ticks(self.pid) == self.start_ticks
