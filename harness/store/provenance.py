"""The TensorFlow-free provenance every result carries: host, Python, container, code version.

Environment variables enter results only through an allowlist of prefixes, and never when the
name looks like a credential: results and reports are shared, secrets must not travel with them.
The worker adds TensorFlow's own facts (:mod:`harness.worker.environment`).
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
GIT_COMMIT_ENV = "TFPARITY_GIT_COMMIT"  # baked into container images at build time
GPU_IDS_ENV = "TFPARITY_GPUS"  # the device ids of a docker GPU run's device request (--gpus)

ENV_ALLOW_PREFIXES = (
    "TF_",
    "CUDA_",
    "XLA_",
    "OMP_",
    "KMP_",
    "MKL_",
    "NVIDIA_",
    "OPENBLAS_",
    "TFPARITY_",
    "NCCL_",
    "CUDNN_",
)
ENV_ALLOW_NAMES = ("PYTHONHASHSEED", "LD_LIBRARY_PATH")
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|KEY|CREDENTIAL|AUTH|COOKIE|SESSION", re.IGNORECASE)


def allowed_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The allowlisted subset of the environment (credential-like names always dropped)."""
    env = dict(os.environ if environ is None else environ)
    return {
        k: v
        for k, v in sorted(env.items())
        if (k.startswith(ENV_ALLOW_PREFIXES) or k in ENV_ALLOW_NAMES) and not _SECRET_NAME.search(k)
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(root: Path = REPO_ROOT, paths: Sequence[str] = ()) -> str | None:
    """The harness commit: ``$TFPARITY_GIT_COMMIT`` (baked into images), else the checkout's HEAD.

    ``-dirty`` is appended when tracked files (only ``paths``, when given) differ from HEAD.
    None when neither is available (an installed copy outside a checkout).
    """
    baked = os.environ.get(GIT_COMMIT_ENV)
    if baked:
        return baked
    if not (root / ".git").exists() or not shutil.which("git"):
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", *paths]
        dirty = subprocess.run(status, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "")


def host_environment() -> dict[str, Any]:
    """Host, Python, container and code facts (no TensorFlow needed)."""
    return {
        "backend": os.environ.get("TFPARITY_BACKEND", "local"),
        "container_image": os.environ.get("TFPARITY_CONTAINER_IMAGE") or None,
        "image_id": os.environ.get("TFPARITY_IMAGE_ID") or None,
        "base_image": os.environ.get("TFPARITY_BASE_IMAGE") or None,
        "gpu_device_ids": os.environ[GPU_IDS_ENV].split(",") if os.environ.get(GPU_IDS_ENV) else None,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        # The CPUs this process may run on (a container's cpuset): TF sizes its thread pools from it.
        "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "fleet_host": os.environ.get("TFPARITY_FLEET_HOST") or None,
        "docker_context": os.environ.get("TFPARITY_DOCKER_CONTEXT") or None,
        "hostname": socket.gethostname(),
        "git_commit": git_commit(),
        "env": allowed_env(),
    }


def without_tensorflow() -> dict[str, Any]:
    """The environment of a run that failed before (or without) importing TensorFlow."""
    return {
        **host_environment(),
        "tensorflow_version": None,
        "keras_version": None,
        "numpy_version": None,
        "tf_build_info": {},
        "gpus": [],
    }
