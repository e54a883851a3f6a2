"""What every backend does, and the pieces they share.

A backend runs one :class:`RunSpec` in an isolated process (``local``) or container (``docker``):
it writes ``<out_dir>/specs/<run_id>.json``, starts ``python -m harness.worker SPEC RESULT``,
streams its output (progress lines are parsed, the rest is logged and kept as a tail) and returns
the :class:`RunResult`. If the worker did not write a result (crash, kill, timeout, Ctrl-C), the
backend writes a ``failed``/``interrupted`` result itself, so every planned run ends as a file.
"""

from __future__ import annotations

import collections
import json
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from harness.config import RunSpec
from harness.errors import UserError
from harness.results import ResultError, RunResult, load_result, write_json_atomic, write_result
from harness.timeutil import utc_now

log = logging.getLogger(__name__)

PROGRESS_PREFIX = "TFPARITY_PROGRESS "
LOG_TAIL_LINES = 40
# The worker's exit code when it could not write its result (disk full, unwritable directory), and
# the prefix of its one-line error on stderr.
EXIT_CANNOT_WRITE = 3
WORKER_ERROR_PREFIX = "tfparity-worker: "


class BackendError(UserError, RuntimeError):
    """The backend cannot run anything (engine down, image build failed, ...): a user-facing line."""


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


@dataclass(frozen=True)
class Progress:
    """A progress event from the worker (epoch granularity)."""

    run_id: str
    epoch: int
    epochs: int
    elapsed_s: float


ProgressFn = Callable[[Progress], None]


class Backend(Protocol):
    name: str

    def prepare(self, specs: list[RunSpec]) -> None:
        """Check/prepare everything the runs need (engine, image); raise BackendError if impossible."""

    def run(self, spec: RunSpec, out_dir: Path, *, progress: ProgressFn | None = None,
            timeout_s: float | None = None) -> RunResult:
        """Run one spec; always returns a result already written to ``result_path(out_dir, spec)``."""


def result_path(out_dir: Path, spec: RunSpec) -> Path:
    return Path(out_dir) / f"{spec.run_id}.json"


def write_spec(out_dir: Path, spec: RunSpec) -> Path:
    """Write the spec the worker will read (``specs/<run_id>.json``), replacing a stale one."""
    spec_dir = Path(out_dir) / "specs"
    spec_dir.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(spec_dir / f"{spec.run_id}.json", spec.to_dict(), overwrite=True)


class LogTail:
    """Keeps the last lines of a worker's output and parses progress lines."""

    def __init__(self, run_id: str, progress: ProgressFn | None, prefix: str = "") -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        self._run_id = run_id
        self._progress = progress
        self._prefix = prefix
        self._logger = logging.getLogger("harness.worker.output")

    def feed(self, line: str) -> None:
        line = line.rstrip("\r\n")
        if line.startswith(PROGRESS_PREFIX):
            if self._progress is not None:
                try:
                    data = json.loads(line[len(PROGRESS_PREFIX):])
                    self._progress(Progress(self._run_id, int(data["epoch"]), int(data["epochs"]),
                                            float(data["elapsed_s"])))
                except (ValueError, KeyError, TypeError):
                    log.debug("ignoring malformed progress line %r", line)
            return
        # Keras' per-step progress bars rewrite one line with \r; keep only the last state.
        line = line.rsplit("\r", 1)[-1]
        if line.strip():
            self.lines.append(line)
            self._logger.debug("%s%s", self._prefix, line)


def worker_says(lines: Any) -> str | None:
    """The worker's own one-line error (``tfparity-worker: ...``, last one wins), without its prefix."""
    return next((line[len(WORKER_ERROR_PREFIX):].removeprefix("error: ") for line in reversed(list(lines))
                 if line.startswith(WORKER_ERROR_PREFIX)), None)


def cannot_write_error(says: str | None, out_dir: Path) -> BackendError:
    """Exit 3 is a failure of the results directory, not of the run: recording the run as failed
    would make a resume skip it, so the suite stops in one line instead."""
    return BackendError(f"{says or 'the worker could not write its result'}; free space or fix "
                        f"the results directory, then resume with: tfparity run --resume {out_dir}")


def remove_partial_writes(out_path: Path) -> None:
    """Delete the temp files of a result write the stopped worker/container did not finish; never raises.

    Called only once the worker is gone: its atomic write leaves ``.<run_id>.json.<random>.tmp``
    behind when SIGTERM/SIGKILL lands between the temp file and the final link.
    """
    try:
        partial = list(out_path.parent.glob(f".{out_path.name}.*.tmp"))
    except OSError as exc:
        log.warning("cannot look for cut-short writes in %s: %s", out_path.parent, exc)
        return
    for tmp in partial:
        log.info("removing %s, a result write cut short", tmp.name)
        try:
            tmp.unlink(missing_ok=True)
        except OSError as exc:  # cleanup must not hide the run's own outcome; a resume sweeps it
            log.warning("cannot remove %s: %s", tmp, exc)


def describe_exit(returncode: int | None) -> str:
    """A human reason for a worker that exited without writing a result."""
    if returncode is None:
        return "worker did not exit"
    if returncode < 0:
        sig = -returncode
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
        if sig == signal.SIGKILL:
            return f"worker killed by {name}, likely out of memory"
        return f"worker killed by {name}"
    if returncode == 137:
        return "worker killed (exit 137), likely out of memory"
    if returncode == 3:
        return "worker could not write its result (exit 3: disk full or results directory not writable?)"
    return f"worker exited with code {returncode} without writing a result"


def finish_run(spec: RunSpec, out_dir: Path, *, started_utc: str, returncode: int | None,
               tail: list[str], reason: str | None = None, status: str = "failed",
               environment: dict | None = None) -> RunResult:
    """Return the worker's result if it wrote a valid one; otherwise record why it did not."""
    path = result_path(out_dir, spec)
    if path.exists():
        try:
            return load_result(path)
        except ResultError as exc:
            # A corrupt result can only come from a bug or tampering: keep it for inspection.
            bad = path.with_suffix(".corrupt")
            path.rename(bad)
            reason = f"worker wrote an invalid result (kept as {bad.name}): {exc}"
    result = RunResult(
        run_id=spec.run_id, status=status, spec=spec.to_dict(), started_utc=started_utc,
        finished_utc=utc_now(), error=reason or describe_exit(returncode), log_tail=list(tail),
        environment=environment or {})
    write_result(result, path)
    return result
