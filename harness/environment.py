"""Provenance recorded with every result: software, hardware, container and code version.

Environment variables enter results only through an allowlist of prefixes, and never when the
name looks like a credential: results and reports are shared, secrets must not travel with them.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ENV_ALLOW_PREFIXES = ("TF_", "CUDA_", "XLA_", "OMP_", "KMP_", "MKL_", "NVIDIA_", "OPENBLAS_", "TFPARITY_",
                      "NCCL_", "CUDNN_")
ENV_ALLOW_NAMES = ("PYTHONHASHSEED", "LD_LIBRARY_PATH")
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|KEY|CREDENTIAL|AUTH|COOKIE|SESSION", re.IGNORECASE)


def allowed_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The allowlisted subset of the environment (credential-like names always dropped)."""
    environ = dict(os.environ if environ is None else environ)
    return {
        k: v for k, v in sorted(environ.items())
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


def git_commit() -> str | None:
    """Harness commit: baked into images as TFPARITY_GIT_COMMIT, else read from the checkout."""
    baked = os.environ.get("TFPARITY_GIT_COMMIT")
    if baked:
        return baked
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists() or not shutil.which("git"):
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def nvidia_smi_gpus() -> list[dict[str, str]]:
    """GPU names and driver versions from nvidia-smi (empty when it is absent or fails)."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=10,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2:
            gpus.append({"name": parts[0], "driver": parts[1], "memory_total": parts[2] if len(parts) > 2 else ""})
    return gpus


def host_environment() -> dict[str, Any]:
    """The TF-free part: host, Python, container, code."""
    return {
        "backend": os.environ.get("TFPARITY_BACKEND", "local"),
        "container_image": os.environ.get("TFPARITY_CONTAINER_IMAGE") or None,
        "image_id": os.environ.get("TFPARITY_IMAGE_ID") or None,
        "base_image": os.environ.get("TFPARITY_BASE_IMAGE") or None,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "hostname": socket.gethostname(),
        "git_commit": git_commit(),
        "env": allowed_env(),
    }


def tf_environment(tf: Any) -> dict[str, Any]:
    """TensorFlow version, build info (CUDA/cuDNN on CUDA builds) and visible GPUs."""
    import keras

    build = {k: (v if isinstance(v, (str, int, float, bool)) or v is None else str(v))
             for k, v in dict(tf.sysconfig.get_build_info()).items()}
    gpus = []
    smi = nvidia_smi_gpus()
    for i, dev in enumerate(tf.config.list_physical_devices("GPU")):
        details = tf.config.experimental.get_device_details(dev)
        gpus.append({
            "name": details.get("device_name", dev.name),
            "compute_capability": ".".join(map(str, details.get("compute_capability", ()))) or None,
            "driver": smi[i]["driver"] if i < len(smi) else None,
        })
    return {
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "tf_build_info": build,
        "gpus": gpus,
    }


def collect(tf: Any | None = None) -> dict[str, Any]:
    env = host_environment()
    if tf is not None:
        env.update(tf_environment(tf))
    else:
        env.update({"tensorflow_version": None, "keras_version": None, "tf_build_info": {}, "gpus": []})
    return env
