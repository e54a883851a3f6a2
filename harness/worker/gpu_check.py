"""Does TensorFlow see and use a GPU here, and if not, why: ``python -m harness.worker.gpu_check``.

Run in the GPU image with the run's device request (``tfparity docker check-gpu``, first step of
``make bench-gpu``), it prints one ``TFPARITY_FACTS {"kind": "gpu-check", ...}`` line: the driver as
seen through ``libcuda.so.1`` (loadable? ``cuInit`` result, CUDA version it supports), TensorFlow's
view (build, visible GPUs, its CUDA library check), a matmul and an XLA-compiled function on
``GPU:0``, and :func:`diagnose`'s verdict. The same diagnosis names the cause when a GPU run finds no
GPU (:func:`no_gpu_reason`, used by the worker's path check).

Decisions come from data (return codes, booleans, versions); TensorFlow's own log lines (captured
from fd 2 while it starts) only add detail, e.g. which library failed to load.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness.store.protocol import facts_line
from harness.worker import cuda_image
from harness.worker.environment import nvidia_smi_gpus

# CUresult codes the diagnosis names (cuda.h). 303 is what XLA's driver stub returns for every call
# when libcuda.so.1 cannot be loaded (xla/tsl/cuda/cuda_stub.cc).
CU_ERRORS = {
    34: "CUDA_ERROR_STUB_LIBRARY",
    35: "CUDA_ERROR_INSUFFICIENT_DRIVER",
    100: "CUDA_ERROR_NO_DEVICE",
    222: "CUDA_ERROR_UNSUPPORTED_PTX_VERSION",
    303: "CUDA_ERROR_SHARED_OBJECT_INIT_FAILED",
    803: "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
    804: "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE",
}
# cudart 12.x runs on any driver for CUDA >= 12.0 (R525+, NVIDIA's minor version compatibility); TF's
# own kernels for compute capability >= 9.0 exist only as PTX from CUDA 12.5.1, which needs R555+.
MIN_DRIVER_CUDA = 12000
MIN_DRIVER_CUDA_PTX = 12050
TF_LOG_VMODULE = "dso_loader=1,cuda_diagnostics=1"  # names each library that failed to load
# Error texts of the driver/runtime (cuda.h, libcudart.so.12's cudaGetErrorString) meaning "too old".
TOO_OLD = re.compile(
    r"CUDA_ERROR_INSUFFICIENT_DRIVER|driver version is insufficient|CUDA_ERROR_UNSUPPORTED_PTX_VERSION"
    r"|PTX was compiled with an unsupported toolchain",
    re.I,
)


def cu_error_name(rc: int) -> str:
    return CU_ERRORS.get(rc, "CUDA_SUCCESS" if rc == 0 else f"CUresult {rc}")


def cuda_version(n: int | None) -> str | None:
    return None if n is None else f"{n // 1000}.{(n % 1000) // 10}"


def driver_facts() -> dict[str, Any]:
    """The driver through libcuda.so.1 (injected by the NVIDIA Container Toolkit): no TensorFlow needed."""
    facts: dict[str, Any] = {"libcuda_error": None, "cuinit": None, "cuinit_name": None}
    facts.update(cuda_driver_version=None, device_count=None, smi=nvidia_smi_gpus())
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError as exc:
        facts["libcuda_error"] = str(exc)
        return facts
    version, count = ctypes.c_int(0), ctypes.c_int(0)
    if cuda.cuDriverGetVersion(ctypes.byref(version)) == 0:
        facts["cuda_driver_version"] = version.value
    rc = int(cuda.cuInit(0))
    facts["cuinit"] = rc
    facts["cuinit_name"] = cu_error_name(rc)
    if rc == 0 and cuda.cuDeviceGetCount(ctypes.byref(count)) == 0:
        facts["device_count"] = count.value
    return facts


@contextmanager
def captured_stderr(lines: list[str]) -> Iterator[None]:
    """Collect what is written to fd 2 (TensorFlow's C++ log) into ``lines``; it is echoed afterwards."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", errors="replace")
            sys.stderr.write(text)
            lines.extend(ln for ln in text.splitlines() if ln.strip())


def tf_facts(tf: Any, log_lines: list[str], library_check: bool | None) -> dict[str, Any]:
    """TensorFlow's view: its build, the GPUs it registered, its CUDA library check
    (:func:`~harness.worker.cuda_image.tf_library_check`), what its log said."""
    build = dict(tf.sysconfig.get_build_info())
    gpus = []
    for dev in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(dev)
        cc = details.get("compute_capability")
        gpus.append({"name": details.get("device_name", dev.name), "compute_capability": ".".join(map(str, cc or ()))})
    failed = sorted(set(re.findall(r"Could not load dynamic library '([^']+)'", "\n".join(log_lines))))
    return {
        "version": tf.__version__,
        "is_cuda_build": bool(build.get("is_cuda_build")),
        "cuda_version": build.get("cuda_version"),
        "cudnn_version": build.get("cudnn_version"),
        "gpus": gpus,
        "library_check": library_check,
        "libraries_not_loaded": [lib for lib in failed if lib not in cuda_image.DRIVER_LIBRARIES],
        "ignored_gpus": [m for ln in log_lines for m in re.findall(r"Ignoring visible gpu device (.*)", ln)],
    }


def kernel_facts(tf: Any) -> dict[str, Any]:
    """A matmul and an XLA-compiled function on GPU:0 (XLA needs ptxas); an error is kept as its last line."""
    import numpy as np

    out: dict[str, Any] = {"matmul_error": None, "xla_error": None, "device": None}
    a = np.random.default_rng(0).standard_normal((256, 256)).astype("float32")
    try:
        with tf.device("/GPU:0"):
            product = tf.linalg.matmul(tf.constant(a), tf.constant(a))
        out["device"] = product.device
        # loose: TF32 (on by default on Ampere+) rounds the inputs to 10-bit mantissas
        if not np.allclose(product.numpy(), a @ a, rtol=1e-2, atol=1e-1):
            out["matmul_error"] = "the GPU matmul disagrees with NumPy's"
    except Exception as exc:  # any failure is the finding
        out["matmul_error"] = last_line(exc)
    try:
        with tf.device("/GPU:0"):
            total = tf.function(lambda x: tf.reduce_sum(tf.nn.relu(x @ x)), jit_compile=True)(tf.constant(a))
        if not np.isfinite(float(total)):
            out["xla_error"] = "the XLA-compiled function returned a non-finite value"
    except Exception as exc:
        out["xla_error"] = last_line(exc)
    return out


def last_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def diagnose(facts: dict[str, Any]) -> dict[str, str]:
    """``{"kind", "reason"}``: ``ok`` or why TensorFlow has no usable GPU here (one line).

    Kinds: ok, cpu_only_build, no_driver_in_container, no_device_visible, driver_too_old,
    driver_mismatch, cuinit_failed, libraries_missing, gpu_ignored, kernel_failed, unknown.
    """
    tf, drv = facts["tf"], facts["driver"]
    if not tf["is_cuda_build"]:
        return _found("cpu_only_build", f"TensorFlow {tf['version']} here is a CPU-only build (is_cuda_build False)")
    if tf["gpus"]:
        return _kernels(facts)
    if drv["libcuda_error"]:
        return _found(
            "no_driver_in_container",
            "no NVIDIA driver in the container (libcuda.so.1 cannot be loaded): it was started without a GPU "
            "device request, or the NVIDIA Container Toolkit did not inject the driver",
        )
    rc, version = drv["cuinit"], drv["cuda_driver_version"]
    if rc == 100:
        return _found("no_device_visible", "the driver sees no GPU (cuInit: CUDA_ERROR_NO_DEVICE); check --gpus")
    if rc == 35 or (version is not None and version < MIN_DRIVER_CUDA):
        return _found("driver_too_old", _too_old(version))
    if rc in (803, 804):
        return _found("driver_mismatch", f"cuInit failed with {drv['cuinit_name']}: the driver's libcuda does not "
                      "match its kernel module (or forward compatibility was refused)")  # fmt: skip
    if rc not in (0, None):
        return _found("cuinit_failed", f"cuInit failed with {drv['cuinit_name']}")
    return _registered_none(facts)


def _kernels(facts: dict[str, Any]) -> dict[str, str]:
    k = facts.get("kernels") or {}
    error = k.get("matmul_error") or k.get("xla_error")
    if not error:
        return _found("ok", "")
    if TOO_OLD.search(error):
        return _found("driver_too_old", f"{_too_old(facts['driver']['cuda_driver_version'])}: {error}")
    where = "matmul" if k.get("matmul_error") else "XLA-compiled function"
    return _found("kernel_failed", f"TensorFlow sees the GPU but a {where} on GPU:0 failed: {error}")


def _registered_none(facts: dict[str, Any]) -> dict[str, str]:
    tf, drv = facts["tf"], facts["driver"]
    driver = f"the driver works (cuInit OK, CUDA {cuda_version(drv['cuda_driver_version'])})"
    if tf["library_check"] is False or tf["libraries_not_loaded"]:
        missing = ", ".join(tf["libraries_not_loaded"]) or "see TF's log"
        return _found("libraries_missing", f"TensorFlow's CUDA library check failed (not loaded: {missing}); {driver}")
    if tf["ignored_gpus"]:
        return _found("gpu_ignored", f"TensorFlow ignored the GPU: {tf['ignored_gpus'][0]}")
    return _found("unknown", f"TensorFlow registered no GPU for a reason it did not log; {driver}")


def _too_old(version: int | None) -> str:
    have = f"supports CUDA {cuda_version(version)}" if version else "is too old for CUDA 12"
    return (
        f"the NVIDIA driver {have}; TensorFlow 2.21's CUDA 12 libraries need a driver for CUDA >= 12.0 "
        "(R525+), R555+ (CUDA 12.5) on Hopper or newer"
    )


def _found(kind: str, reason: str) -> dict[str, str]:
    return {"kind": kind, "reason": reason}


def no_gpu_reason(tf: Any) -> str:
    """Why TensorFlow lists no GPU in this process (for the worker's one-line path error)."""
    facts = {"tf": tf_facts(tf, [], cuda_image.tf_library_check()), "driver": driver_facts()}
    return diagnose(facts)["reason"]


def warnings(facts: dict[str, Any]) -> list[str]:
    """Things that pass but deserve a line: TF's Hopper+ kernels need a CUDA 12.5 driver for PTX JIT."""
    version = facts["driver"]["cuda_driver_version"]
    out = []
    for gpu in facts["tf"]["gpus"]:
        major = int((gpu["compute_capability"] or "0").split(".")[0])
        if major >= 9 and version is not None and version < MIN_DRIVER_CUDA_PTX:
            out.append(
                f"{gpu['name']} (compute {gpu['compute_capability']}) runs TF's kernels from CUDA 12.5 PTX: "
                f"the driver supports CUDA {cuda_version(version)}, R555+ is needed"
            )
    return out


def collect() -> dict[str, Any]:
    """Every fact of the check and its diagnosis; imports TensorFlow with its library log switched on."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    os.environ["TF_CPP_VMODULE"] = TF_LOG_VMODULE
    log_lines: list[str] = []
    facts: dict[str, Any] = {"driver": driver_facts()}
    with captured_stderr(log_lines):
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")  # registers the GPUs: what it logs is evidence
        library_check = cuda_image.tf_library_check()  # logs each library that does not load
    facts["tf"] = tf_facts(tf, log_lines, library_check)
    if facts["tf"]["gpus"]:
        facts["kernels"] = kernel_facts(tf)
    facts["runtime"] = cuda_image.runtime_versions(cuda_image.site_packages())
    facts["diagnosis"] = diagnose(facts)
    facts["warnings"] = warnings(facts)
    facts["visible_devices"] = os.environ.get("NVIDIA_VISIBLE_DEVICES")
    return facts


if __name__ == "__main__":
    print(facts_line("gpu-check", collect()), flush=True)
