"""The GPU runtime check that ``make bench-gpu`` and the GPU backend run first."""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness.errors import BackendError
from harness.orchestrate.backends.docker.compose import cleanup_project, compose_client, project_name, write_env_file
from harness.orchestrate.backends.docker.engine import call, check_engine, image_exists
from harness.orchestrate.backends.docker.owner import Owner
from harness.orchestrate.backends.docker.settings import (
    CONTAINER_UID,
    DEFAULT_IMAGES,
    LABEL_PURPOSE,
    LOCAL_BASE_IMAGE,
    NVIDIA_HINT,
    SERVICES,
)


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
    project = project_name("gpucheck")
    with tempfile.TemporaryDirectory(prefix="tfparity-gpucheck-") as tmp:
        env_file = write_env_file(
            Path(tmp),
            {
                "TFPARITY_IMAGE": image,
                "TFPARITY_IMAGE_ID": "",
                "TFPARITY_RESULTS_DIR": tmp,
                "TFPARITY_DATA_DIR": tmp,
                "TFPARITY_USER": f"{CONTAINER_UID}:{CONTAINER_UID}",
                "TFPARITY_MEMORY_LIMIT": "0",
            },
        )
        dc = compose_client(project, env_file)
        try:
            call(
                "GPU runtime check",
                dc.compose.run,
                SERVICES["gpu"],
                ["-c", "exit 0"],
                entrypoint="sh",
                tty=False,
                remove=True,
                dependencies=False,
                labels={LABEL_PURPOSE: "gpu-check", **Owner.me().labels()},
            )
        finally:
            cleanup_project(dc, project)
