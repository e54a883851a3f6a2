"""Runs a list of specs through a backend into one suite directory, resumably.

The directory layout (manifest, specs, results, attempts) is :mod:`harness.store.layout`'s. A run
that already has an ``ok`` or ``failed`` result is skipped on resume (a ``failed`` one is run again
with ``retry_failed``); an ``interrupted`` one is archived under ``attempts/`` (never deleted) and
run again. A failure of the machinery stops the suite (:class:`~harness.errors.SuiteStoppedError`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.orchestrate.backends.base import Backend, suite_stopped
from harness.spec.run_spec import RunSpec
from harness.store.layout import existing_result, remove_stale_temp_files
from harness.store.protocol import Progress
from harness.store.results import RunResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunEvent:
    """What the runner reports to its caller (the CLI renders it)."""

    kind: str  # "skip" | "start" | "progress" | "finish"
    index: int  # 1-based position in the suite
    total: int
    spec: RunSpec
    result: RunResult | None = None
    progress: Progress | None = None
    eta_s: float | None = None


EventFn = Callable[[RunEvent], None]


def run_specs(
    specs: list[RunSpec],
    backend: Backend,
    out_dir: Path,
    *,
    on_event: EventFn | None = None,
    timeout_s: float | None = None,
    retry_failed: bool = False,
) -> list[RunResult]:
    """Run every spec not already finished in ``out_dir``; returns all results in spec order.

    The caller has already called ``backend.prepare(specs)`` (before creating ``out_dir``, so that
    an unusable backend writes nothing). ``retry_failed``: a ``failed`` result is not final either.
    """
    try:
        return _run_specs(
            specs, backend, Path(out_dir), on_event=on_event, timeout_s=timeout_s, retry_failed=retry_failed
        )
    except OSError as exc:
        # Disk full or a directory that went away: every further run would fail the same way, and a
        # run recorded as failed for it would be skipped on resume. Nothing partial was written.
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        cause = f"cannot write in suite directory {str(out_dir)!r}: {exc.strerror or exc}{where}"
        raise suite_stopped(cause, "fix it", out_dir) from None


def _run_specs(
    specs: list[RunSpec],
    backend: Backend,
    out_dir: Path,
    *,
    on_event: EventFn | None,
    timeout_s: float | None,
    retry_failed: bool,
) -> list[RunResult]:
    remove_stale_temp_files(out_dir)
    emit = on_event or (lambda event: None)
    total = len(specs)
    results: list[RunResult] = []
    durations: list[float] = []
    todo = []
    for i, spec in enumerate(specs, start=1):
        done = existing_result(out_dir, spec, retry_failed=retry_failed)
        if done is not None:
            emit(RunEvent("skip", i, total, spec, result=done))
        todo.append((i, spec, done))
    remaining = sum(1 for _, _, done in todo if done is None)
    for i, spec, done in todo:
        if done is not None:
            results.append(done)
            continue
        eta = (sum(durations) / len(durations) * remaining) if durations else None
        emit(RunEvent("start", i, total, spec, eta_s=eta))
        start = time.monotonic()

        def progress(
            p: Progress, i: int = i, spec: RunSpec = spec, start: float = start, remaining: int = remaining
        ) -> None:
            per_epoch = (time.monotonic() - start) / max(p.epoch, 1)
            left_this = per_epoch * (p.epochs - p.epoch)
            avg = sum(durations) / len(durations) if durations else per_epoch * p.epochs
            emit(RunEvent("progress", i, total, spec, progress=p, eta_s=left_this + avg * (remaining - 1)))

        result = backend.run(spec, out_dir, progress=progress, timeout_s=timeout_s)
        durations.append(time.monotonic() - start)
        remaining -= 1
        results.append(result)
        emit(
            RunEvent(
                "finish",
                i,
                total,
                spec,
                result=result,
                eta_s=(sum(durations) / len(durations) * remaining) if remaining else 0.0,
            )
        )
    return results
