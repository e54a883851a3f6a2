"""The one choke point for docker calls, the engine and compose checks, and one-line errors.

Every docker call goes through :func:`call` (python-on-whales, imported lazily so that the package
imports without it); its exceptions, which carry the command and stderr, become one-line
:class:`~harness.errors.BackendError` messages that say what to do.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from harness.errors import BackendError, ConfigError
from harness.orchestrate.backends.docker.settings import (
    BUILD_LOG_LINES,
    COMPOSE_HINT,
    DEFAULT_ENGINE_TIMEOUT_S,
    ENGINE_HINT,
    ENGINE_TIMEOUT_ENV,
    NVIDIA_HINT,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


def whales() -> Any:
    """python-on-whales, imported on first use: the rest of tfparity works without it."""
    try:
        import python_on_whales
    except ImportError:
        raise BackendError("the docker backend needs python-on-whales: pip install 'tfparity[docker]'") from None
    return python_on_whales


# The Docker context (a fleet host) every call of this thread goes to; None: the default engine
# (DOCKER_HOST or the local socket). A context variable: each lane thread talks to its own host.
ENGINE_CONTEXT: ContextVar[str | None] = ContextVar("tfparity_docker_context", default=None)


@contextmanager
def engine_context(name: str | None) -> Iterator[None]:
    """Within the block, :func:`client` (and so every check and call) talks to context ``name``."""
    token = ENGINE_CONTEXT.set(name)
    try:
        yield
    finally:
        ENGINE_CONTEXT.reset(token)


def engine_address() -> str:
    if (context := ENGINE_CONTEXT.get()) is not None:
        return f"context {context!r}"
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def explain_docker_error(what: str, command: list[str] | None, returncode: int | None, stderr: str) -> str:
    """One line for a failed docker command: the known failures get their remedy, others their stderr."""
    text = stderr or ""
    low = text.lower()
    if "could not select device driver" in low and "nvidia" in low:
        return f"{what}: {NVIDIA_HINT}"
    if (
        "cannot connect to the docker daemon" in low
        or "is the docker daemon running" in low
        or ("docker.sock" in low and ("connection refused" in low or "no such file" in low))
        or "error during connect" in low
    ):
        return f"{what}: Docker engine not reachable at {engine_address()}; {ENGINE_HINT}"
    if (
        "'compose' is not a docker command" in low
        or "unknown command: docker compose" in low
        or ("unknown shorthand flag" in low and "compose" in " ".join(command or []))
    ):
        return f"{what}: {COMPOSE_HINT}"
    if "permission denied" in low and "docker" in low and ".sock" in low:
        return (
            f"{what}: permission denied on the Docker socket {engine_address()}; add your user to the "
            "'docker' group or run with sudo"
        )
    if command and "build" in command[1:3]:
        return f"{what} failed: {summarize_build_log(text)}"
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else "no error output"
    cmd = " ".join(command or [])
    return f"{what} failed (exit {returncode}): {last} [command: {cmd}]"


def summarize_build_log(text: str, n_lines: int = BUILD_LOG_LINES) -> str:
    """The failing step of a classic-builder log and its last output lines, on one line."""
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    step_at = max((i for i, ln in enumerate(lines) if ln.startswith("Step ")), default=None)
    step = ""
    if step_at is not None:
        step = lines[step_at]
        step = (step[:117] + "...") if len(step) > 120 else step
        lines = lines[step_at + 1 :]
    code = ""
    noise = (
        "--->",
        "Removing intermediate container",
        "DEPRECATED:",
        "BuildKit is currently",
        "environment-variable",
        "Sending build context",
    )
    kept = []
    for ln in lines:
        found = re.search(r"returned a non-zero code: (\d+)", ln)
        if found:
            code = f" (exit code {found.group(1)})"
            continue
        if not ln.lstrip().startswith(noise):
            kept.append(ln.strip())
    tail = " | ".join(kept[-n_lines:]) or "no output"
    return (f"at {step}: " if step else "") + tail + code


class DockerCallError(BackendError):
    """A docker command failed: the one-line message, plus docker's own last error line as data."""

    def __init__(self, message: str, *, return_code: int | None, docker_said: str) -> None:
        super().__init__(message)
        self.return_code = return_code
        self.docker_said = docker_said


