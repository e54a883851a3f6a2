"""What every backend does, and the run skeleton they share.

A backend runs one :class:`RunSpec` in an isolated process (``local``) or container (``docker``).
:meth:`Backend.run` is the shared skeleton: write ``<out_dir>/specs/<run_id>.json``, let the
backend execute the worker (:meth:`Backend.execute`: start it, stream its output into a
:class:`LogTail`, wait, stop it on every exit path), then return the :class:`RunResult` the worker
wrote. If it wrote none (crash, kill, timeout, Ctrl-C), the skeleton writes a ``failed`` or
``interrupted`` result itself, so every planned run ends as a file. A worker that could not write
its result (exit 3) stops the suite instead: recorded as failed, a resume would skip it.

A failure of the machinery under a run (the engine went away, the image was deleted, the container
vanished or was stopped from outside) is not a failure of the benchmark: the backend raises
:class:`MachineryFailure`, the run is recorded ``interrupted`` with the cause (a resume runs it
again) and the suite stops at once with one line (:class:`~harness.errors.SuiteStoppedError`).
"""

from __future__ import annotations

import abc
import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from harness.errors import ResultError, RunInterrupted, SuiteStoppedError
from harness.spec.run_spec import RunSpec
from harness.store.layout import remove_partial_writes, result_path, write_spec
from harness.store.members import Member
from harness.store.protocol import (
    ExitCode,
    Progress,
    describe_exit,
    is_progress,
    last_worker_error,
    parse_progress,
    signal_name,
)
from harness.store.results import RunResult, load_result, write_result
from harness.timeutil import utc_now

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 40
ProgressFn = Callable[[Progress], None]


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
        if is_progress(line):
            event = parse_progress(line, self._run_id)
            if event is not None and self._progress is not None:
                self._progress(event)
            return
        # Keras' per-step progress bars rewrite one line with \r; keep only the last state.
        line = line.rsplit("\r", 1)[-1]
        if line.strip():
            self.lines.append(line)
            self._logger.debug("%s%s", self._prefix, line)


@dataclass
class Execution:
    """One execution of the worker, as the backend saw it."""

    spec: RunSpec
    spec_path: Path
    out_path: Path
    tail: LogTail
    returncode: int | None = None
    reason: str | None = None  # why no result was written, when the backend knows better than the exit code
    environment: dict[str, Any] = field(default_factory=dict)  # for results the worker did not write
    stop_note: str = ""  # how the worker was stopped on an interrupt, e.g. " (container stopped)"
    workers: list[Member] = field(default_factory=list)  # a multi-worker run's containers, as the backend saw them


class MachineryFailure(Exception):
    """The machinery failed under a run (not the benchmark); raised by :meth:`Backend.execute`.

    ``cause`` becomes the run's ``interrupted`` error; ``remedy`` (may be empty) says what to do
    before resuming. The backend has stopped and cleaned up whatever it still could.
    """

    def __init__(self, cause: str, remedy: str = "") -> None:
        super().__init__(cause)
        self.cause = cause
        self.remedy = remedy


class Backend(abc.ABC):
    """Runs specs in isolation; subclasses say how (:meth:`execute`)."""

    name: ClassVar[str]
    # What a run hit by a failure of the machinery is recorded as: ``interrupted`` (the suite stops,
    # a resume runs it again) or, for a fleet host, ``failed`` (only that host's runs end).
    machinery_status: str = "interrupted"
    stop_signum: int | None = None  # set by request_stop: another thread asks the run under way to end

    def request_stop(self, signum: int) -> None:
        """Ask the run under way to stop as on ``signum`` (lanes: the signal reached the main thread)."""
        self.stop_signum = signum

    @abc.abstractmethod
    def prepare(self, specs: list[RunSpec]) -> None:
        """Check/prepare everything the runs need (engine, image); raise BackendError if impossible."""

    @abc.abstractmethod
    def execute(self, run: Execution, timeout_s: float | None) -> None:
        """Run the worker for ``run`` to its end, setting ``returncode``/``reason``; stop it on every exit path.

        On :class:`RunInterrupted` the worker must be stopped before the exception propagates; a
        failure of the machinery (not of the benchmark) raises :class:`MachineryFailure`.
        """

    def log_prefix(self, spec: RunSpec) -> str:
        return f"[{spec.run_id}] "

    def run(
        self, spec: RunSpec, out_dir: Path, *, progress: ProgressFn | None = None, timeout_s: float | None = None
    ) -> RunResult:
        """Run one spec; always returns a result already written to ``result_path(out_dir, spec)``."""
        out_dir = Path(out_dir)
        run = Execution(
            spec,
            write_spec(out_dir, spec),
            result_path(out_dir, spec),
            LogTail(spec.run_id, progress, prefix=self.log_prefix(spec)),
        )
        started_utc = utc_now()
        try:
            self.execute(run, timeout_s)
        except RunInterrupted as exc:
            remove_partial_writes(run.out_path)
            reason = f"interrupted by {signal_name(exc.signum)}{run.stop_note}"
            finish_run(run, out_dir, started_utc, reason=reason, status="interrupted")
            raise
        except MachineryFailure as exc:
            remove_partial_writes(run.out_path)
            # The worker may have written its result before the machinery failed: finish_run keeps it.
            finish_run(run, out_dir, started_utc, reason=exc.cause, status=self.machinery_status)
            if self.machinery_status == "failed":  # a fleet host: its lane ends the host, not the suite
                raise
            raise suite_stopped(f"{exc.cause} during run {spec.run_id}", exc.remedy, out_dir) from None
        finally:
            remove_partial_writes(run.out_path)
        if run.returncode == ExitCode.CANNOT_WRITE and not run.out_path.exists():
            raise cannot_write_error(run, out_dir)
        says = last_worker_error(run.tail.lines)
        if run.reason is None and run.returncode and says and not run.out_path.exists():
            run.reason = f"worker exited with code {run.returncode}: {says}"
        return finish_run(run, out_dir, started_utc, reason=run.reason)


def suite_stopped(cause: str, remedy: str, out_dir: Path) -> SuiteStoppedError:
    """The one line that stops a suite: the cause, what to do, and the command that resumes it."""
    todo = f"{remedy}, then resume" if remedy else "resume"
    return SuiteStoppedError(f"{cause}; {todo} with: tfparity run --resume {out_dir}")


def cannot_write_error(run: Execution, out_dir: Path) -> SuiteStoppedError:
    """Exit 3 is a failure of the results directory, not of the run: stop the suite in one line."""
    says = last_worker_error(run.tail.lines) or "the worker could not write its result"
    return suite_stopped(says, "free space or fix the results directory", out_dir)


def finish_run(
    run: Execution, out_dir: Path, started_utc: str, *, reason: str | None, status: str = "failed"
) -> RunResult:
    """Return the worker's result if it wrote a valid one; otherwise record why it did not."""
    path = run.out_path
    if path.exists():
        try:
            return load_result(path)
        except ResultError as exc:
            # A corrupt result can only come from a bug or tampering: keep it for inspection.
            bad = path.with_suffix(".corrupt")
            path.rename(bad)
            reason = f"worker wrote an invalid result (kept as {bad.name}): {exc}"
    result = RunResult(
        run_id=run.spec.run_id,
        status=status,
        spec=run.spec.to_dict(),
        started_utc=started_utc,
        finished_utc=utc_now(),
        error=reason or describe_exit(run.returncode),
        log_tail=list(run.tail.lines),
        environment=run.environment,
        workers=run.workers,
    )
    write_result(result, path)
    return result
