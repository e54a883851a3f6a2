"""Runs a list of specs through a backend into one suite directory, resumably.

The directory holds ``suite.json`` (the manifest: every planned spec), ``specs/`` (what each
worker read) and one ``<run_id>.json`` per finished run. A run that already has an ``ok`` or
``failed`` result is skipped on resume; an ``interrupted`` one is archived under ``attempts/``
(never deleted) and run again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends.base import Backend, Progress, result_path
from harness.config import ConfigError, RunSpec
from harness.errors import UserError
from harness.results import ResultError, RunResult, load_result, write_json_atomic
from harness.timeutil import utc_now, utc_stamp

log = logging.getLogger(__name__)

MANIFEST = "suite.json"
MANIFEST_VERSION = 1


class ResumeError(UserError):
    """The directory to resume is not a suite directory or its manifest is unusable."""


class SuiteStoppedError(UserError):
    """The suite directory cannot take more results (disk full, permissions): stop in one line."""


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


def new_suite_dir(results_dir: Path, suite: str) -> Path:
    """``results_dir/<suite>-<UTC stamp>``; a second suite in the same second gets a suffix."""
    results_dir = Path(results_dir)
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create results directory {str(results_dir)!r}: {exc.strerror or exc}") from None
    stamp = utc_stamp()
    for n in range(100):
        candidate = results_dir / (f"{suite}-{stamp}" + (f"-{n}" if n else ""))
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
        except OSError as exc:
            raise ConfigError(f"results directory {str(results_dir)!r} is not writable: {exc.strerror or exc}") from None
    raise ConfigError(f"cannot create a new suite directory under {str(results_dir)!r}")


def write_manifest(out_dir: Path, specs: list[RunSpec], meta: dict[str, Any]) -> Path:
    data = {"manifest_version": MANIFEST_VERSION, "created_utc": utc_now(), **meta,
            "runs": [s.to_dict() for s in specs]}
    return write_json_atomic(Path(out_dir) / MANIFEST, data)


def read_manifest(out_dir: Path) -> tuple[list[RunSpec], dict[str, Any]]:
    path = Path(out_dir) / MANIFEST
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResumeError(f"{str(out_dir)!r} is not a suite directory (no {MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise ResumeError(f"cannot read {str(path)!r}: {exc}") from None
    if not isinstance(data, dict) or data.get("manifest_version") != MANIFEST_VERSION or not isinstance(
            data.get("runs"), list):
        raise ResumeError(f"{str(path)!r} is not a tfparity suite manifest of version {MANIFEST_VERSION}")
    try:
        specs = [RunSpec.from_dict(s) for s in data["runs"]]
    except ConfigError as exc:
        raise ResumeError(f"{str(path)!r} has an invalid run: {exc}") from None
    meta = {k: v for k, v in data.items() if k not in ("runs", "manifest_version", "created_utc")}
    return specs, meta


def existing_result(out_dir: Path, spec: RunSpec) -> RunResult | None:
    """A finished (ok/failed) result for spec, archiving an interrupted or unreadable one."""
    path = result_path(out_dir, spec)
    if not path.exists():
        return None
    try:
        result = load_result(path)
    except ResultError as exc:
        log.warning("%s", exc)
        result = None
    if result is not None and result.status in ("ok", "failed"):
        return result
    attempts = Path(out_dir) / "attempts"
    attempts.mkdir(exist_ok=True)
    archived = attempts / f"{spec.run_id}.{utc_stamp()}.json"
    path.rename(archived)
    log.info("archived %s to %s before re-running", path.name, archived)
    return None


def run_specs(specs: list[RunSpec], backend: Backend, out_dir: Path, *, on_event: EventFn | None = None,
              timeout_s: float | None = None) -> list[RunResult]:
    """Run every spec not already finished in ``out_dir``; returns all results in spec order.

    The caller has already called ``backend.prepare(specs)`` (before creating ``out_dir``, so that
    an unusable backend writes nothing).
    """
    try:
        return _run_specs(specs, backend, Path(out_dir), on_event=on_event, timeout_s=timeout_s)
    except OSError as exc:
        # Disk full or a directory that went away: every further run would fail the same way, and a
        # run recorded as failed for it would be skipped on resume. Nothing partial was written.
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        raise SuiteStoppedError(f"cannot write in suite directory {str(out_dir)!r}: {exc.strerror or exc}{where}; "
                                f"fix it, then resume with: tfparity run --resume {out_dir}") from None


def remove_stale_temp_files(out_dir: Path) -> list[Path]:
    """Temp files of atomic writes cut short by a kill -9 (never valid results): removed on resume."""
    stale = [p for d in (out_dir, out_dir / "specs") if d.is_dir()
             for p in d.glob(".*.json.*.tmp") if p.is_file()]
    for path in stale:
        log.info("removing %s, left by an interrupted write", path)
        path.unlink(missing_ok=True)
    return stale


def _run_specs(specs: list[RunSpec], backend: Backend, out_dir: Path, *, on_event: EventFn | None,
               timeout_s: float | None) -> list[RunResult]:
    remove_stale_temp_files(out_dir)
    emit = on_event or (lambda event: None)
    total = len(specs)
    results: list[RunResult] = []
    durations: list[float] = []
    todo = []
    for i, spec in enumerate(specs, start=1):
        done = existing_result(out_dir, spec)
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

        def progress(p: Progress, i: int = i, spec: RunSpec = spec, start: float = start,
                     remaining: int = remaining) -> None:
            per_epoch = (time.monotonic() - start) / max(p.epoch, 1)
            left_this = per_epoch * (p.epochs - p.epoch)
            avg = sum(durations) / len(durations) if durations else per_epoch * p.epochs
            emit(RunEvent("progress", i, total, spec, progress=p, eta_s=left_this + avg * (remaining - 1)))

        result = backend.run(spec, out_dir, progress=progress, timeout_s=timeout_s)
        durations.append(time.monotonic() - start)
        remaining -= 1
        results.append(result)
        emit(RunEvent("finish", i, total, spec, result=result,
                      eta_s=(sum(durations) / len(durations) * remaining) if remaining else 0.0))
    return results