def call(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one python-on-whales call; its exceptions become a one-line :class:`DockerCallError`."""
    pow_ = whales()
    try:
        return fn(*args, **kwargs)
    except pow_.exceptions.DockerException as exc:
        # The classic builder prints the build log on stdout: keep both for the message.
        output = "\n".join(part for part in (exc.stdout, exc.stderr) if part)
        lines = [ln.strip() for ln in (exc.stderr or output or "").splitlines() if ln.strip()]
        raise DockerCallError(
            explain_docker_error(what, [str(c) for c in exc.docker_command], exc.return_code, output),
            return_code=exc.return_code,
            docker_said=lines[-1] if lines else f"exit {exc.return_code}",
        ) from None
    except pow_.ClientNotFoundError:
        raise BackendError(f"{what}: the docker CLI is not on PATH; install docker.io (or docker-ce-cli)") from None


def client(**config: Any) -> Any:
    """A python-on-whales DockerClient (compose file and project settings go in ``config``)."""
    context = ENGINE_CONTEXT.get()
    if context is not None:
        config.setdefault("context", context)
    return whales().DockerClient(**config)


def engine_timeout_s() -> float:
    """Seconds the engine check waits for an answer: ``$TFPARITY_DOCKER_TIMEOUT_S`` or 20."""
    raw = os.environ.get(ENGINE_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_ENGINE_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{ENGINE_TIMEOUT_ENV} must be a number of seconds > 0, got {raw!r}")
    return value


def check_engine(timeout_s: float | None = None) -> dict[str, Any]:
    """Fail in one line unless the engine answers within ``timeout_s``; returns a few facts about it.

    python-on-whales' ``info`` has no timeout, so this runs the same ``docker system info`` itself:
    on expiry ``subprocess.run`` kills the CLI (and does on Ctrl-C too), nothing is left waiting.
    """
    what = "Docker engine check"
    timeout_s = engine_timeout_s() if timeout_s is None else timeout_s
    docker_cmd = [str(part) for part in call(what, lambda: client().client_config.docker_cmd)]
    command = [*docker_cmd, "system", "info", "--format", "{{json .}}"]
    try:
        out = subprocess.run(command, capture_output=True, text=True, errors="replace", timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise BackendError(
            f"Docker engine at {engine_address()} did not answer within {timeout_s:g} s; is dockerd healthy? "
            f"(a slow engine can be given longer with {ENGINE_TIMEOUT_ENV}=SECONDS)"
        ) from None
    except FileNotFoundError:
        raise BackendError(f"{what}: the docker CLI is not on PATH; install docker.io (or docker-ce-cli)") from None
    except OSError as exc:
        raise BackendError(f"{what}: cannot run {docker_cmd[0]!r}: {exc.strerror or exc}") from None
    if out.returncode != 0:
        raise BackendError(explain_docker_error(what, command, out.returncode, out.stderr))
    try:
        info = json.loads(out.stdout)
    except ValueError:
        raise BackendError(
            f"{what}: unexpected output of {' '.join(command)!r}: {out.stdout.strip()[:200]!r}"
        ) from None
    return {"server_version": info.get("ServerVersion"), "runtimes": sorted((info.get("Runtimes") or {}).keys())}


def engine_answers(timeout_s: float) -> bool:
    """Whether the engine answers within ``timeout_s`` (asked after a run's container failed)."""
    try:
        check_engine(timeout_s)
    except BackendError:
        return False
    return True


def check_compose() -> str:
    """Fail in one line unless ``docker compose`` (v2) works; returns its version."""
    return str(call("docker compose check", client().compose.version))


def image_exists(tag: str) -> bool:
    return bool(call(f"image lookup {tag}", client().image.exists, tag))


def image_info(tag: str) -> dict[str, Any]:
    """Id, labels and creation time of a local image."""
    img = call(f"image inspect {tag}", client().image.inspect, tag)
    labels = dict(img.config.labels or {}) if img.config else {}
    return {"id": img.id, "labels": labels, "created": str(img.created)}


def last_error_line(exc: BaseException) -> str:
    stderr = getattr(exc, "stderr", None)
    text = stderr if stderr else str(exc)
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__
