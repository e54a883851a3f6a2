"""The suite directory on disk: where specs, results, attempts and the manifest live.

::

    <results-dir>/<suite>-<UTC stamp>/
      suite.json              the manifest: every planned spec, the backend, the data dir
      specs/<run_id>.json     what each worker read
      specs/<run_id>.heartbeat  while a container runs: renewed by the harness, watched by the worker
      <run_id>.json           one result per finished run (ok | failed | interrupted)
      attempts/               interrupted or unreadable results, archived before a re-run

Results are written once and never overwritten; resuming re-runs what has no ``ok``/``failed``
result (``failed`` ones too when asked to retry them); the result it replaces is archived first.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, ResultError, ResumeError
from harness.spec.run_spec import RunSpec
from harness.store.atomic import temp_glob
from harness.store.jsonio import write_json
from harness.store.protocol import HEARTBEAT_STALE_S
from harness.store.results import RunResult, load_result
from harness.timeutil import utc_now, utc_stamp

log = logging.getLogger(__name__)

MANIFEST = "suite.json"
MANIFEST_VERSION = 1
SPECS_DIR = "specs"
ATTEMPTS_DIR = "attempts"
FINISHED = ("ok", "failed")
HEARTBEAT_SUFFIX = ".heartbeat"


def result_path(out_dir: Path, spec: RunSpec) -> Path:
    return Path(out_dir) / f"{spec.run_id}.json"


def heartbeat_path(out_dir: Path, spec: RunSpec) -> Path:
    """The file whose modification time tells a container worker that its harness is alive."""
    return Path(out_dir) / SPECS_DIR / f"{spec.run_id}{HEARTBEAT_SUFFIX}"


def write_spec(out_dir: Path, spec: RunSpec) -> Path:
    """Write the spec the worker will read (``specs/<run_id>.json``), replacing a stale one."""
    spec_dir = Path(out_dir) / SPECS_DIR
    spec_dir.mkdir(parents=True, exist_ok=True)
    return write_json(spec_dir / f"{spec.run_id}.json", spec.to_dict(), overwrite=True)


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
            raise ConfigError(
                f"results directory {str(results_dir)!r} is not writable: {exc.strerror or exc}"
            ) from None
    raise ConfigError(f"cannot create a new suite directory under {str(results_dir)!r}")


def write_manifest(out_dir: Path, specs: list[RunSpec], meta: dict[str, Any]) -> Path:
    data = {
        "manifest_version": MANIFEST_VERSION,
        "created_utc": utc_now(),
        **meta,
        "runs": [s.to_dict() for s in specs],
    }
    return write_json(Path(out_dir) / MANIFEST, data)


def read_manifest(out_dir: Path) -> tuple[list[RunSpec], dict[str, Any]]:
    """The planned specs and the metadata of a suite directory; ResumeError if it is not one."""
    path = Path(out_dir) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResumeError(f"{str(out_dir)!r} is not a suite directory (no {MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise ResumeError(f"cannot read {str(path)!r}: {exc}") from None
    if (
        not isinstance(data, dict)
        or data.get("manifest_version") != MANIFEST_VERSION
        or not isinstance(data.get("runs"), list)
    ):
        raise ResumeError(f"{str(path)!r} is not a tfparity suite manifest of version {MANIFEST_VERSION}")
    try:
        specs = [RunSpec.from_dict(s) for s in data["runs"]]
    except ConfigError as exc:
        raise ResumeError(f"{str(path)!r} has an invalid run: {exc}") from None
    meta = {k: v for k, v in data.items() if k not in ("runs", "manifest_version", "created_utc")}
    return specs, meta


def archive_attempt(out_dir: Path, path: Path, run_id: str) -> Path:
    """Move a result that will be re-run into ``attempts/`` (never deleted)."""
    attempts = Path(out_dir) / ATTEMPTS_DIR
    attempts.mkdir(exist_ok=True)
    archived = attempts / f"{run_id}.{utc_stamp()}.json"
    path.rename(archived)
    log.info("archived %s to %s before re-running", path.name, archived)
    return archived


def existing_result(out_dir: Path, spec: RunSpec, *, retry_failed: bool = False) -> RunResult | None:
    """A finished (ok/failed) result for ``spec``; an interrupted or unreadable one is archived.

    With ``retry_failed`` only ``ok`` is final: a ``failed`` result is archived too, so the run runs again.
    """
    finished = ("ok",) if retry_failed else FINISHED
    path = result_path(out_dir, spec)
    if not path.exists():
        return None
    try:
        result: RunResult | None = load_result(path)
    except ResultError as exc:
        log.warning("%s", exc)
        result = None
    if result is not None and result.status in finished:
        return result
    archive_attempt(out_dir, path, spec.run_id)
    return None


def remove_stale_temp_files(out_dir: Path, *, heartbeat_stale_s: float = HEARTBEAT_STALE_S) -> list[Path]:
    """Left by a kill -9, removed on resume: temp files of atomic writes cut short (never valid
    results) and heartbeats nobody renewed for ``heartbeat_stale_s`` (a live harness renews its own)."""
    stale = [p for d in (out_dir, out_dir / SPECS_DIR) if d.is_dir() for p in d.glob(".*.json.*.tmp") if p.is_file()]
    now = time.time()
    for beat in (out_dir / SPECS_DIR).glob(f"*{HEARTBEAT_SUFFIX}") if (out_dir / SPECS_DIR).is_dir() else ():
        try:
            if now - beat.stat().st_mtime > heartbeat_stale_s:
                stale.append(beat)
        except OSError:  # removed meanwhile
            continue
    for path in stale:
        log.info("removing %s, left by an interrupted harness", path)
        path.unlink(missing_ok=True)
    return stale


def remove_partial_writes(out_path: Path) -> None:
    """Delete the temp files of a result write the stopped worker/container did not finish; never raises.

    Called only once the worker is gone: its atomic write leaves ``.<run_id>.json.<random>.tmp``
    behind when SIGTERM/SIGKILL lands between the temp file and the final link.
    """
    try:
        partial = list(out_path.parent.glob(temp_glob(out_path)))
    except OSError as exc:
        log.warning("cannot look for cut-short writes in %s: %s", out_path.parent, exc)
        return
    for tmp in partial:
        log.info("removing %s, a result write cut short", tmp.name)
        try:
            tmp.unlink(missing_ok=True)
        except OSError as exc:  # cleanup must not hide the run's own outcome; a resume sweeps it
            log.warning("cannot remove %s: %s", tmp, exc)
