"""The worker images: staged build context, classic-builder build, staleness by source hash.

Images (``tfparity:cpu``/``tfparity:gpu``) are built with the classic builder (python-on-whales'
``docker.build`` needs buildx; :func:`~.build.legacy_build` shows its progress) from
a small staged context (harness/, pyproject.toml, requirements.txt; for the CPU image the wheelhouse),
never the whole checkout. Both start from the registry-free base ``tfparity-base:bookworm``:

* CPU: docker/Dockerfile installs ``tensorflow-cpu`` from docker/.wheelhouse in a build stage.
* GPU: a dependency image ``tfparity-gpu-deps:<key>`` (``tensorflow[and-cuda]`` + the pinned NVIDIA
  wheels from docker/.wheelhouse-gpu, installed by one ``--network none`` container and committed,
  docker/build-gpu-deps.sh) is made once per wheelhouse; docker/Dockerfile.gpu adds the harness on top.

An image carries a hash of the harness sources as a label: a stale image (the code changed since the
build) is rebuilt, so a container never runs other code than the host's checkout; runs then use the
image by id.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
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
    DOCKERFILE_GPU,
    GPU_CONSTRAINTS,
    GPU_DEPS_REPOSITORY,
    GPU_DEPS_SCRIPT,
    GPU_WHEELHOUSE_DIR,
    LABEL_BASE_IMAGE,
    LABEL_SOURCE_HASH,
    LOCAL_BASE_IMAGE,
    REPO_ROOT,
    WHEELHOUSE_DIR,
    WHEELHOUSE_SCRIPT,
)
from harness.store.provenance import git_commit

log = logging.getLogger(__name__)

# The files (besides harness/ and pyproject.toml) that define each image: a change makes it stale.
IMAGE_FILES = {"cpu": (DOCKERFILE,), "gpu": (DOCKERFILE_GPU, GPU_CONSTRAINTS, GPU_DEPS_SCRIPT)}
# Files whose change makes an image stale (and its commit "-dirty").
IMAGE_SOURCES = (
    "harness",
    "pyproject.toml",
    "docker/Dockerfile",
    "docker/Dockerfile.gpu",
    "docker/constraints-gpu.txt",
    "docker/build-gpu-deps.sh",
)
# TensorFlow's requirement when pyproject.toml cannot be read (an installed copy).
FALLBACK_TF = {"cpu": "tensorflow-cpu==2.21.*", "gpu": "tensorflow[and-cuda]==2.21.*"}


def requirements(device: str = "cpu") -> tuple[list[str], str]:
    """The image's requirements (pyproject dependencies + the device's extra) and its TF requirement.

    The extra is ``cpu`` (``tensorflow-cpu``) or ``gpu`` (``tensorflow[and-cuda]``): the TF requirement
    always matches the device, never ``tensorflow-cpu`` for a GPU image.
    """
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = None  # type: ignore[assignment]
    if tomllib is not None and (REPO_ROOT / "pyproject.toml").is_file():
        with open(REPO_ROOT / "pyproject.toml", "rb") as fh:
            project = tomllib.load(fh)["project"]
        reqs = list(project["dependencies"]) + list(project["optional-dependencies"][device])
    else:
        from importlib.metadata import requires

        extra = f'extra == "{device}"'
        reqs = [r.split(";")[0].strip() for r in (requires("tfparity") or []) if ";" not in r or extra in r]
    tf = [r for r in reqs if re.match(r"^tensorflow(-cpu)?\b", r, re.I)]
    others = [r for r in reqs if r not in tf] + ["setuptools>=64", "wheel"]
    return others, (tf[0] if tf else FALLBACK_TF[device])


def source_hash(base_image: str, device: str = "cpu") -> str:
    """Hash of everything that goes into an image; a changed hash means a stale image."""
    digest = hashlib.sha256()
    files = sorted((REPO_ROOT / "harness").rglob("*.py")) + [REPO_ROOT / "pyproject.toml", *IMAGE_FILES[device]]
    for path in files:
        if "__pycache__" in path.parts or not path.is_file():
            continue
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(base_image.encode())
    return digest.hexdigest()[:16]


def run_script(script: Path, *args: str, env: dict[str, str] | None = None, timeout_s: float = 1800) -> None:
    """Run one of docker/*.sh; its last lines become the error if it fails."""
    log.info("running %s %s", script.name, " ".join(args))
    try:
        out = subprocess.run(
            ["bash", str(script), *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env={**os.environ, **(env or {})},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendError(f"{script.name} failed: {exc}") from None
    for line in out.stdout.splitlines():
        log.info("%s", line)
    if out.returncode != 0:
        lines = [ln for ln in (out.stderr + out.stdout).strip().splitlines() if ln.strip()]
        err = [ln for ln in lines if "error:" in ln] or lines[-1:] or ["no output"]
        raise BackendError(f"{script.name} failed: {err[-1].strip()}")


def stage_context(dest: Path, device: str = "cpu", use_wheelhouse: bool = False) -> None:
    """Copy what the device's Dockerfile needs into ``dest``: a few MB, plus the CPU wheelhouse (hard links)."""
    shutil.copy2(DOCKERFILE_GPU if device == "gpu" else DOCKERFILE, dest / "Dockerfile")
    shutil.copy2(REPO_ROOT / "pyproject.toml", dest / "pyproject.toml")
    readme = REPO_ROOT / "README.md"
    # pyproject names README.md as the readme: the build needs the file, not its content.
    (dest / "README.md").write_text(
        readme.read_text(encoding="utf-8") if readme.is_file() else "tfparity\n", encoding="utf-8"
    )
    shutil.copytree(REPO_ROOT / "harness", dest / "harness", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if device == "gpu":
        return  # the dependencies are in the deps image already: no wheelhouse in this context
    others, _tf = requirements(device)
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


def gpu_deps_tag(base_image: str) -> str:
    """``tfparity-gpu-deps:<key>``: the key hashes what the dependency layer is made of (the names of
    the wheels, which carry their versions, and the requirements), the script that installs them and
    the base image's id, so the 6 GB layer is made again exactly when one of them changed. Not the
    constraints' text: it is the host venv's whole ``pip freeze``, which changes with every tool
    installed there while the resolved wheels stay the same."""
    digest = hashlib.sha256()
    for whl in sorted(GPU_WHEELHOUSE_DIR.glob("*.whl")):
        digest.update(whl.name.encode() + b"\0")
    for path in (GPU_WHEELHOUSE_DIR / ".requirements.txt", GPU_DEPS_SCRIPT):
        digest.update(path.read_bytes() if path.is_file() else b"-")
    digest.update(image_info(base_image)["id"].encode())
    return f"{GPU_DEPS_REPOSITORY}:{digest.hexdigest()[:12]}"


def refresh_wheelhouse(device: str) -> None:
    """docker/make-wheelhouse.sh for ``device``, pinned to the versions of the venv that runs the harness
    (``$PYTHON`` when set, as ``make wheelhouse`` passes it): containers run what the local backend runs."""
    run_script(WHEELHOUSE_SCRIPT, "--device", device, env={"PYTHON": os.environ.get("PYTHON") or sys.executable})


def ensure_gpu_deps(base_image: str, say: Notify) -> str:
    """The GPU dependency image for the current GPU wheelhouse (refreshed first); built when missing."""
    refresh_wheelhouse("gpu")
    if not any(GPU_WHEELHOUSE_DIR.glob("*.whl")):
        raise BackendError(f"the GPU wheelhouse {str(GPU_WHEELHOUSE_DIR)!r} is empty: run make wheelhouse-gpu")
    tag = gpu_deps_tag(base_image)
    if not image_exists(tag):
        say(f"making {tag}: pip install of the GPU wheelhouse in a --network none container (minutes)")
        run_script(GPU_DEPS_SCRIPT, str(GPU_WHEELHOUSE_DIR), tag, env={"BASE_IMAGE": base_image}, timeout_s=3600)
    return tag


def require_base(base_image: str, say: Notify) -> None:
    """The base image is local (the registry-free one is made here); a build never pulls."""
    if image_exists(base_image):
        return
    if base_image != LOCAL_BASE_IMAGE:
        raise BackendError(
            f"base image {base_image!r} is not in the local engine and tfparity never pulls: run "
            f"docker pull {base_image} yourself, or use the registry-free base {LOCAL_BASE_IMAGE!r} (make base-image)"
        )
    say(f"building the base image {LOCAL_BASE_IMAGE} first (debootstrap + python3, about a minute)")
    run_script(BUILD_BASE_SCRIPT)


def build_image(
    device: str = "cpu",
    *,
    tag: str | None = None,
    base_image: str | None = None,
    no_cache: bool = False,
    notify: Notify | None = None,
) -> dict[str, Any]:
    """Build the worker image for ``device``; returns its :func:`image_info`.

    The base image, the wheelhouse and (GPU) the dependency image are made first when missing
    (docker/build-base-image.sh, docker/make-wheelhouse.sh, docker/build-gpu-deps.sh). A failed build
    is a BackendError quoting the last lines of the build log. ``notify`` gets the progress (one line
    per build step).
    """
    say = notify or (lambda text: log.info("%s", text))
    tag = tag or DEFAULT_IMAGES[device]
    base_image = base_image or DEFAULT_BASE_IMAGES[device]
    require_base(base_image, say)
    build_args = {
        "BASE_IMAGE": base_image,
        "GIT_COMMIT": git_commit(paths=IMAGE_SOURCES) or "unknown",
        "SOURCE_HASH": source_hash(base_image, device),
    }
    if device == "gpu":
        build_args["DEPS_IMAGE"] = ensure_gpu_deps(base_image, say)
    else:
        # The wheelhouse feeds the CPU image (TF comes from it): the script refreshes it when the
        # requirements or the venv's pinned versions changed, and returns at once otherwise.
        refresh_wheelhouse(device)
        build_args["TF_REQUIREMENT"] = requirements(device)[1]
    started = time.monotonic()
    say(
        f"building image {tag} from {build_args.get('DEPS_IMAGE', base_image)} "
        "(minutes the first time, seconds after a code change)"
    )
    with tempfile.TemporaryDirectory(prefix="tfparity-build-") as ctx:
        stage_context(Path(ctx), device, use_wheelhouse=any(WHEELHOUSE_DIR.glob("*.whl")))
        # Everything comes from the wheelhouse or the deps image: the build needs no network at all.
        legacy_build(
            f"image build of {tag} (base {base_image})",
            Path(ctx),
            tag=tag,
            build_args=build_args,
            network="none",
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
        elif info["labels"].get(LABEL_SOURCE_HASH) == source_hash(base_image, device):
            return info
        else:
            say(f"image {tag} was built from other harness sources; rebuilding it")
    return build_image(device, tag=tag, base_image=base_image, notify=notify)
