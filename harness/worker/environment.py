"""TensorFlow's part of the provenance recorded with every result: version, build, visible GPUs.

The TF-free part (host, Python, container, code commit, allowlisted environment) is
:mod:`harness.store.provenance`; :func:`collect` merges both.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from harness.store import provenance


def nvidia_smi_gpus() -> list[dict[str, str]]:
    """GPU names and driver versions from nvidia-smi (empty when it is absent or fails)."""
    if not shutil.which("nvidia-smi"):
        return []
    query = ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]
    try:
        out = subprocess.run(query, capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2:
            gpus.append({"name": parts[0], "driver": parts[1], "memory_total": parts[2] if len(parts) > 2 else ""})
    return gpus


def tf_environment(tf: Any) -> dict[str, Any]:
    """TensorFlow, Keras and NumPy versions, build info (CUDA/cuDNN on CUDA builds) and visible GPUs.

    Keras and NumPy are recorded because the CPU and GPU images must run the same ones (initial
    weights and the compiled loop depend on Keras internals): a difference there is not a device's.
    """
    import keras
    import numpy

    build = {
        k: (v if isinstance(v, (str, int, float, bool)) or v is None else str(v))
        for k, v in dict(tf.sysconfig.get_build_info()).items()
    }
    gpus = []
    smi = nvidia_smi_gpus()
    for i, dev in enumerate(tf.config.list_physical_devices("GPU")):
        details = tf.config.experimental.get_device_details(dev)
        gpus.append(
            {
                "name": details.get("device_name", dev.name),
                "compute_capability": ".".join(map(str, details.get("compute_capability", ()))) or None,
                "driver": smi[i]["driver"] if i < len(smi) else None,
            }
        )
    return {
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "numpy_version": numpy.__version__,
        "tf_build_info": build,
        "gpus": gpus,
    }


def collect(tf: Any) -> dict[str, Any]:
    """The full environment of a run that imported TensorFlow."""
    return {**provenance.host_environment(), **tf_environment(tf)}
