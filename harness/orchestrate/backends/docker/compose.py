"""Compose projects and run containers: names, env files, following, stopping, cleaning up, sweeping
the containers of harnesses that are gone."""

from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path
from typing import Any

from harness.errors import BackendError
from harness.orchestrate.backends.base import LogTail
from harness.orchestrate.backends.docker.engine import call, client, last_error_line
from harness.orchestrate.backends.docker.owner import Owner
from harness.orchestrate.backends.docker.settings import COMPOSE_FILE, SERVICES, STALE_AFTER_S, STOP_GRACE_S

log = logging.getLogger(__name__)


def project_name(run_id: str) -> str:
    """A compose project name unique per run: lower-case letters, digits, '-' and '_'."""
    stem = re.sub(r"[^a-z0-9_-]+", "-", run_id.lower()).strip("-")[:40]
    return f"tfparity-{stem}-{uuid.uuid4().hex[:8]}"


def write_env_file(directory: Path, values: dict[str, str]) -> Path:
    path = directory / "compose.env"
    for key, value in values.items():
        if "\n" in value:
            raise BackendError(f"{key} must not contain a newline, got {value!r}")
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    return path


def compose_client(project: str, env_file: Path, overrides: list[Path] | None = None) -> Any:
    """A client for ``project``: docker/compose.yaml plus ``overrides`` (e.g. the GPU device request)."""
    files = [COMPOSE_FILE, *(overrides or [])]
    return client(compose_files=files, compose_project_name=project, compose_env_files=[env_file])


def cleanup_project(dc: Any, project: str) -> None:
    """Remove every container of ``project`` and the project itself; never raises."""
    try:
        for ctr in dc.container.list(all=True, filters=[("label", f"com.docker.compose.project={project}")]):
            dc.container.remove(ctr, force=True, volumes=True)
    except Exception as exc:  # cleanup must not hide the run's own outcome
        log.warning("could not remove the containers of compose project %s: %s", project, last_error_line(exc))
    try:
        dc.compose.down(remove_orphans=True, volumes=True, quiet=True)
    except Exception as exc:
        log.warning("compose down of project %s failed: %s", project, last_error_line(exc))


def sweep_stale_containers(
    min_age_s: float = STALE_AFTER_S, *, prefix: str = "tfparity-", me: Owner | None = None
) -> list[str]:
    """Remove the run containers nobody will remove: those whose harness is gone. Returns their names.

    A container whose owner (:mod:`.owner`) is visible from here is removed, running or not, once that
    harness process is gone (``kill -9``, an engine that went away mid-run), and never while it
    lives. One whose owner cannot be seen from here (another host or pid namespace, or no owner
    labels) is removed only once it has been exited for ``min_age_s``: while it runs, its own
    deadline and heartbeat end it.
    """
    import datetime as dt

    me = me or Owner.me()
    dc = client()
    now = dt.datetime.now(dt.timezone.utc)
    removed = []
    for service in SERVICES.values():
        filters = [("label", f"com.docker.compose.service={service}")]
        for ctr in call("container list", dc.container.list, all=True, filters=filters):
            try:
                # Read everything now: the object re-inspects lazily, which fails once it is removed.
                name = ctr.name
                labels = dict(ctr.config.labels or {})
                status, finished = ctr.state.status, ctr.state.finished_at
            except Exception:  # removed meanwhile by its own backend
                continue
            if not labels.get("com.docker.compose.project", "").startswith(prefix):
                continue
            why = _stale_reason(Owner.from_labels(labels), me, status, finished, now, min_age_s)
            if why is None:
                continue
            log.warning("removing container %s (%s): %s", name, status, why)
            try:
                dc.container.remove(name, force=True, volumes=True)
                removed.append(name)
            except Exception as exc:
                log.debug("could not remove %s: %s", name, last_error_line(exc))
    return removed


def _stale_reason(owner: Owner | None, me: Owner, status: str, finished: Any, now: Any, min_age_s: float) -> str | None:
    """Why a run container is to be removed, or None to leave it alone."""
    if owner is not None and owner.visible_from(me):
        return None if owner.is_alive() else f"the tfparity process that started it (pid {owner.pid}) is gone"
    if status not in ("exited", "dead") or finished is None:
        return None
    age_s = (now - finished).total_seconds()
    if age_s <= min_age_s:
        return None
    return f"exited {age_s / 60:.0f} min ago, started by a tfparity process not visible from here"


def stream_logs(dc: Any, name: str, tail: LogTail) -> None:
    """Feed the container's combined output to the log tail until the container exits."""
    try:
        for _source, chunk in dc.container.logs(name, follow=True, stream=True):
            for line in chunk.decode("utf-8", errors="replace").splitlines():
                tail.feed(line)
    except Exception as exc:  # the main thread decides from the container state
        log.debug("log stream of %s ended: %s", name, last_error_line(exc))


def container_state(dc: Any, name: str) -> dict[str, Any] | None:
    try:
        state = dc.container.inspect(name).state
    except Exception as exc:
        log.debug("inspect %s: %s", name, last_error_line(exc))
        return None
    return {
        "running": bool(state.running),
        "exit_code": state.exit_code,
        "oom_killed": bool(state.oom_killed),
        "finished_at": state.finished_at,  # a datetime (the engine's clock): which of several ended first
    }


def container_id(dc: Any, name: str) -> str:
    """The container's id, or "" when it is gone."""
    try:
        return str(dc.container.inspect(name).id)
    except Exception as exc:
        log.debug("inspect %s: %s", name, last_error_line(exc))
        return ""


def stop_container(dc: Any, name: str, grace_s: int = STOP_GRACE_S) -> None:
    try:
        if grace_s:
            dc.container.stop(name, time=grace_s)
        else:
            dc.container.kill(name)
    except Exception as exc:
        log.debug("stop %s: %s", name, last_error_line(exc))
