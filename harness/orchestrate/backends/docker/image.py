"""The worker images: staged build context, classic-builder build, staleness by source hash.

Images (``tfparity:cpu``/``tfparity:gpu``) are built with the classic builder (python-on-whales'
``docker.build`` needs buildx; :func:`~.build.legacy_build` shows its progress) from
a small staged context (harness/, pyproject.toml, requirements.txt, the wheelhouse), never the
whole checkout. An image carries a hash of the harness sources as a label: a stale image (the code
changed since the build) is rebuilt, so a container never runs other code than the host's
checkout; runs then use the image by id.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.errors import BackendError
from harness.orchestrate.backends.docker.build import Notify, legacy_build
from harness.orchestrate.backends.docker.engine import image_exists, image_info
from harness.orchestrate.backends.docker.settings import (
    BUILD_BASE_SCRIPT,
    DEFAULT_BASE_IMAGES,
    DEFAULT_IMAGES,
    DOCKERFILE,
    LABEL_BASE_IMAGE,
    LABEL_SOURCE_HASH,
    LOCAL_BASE_IMAGE,
    REPO_ROOT,
    WHEELHOUSE_DIR,
    WHEELHOUSE_SCRIPT,
)
from harness.store.provenance import git_commit

log = logging.getLogger(__name__)

# Files whose change makes an image stale (and its commit "-dirty").
IMAGE_SOURCES = ("harness", "pyproject.toml", "docker/Dockerfile")


def requirements() -> tuple[list[str], str]:
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

        reqs = [r.split(";")[0].strip() for r in (requires("tfparity") or []) if ";" not in r or 'extra == "cpu"' in r]
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


def run_script(script: Path, *args: str) -> None:
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


def stage_context(dest: Path, use_wheelhouse: bool) -> None:
    """Copy what the Dockerfile needs into ``dest``: a few MB plus the wheelhouse (hard links if possible)."""
    shutil.copy2(DOCKERFILE, dest / "Dockerfile")
    shutil.copy2(REPO_ROOT / "pyproject.toml", dest / "pyproject.toml")
    readme = REPO_ROOT / "README.md"
    # pyproject names README.md as the readme: the build needs the file, not its content.
    (dest / "README.md").write_text(
        readme.read_text(encoding="utf-8") if readme.is_file() else "tfparity\n", encoding="utf-8"
    )
    shutil.copytree(REPO_ROOT / "harness", dest / "harness", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    others, _tf = requirements()
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


def _prepare_inputs(device: str, base_image: str, say: Notify) -> None:
    """The base image (the registry-free one is built here, never pulled) and the wheelhouse."""
    if not image_exists(base_image):
        if base_image != LOCAL_BASE_IMAGE:
            # A build never pulls implicitly: registry access is a deliberate step (make image-gpu does it).
            raise BackendError(
                f"base image {base_image!r} is not in the local engine: pull it first (docker pull {base_image}; "
                "needs access to its registry, e.g. make image-gpu) or use the registry-free CPU base "
                f"{LOCAL_BASE_IMAGE!r} (make base-image)"
            )
        say(f"building the base image {LOCAL_BASE_IMAGE} first (debootstrap + python3, about a minute)")
        run_script(BUILD_BASE_SCRIPT)
    # The wheelhouse feeds the CPU image (TF comes from it): the script refreshes it when the
    # requirements or the venv's pinned versions changed, and returns at once otherwise. A -gpu base
    # brings TF itself; the other requirements come from the wheelhouse when there is one.
    if device == "cpu":
        run_script(WHEELHOUSE_SCRIPT)


def build_image(
    device: str = "cpu",
    *,
    tag: str | None = None,
    base_image: str | None = None,
    no_cache: bool = False,
    notify: Notify | None = None,
) -> dict[str, Any]:
    """Build the worker image for ``device``; returns its :func:`image_info`.

    For the registry-free CPU base, the base image and the wheelhouse are made first when missing
    (docker/build-base-image.sh, docker/make-wheelhouse.sh). A failed build is a BackendError quoting
    the last lines of the build log. ``notify`` gets the progress (one line per build step).
    """
    say = notify or (lambda text: log.info("%s", text))
    tag = tag or DEFAULT_IMAGES[device]
    base_image = base_image or DEFAULT_BASE_IMAGES[device]
    _prepare_inputs(device, base_image, say)
    use_wheelhouse = any(WHEELHOUSE_DIR.glob("*.whl"))
    _others, tf_requirement = requirements()
    started = time.monotonic()
    say(f"building image {tag} from {base_image} (minutes the first time, seconds after a code change)")
    with tempfile.TemporaryDirectory(prefix="tfparity-build-") as ctx:
        stage_context(Path(ctx), use_wheelhouse)
        build_args = {
            "BASE_IMAGE": base_image,
            "TF_REQUIREMENT": tf_requirement,
            "GIT_COMMIT": git_commit(paths=IMAGE_SOURCES) or "unknown",
            "SOURCE_HASH": source_hash(base_image),
            # The CPU image installs from the wheelhouse alone; a -gpu base may run another Python
            # than the host that made the wheelhouse, so there the index stays available.
            "PIP_OFFLINE": "1" if device == "cpu" else "0",
        }
        # The CPU build needs no network at all (wheelhouse only): give it none.
        legacy_build(
            f"image build of {tag} (base {base_image})",
            Path(ctx),
            tag=tag,
            build_args=build_args,
            network="none" if device == "cpu" else None,
            no_cache=no_cache,
            notify=notify,
        )
    info = image_info(tag)
    say(f"built image {tag} ({info['id'][:19]}) in {time.monotonic() - started:.0f} s")
    # The image it replaces stays (untagged): a suite started before may still run it by id. Its
    # own layers are a few MB; `make docker-clean` prunes them.
    return info


def ensure_image(
    device: str,
    *,
    tag: str | None = None,
    base_image: str | None = None,
    rebuild: bool = False,
    notify: Notify | None = None,
) -> dict[str, Any]:
    """The image for ``device``: built when missing, stale (harness sources changed) or ``rebuild``."""
    say = notify or (lambda text: log.warning("%s", text))
    tag = tag or DEFAULT_IMAGES[device]
    base_image = base_image or DEFAULT_BASE_IMAGES[device]
    if not rebuild and image_exists(tag):
        info = image_info(tag)
        built_on = info["labels"].get(LABEL_BASE_IMAGE)
        if built_on != base_image:
            say(f"image {tag} was built FROM {built_on}, not {base_image}; rebuilding it")
        elif info["labels"].get(LABEL_SOURCE_HASH) == source_hash(base_image):
            return info
        else:
            say(f"image {tag} was built from other harness sources; rebuilding it")
    return build_image(device, tag=tag, base_image=base_image, notify=notify)
