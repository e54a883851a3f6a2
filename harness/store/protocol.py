"""The worker <-> backend contract, owned here and imported by both sides.

A backend starts ``python -m harness.worker SPEC RESULT [--data-dir DIR]`` (in a subprocess or a
container), reads its combined output line by line and waits for its exit code:

* ``TFPARITY_PROGRESS {"epoch": e, "epochs": n, "elapsed_s": t}`` lines report progress;
* a line starting ``tfparity-worker: `` is the worker's own one-line error (the last one wins);
* the exit code says what happened (:class:`ExitCode`); the result file says the rest.

A container worker also gets a deadline of its own (``--deadline-s``: the run's timeout plus
:data:`DEADLINE_GRACE_S`) and a heartbeat file (``--heartbeat PATH``) whose modification time the
harness renews every :data:`HEARTBEAT_INTERVAL_S` while it follows the run. A worker whose deadline
passed, or whose heartbeat is older than ``--heartbeat-stale-s`` (default
:data:`HEARTBEAT_STALE_S`) or gone, stops itself with :attr:`ExitCode.ABANDONED`: a harness that
was killed or is stuck never leaves a container training on.

The worker's check modules (``python -m harness.worker.cuda_image`` / ``harness.worker.gpu_check``,
run in the GPU image) report what they found as one ``TFPARITY_FACTS {"kind": ..., ...}`` line.
"""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

log = logging.getLogger(__name__)

PROGRESS_PREFIX = "TFPARITY_PROGRESS "
WORKER_ERROR_PREFIX = "tfparity-worker: "
WORKER_MODULE = "harness.worker"
FACTS_PREFIX = "TFPARITY_FACTS "

# The pre-flight check of plugin benchmarks (harness.worker.check): a JSON list of requests
# ({"spec", "dataset", "input_shape", "n_classes"}) on stdin, one answer line per request
# (CHECK_PREFIX + {"ok": true|false|null, ...}; null: no TensorFlow to check with) on stdout.
CHECK_MODULE = "harness.worker.check"
CHECK_PREFIX = "TFPARITY_CHECK "


class ExitCode(IntEnum):
    """Exit codes of the worker process (and of the container that runs it)."""

    OK = 0  # the result file says status "ok"
    RUN_FAILED = 1  # the result file says status "failed" (the benchmark failed, not the machinery)
    USER_ERROR = 2  # the spec could not be read: one line, nothing written
    CANNOT_WRITE = 3  # the result could not be written (disk full, directory gone): one line, no file
    ABANDONED = 4  # the worker stopped itself: its deadline passed or its harness went silent; no file
    KILLED = 137  # 128 + SIGKILL, as a container runtime reports a killed process
    TERMINATED = 143  # 128 + SIGTERM: stopped from outside (docker stop, an engine shutting down)


# The heartbeat: renewed often, judged stale only after a long silence (a busy machine can delay a
# renewal by seconds, never by a minute), so that a live harness is never taken for a dead one.
HEARTBEAT_INTERVAL_S = 5.0
HEARTBEAT_STALE_S = 60.0
# The worker's own deadline comes this long after the harness's --timeout: the harness stops a run
# at its timeout; the worker's deadline only bounds a run whose harness is stuck.
DEADLINE_GRACE_S = 60.0


@dataclass(frozen=True)
class Progress:
    """A progress event from the worker (epoch granularity)."""

    run_id: str
    epoch: int
    epochs: int
    elapsed_s: float


def progress_line(epoch: int, epochs: int, elapsed_s: float) -> str:
    """The line the worker prints after each epoch."""
    return PROGRESS_PREFIX + json.dumps({"epoch": epoch, "epochs": epochs, "elapsed_s": round(elapsed_s, 3)})


def parse_progress(line: str, run_id: str) -> Progress | None:
    """The :class:`Progress` of a progress line; None for any other (or a malformed) line."""
    if not line.startswith(PROGRESS_PREFIX):
        return None
    try:
        data = json.loads(line[len(PROGRESS_PREFIX) :])
        return Progress(run_id, int(data["epoch"]), int(data["epochs"]), float(data["elapsed_s"]))
    except (ValueError, KeyError, TypeError):
        log.debug("ignoring malformed progress line %r", line)
        return None


def facts_line(kind: str, facts: dict[str, object]) -> str:
    """The one line a check module prints: its kind and what it found, as JSON."""
    return FACTS_PREFIX + json.dumps({"kind": kind, **facts}, default=str)


def parse_facts(lines: Iterable[str], kind: str) -> dict[str, object] | None:
    """The facts of the last well-formed ``kind`` line in ``lines``; None when there is none."""
    for line in reversed(list(lines)):
        if not line.startswith(FACTS_PREFIX):
            continue
        try:
            data = json.loads(line[len(FACTS_PREFIX) :])
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("kind") == kind:
            return data
    return None


def is_progress(line: str) -> bool:
    return line.startswith(PROGRESS_PREFIX)


def last_worker_error(lines: Iterable[str]) -> str | None:
    """The worker's own one-line error (``tfparity-worker: ...``, last one wins), without its prefix."""
    for line in reversed(list(lines)):
        if line.startswith(WORKER_ERROR_PREFIX):
            return line[len(WORKER_ERROR_PREFIX) :].removeprefix("error: ")
    return None


def worker_args(
    spec_path: str,
    result_path: str,
    data_dir: str | None = None,
    *,
    heartbeat: str | None = None,
    heartbeat_stale_s: float = HEARTBEAT_STALE_S,
    deadline_s: float | None = None,
) -> list[str]:
    """The worker's arguments after ``python -m harness.worker``."""
    args = [spec_path, result_path]
    if data_dir is not None:
        args += ["--data-dir", data_dir]
    if heartbeat is not None:
        args += ["--heartbeat", heartbeat, "--heartbeat-stale-s", f"{heartbeat_stale_s:g}"]
    if deadline_s is not None:
        args += ["--deadline-s", f"{deadline_s:g}"]
    return args


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def describe_exit(returncode: int | None, *, oom_evidence: bool = False) -> str:
    """A human reason for a worker that exited without writing a result.

    Out-of-memory is said only with evidence (the kernel's OOM kill recorded by the container
    runtime, ``oom_evidence``): a SIGKILL alone may as well be a ``kill -9``.
    """
    if returncode is None:
        return "worker did not exit"
    if returncode < 0:
        return f"worker killed by {signal_name(-returncode)}"
    if returncode == ExitCode.KILLED:
        return (
            "worker killed by the out-of-memory killer (exit 137)"
            if oom_evidence
            else "worker killed (exit 137: SIGKILL)"
        )
    if returncode == ExitCode.ABANDONED:
        return "worker stopped itself (exit 4): its deadline passed or its harness stopped renewing the heartbeat"
    if returncode == ExitCode.CANNOT_WRITE:
        return "worker could not write its result (exit 3: disk full or results directory not writable?)"
    return f"worker exited with code {returncode} without writing a result"
