"""What TensorFlow's CUDA build needs inside an image, checked without a GPU: ``python -m harness.worker.cuda_image``.

Prints one ``TFPARITY_FACTS {"kind": "cuda-image", ...}`` line (:mod:`harness.store.protocol`); the
host decides (tests/orchestrate/test_docker_gpu.py asserts on these facts in CI):

* ``build``: ``tf.sysconfig.get_build_info()`` (CUDA/cuDNN versions the build expects) and the
  versions of TensorFlow, Keras, NumPy and the NVIDIA wheels;
* ``libraries``: every soname TF 2.21 dlopens, found where TF looks (``site-packages/nvidia/<pkg>/lib``,
  the ``$ORIGIN/../nvidia/...`` RUNPATH of its own libraries) with the major version in the name, and
  every shared library of the NVIDIA wheels loaded with ``ctypes`` in a fresh interpreter (none needs
  the driver except those linked against ``libcuda.so.1``);
* ``runtime``: the versions the loaded libraries report themselves (cudart, cuDNN, cuBLASLt, NCCL);
* ``toolchain``: ``ptxas`` as XLA finds it (``--xla_gpu_cuda_data_dir``/bin, then PATH, then the
  ``cuda_nvcc`` wheel) with its version, libdevice, and ``nvlink`` (absent: see NVLINK_NOTE);
* ``tf_library_check``: TF's own GPU-library check (:func:`tf_library_check`), which gates GPU
  registration and needs no driver.
"""

from __future__ import annotations

import ctypes
import glob
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

from harness.store.protocol import facts_line

# The sonames TF 2.21's DsoLoader opens (xla/tsl/platform/default/dso_loader.cc, versions from
# cuda_config.h; listed by calling every DsoLoader::Get*DsoHandle of the 2.21 binary) -> the NVIDIA
# wheel directory that holds them. The number in the soname is the major version this build expects.
TF_CUDA_LIBRARIES = {
    "libcudart.so.12": "cuda_runtime",
    "libcublas.so.12": "cublas",
    "libcublasLt.so.12": "cublas",
    "libcufft.so.11": "cufft",
    "libcusolver.so.11": "cusolver",
    "libcusparse.so.12": "cusparse",
    "libcudnn.so.9": "cudnn",
    "libcupti.so.12": "cuda_cupti",
    "libnccl.so.2": "nccl",
}
# The driver's own libraries: injected by the NVIDIA Container Toolkit at run time, never in the image.
DRIVER_LIBRARIES = ("libcuda.so.1", "libnvidia-ml.so.1")
# XLA's FindPtxAsExecutable: kMinimumSupportedPtxAsVersion and kBuggyPtxAsVersions.
PTXAS_MIN = (11, 8, 0)
PTXAS_BUGGY = ((12, 3, 103),)
NVLINK_NOTE = (
    "no nvlink in the nvidia-cuda-nvcc-cu12 wheel (it ships bin/ptxas only) and TF 2.21 was built without "
    "nvJitLink support: XLA compiles with ptxas alone ('nvlink is not available'); nvlink serves only "
    "parallel module compilation"
)
LOAD_ONE = (
    "import ctypes, sys\ntry:\n    ctypes.CDLL(sys.argv[1])\nexcept OSError as exc:\n    print(exc)\n    sys.exit(1)\n"
)


def site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def load_in_child(path: str) -> str | None:
    """``ctypes.CDLL(path)`` in a fresh interpreter (one library's side effects never help another's);
    None when it loads, else the loader's error."""
    proc = subprocess.run([sys.executable, "-c", LOAD_ONE, path], capture_output=True, text=True, timeout=300)
    return None if proc.returncode == 0 else ((proc.stdout + proc.stderr).strip() or f"exit {proc.returncode}")


def library_facts(sp: Path) -> dict[str, Any]:
    """The sonames TF expects (present, where) and every NVIDIA wheel library (loads with ctypes?)."""
    expected = {}
    for soname, package in TF_CUDA_LIBRARIES.items():
        path = sp / "nvidia" / package / "lib" / soname
        expected[soname] = {"path": str(path), "present": path.is_file()}
    files = sorted(glob.glob(str(sp / "nvidia" / "*" / "lib" / "*.so*")))
    files += sorted(glob.glob(str(sp / "nvidia" / "*" / "nvvm" / "lib64" / "*.so*")))
    loaded = []
    for file in files:
        error = load_in_child(file)
        loaded.append(
            {
                "path": file,
                "loads": error is None,
                "error": error,
                # the loader names the missing driver library: these need a GPU host
                "needs_driver": error is not None and any(lib in error for lib in DRIVER_LIBRARIES),
            }
        )
    driver = {lib: any(Path(p).name == lib for p in files) for lib in DRIVER_LIBRARIES}
    return {"expected": expected, "all": loaded, "driver_libraries_in_image": driver}


def _version(lib: Any, function: str, *, by_reference: bool, split: int) -> str | None:
    """A library's own version call: ``f(&int)`` or ``f() -> size_t``, as major.minor[.patch]."""
    fn = getattr(lib, function)
    if by_reference:
        value = ctypes.c_int(0)
        if fn(ctypes.byref(value)) != 0:
            return None
        n = value.value
    else:
        fn.restype = ctypes.c_size_t
        n = int(fn())
    if split == 1000:  # CUDA style: 12090 -> 12.9
        return f"{n // 1000}.{(n % 1000) // 10}"
    return f"{n // 10000}.{(n % 10000) // 100}.{n % 100}"  # cuDNN 9 / cuBLASLt / NCCL: 92800 -> 9.28.0


def runtime_versions(sp: Path) -> dict[str, str | None]:
    """Versions the CUDA libraries report themselves (no call needs a driver)."""
    calls = {
        "cudart": ("cuda_runtime", "libcudart.so.12", "cudaRuntimeGetVersion", True, 1000),
        "cudnn": ("cudnn", "libcudnn.so.9", "cudnnGetVersion", False, 10000),
        "cublasLt": ("cublas", "libcublasLt.so.12", "cublasLtGetVersion", False, 10000),
        "nccl": ("nccl", "libnccl.so.2", "ncclGetVersion", True, 10000),
    }
    out: dict[str, str | None] = {}
    for name, (package, soname, function, by_reference, split) in calls.items():
        try:
            lib = ctypes.CDLL(str(sp / "nvidia" / package / "lib" / soname))
            out[name] = _version(lib, function, by_reference=by_reference, split=split)
        except (OSError, AttributeError):
            out[name] = None
    return out


def tool_version(path: str) -> tuple[int, int, int] | None:
    """``<tool> --version`` parsed with the regex XLA uses (``\\bV(\\d+)\\.(\\d+)\\.(\\d+)\\b``)."""
    try:
        proc = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    m = re.search(r"\bV(\d+)\.(\d+)\.(\d+)\b", proc.stdout)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def xla_candidates(tool: str, sp: Path) -> list[str]:
    """Where XLA looks for ``tool``, in order (FindCudaExecutable with PreferPtxasFromPath() true)."""
    flags = os.environ.get("XLA_FLAGS", "")
    m = re.search(r"--xla_gpu_cuda_data_dir=(\S+)", flags)
    data_dir = m.group(1) if m else "./cuda_sdk_lib"  # XLA's default for the flag
    cands = [os.path.join(data_dir, "bin", tool)]
    cands += [os.path.join(d, tool) for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    roots = ["/usr/local/cuda", "/opt/cuda", str(sp / "nvidia" / "cuda_nvcc")]
    return cands + [os.path.join(r, "bin", tool) for r in roots]


def toolchain_facts(sp: Path) -> dict[str, Any]:
    """The ptxas XLA would use (the first acceptable candidate), libdevice, and nvlink's absence."""
    ptxas: dict[str, Any] = {"path": None, "version": None, "from_wheel": False}
    for cand in xla_candidates("ptxas", sp):
        if not (os.path.isfile(cand) and os.access(cand, os.X_OK)):
            continue
        version = tool_version(cand)
        if version is None or version < PTXAS_MIN or version in PTXAS_BUGGY:
            continue
        wheel = str(sp / "nvidia" / "cuda_nvcc" / "bin")
        ptxas = {"path": cand, "version": ".".join(map(str, version)), "from_wheel": cand.startswith(wheel)}
        break
    nvlink = next((c for c in xla_candidates("nvlink", sp) if os.path.isfile(c)), None)
    libdevice = sp / "nvidia" / "cuda_nvcc" / "nvvm" / "libdevice" / "libdevice.10.bc"
    return {
        "ptxas": ptxas,
        "nvlink": nvlink,
        "nvlink_note": None if nvlink else NVLINK_NOTE,
        "libdevice": str(libdevice) if libdevice.is_file() else None,
    }


def tf_library_check() -> bool | None:
    """TF's own GPU-library check, ``tsl::internal::DsoLoader::TryDlopenCUDALibraries()``: cudart,
    cuBLAS(Lt), cuFFT, cuSOLVER, cuSPARSE and cuDNN must dlopen from libtensorflow_framework.so.2, else
    gpu_device.cc logs "Cannot dlopen some GPU libraries ... Skipping registering GPU devices" and TF
    lists no GPU. It only dlopens, so it runs without a driver. Call after ``import tensorflow``.

    The absl::Status comes back through a hidden pointer; its rep word is 1 (inlined kOk) when OK.
    None when the symbol is not there (another TF build).
    """
    with open("/proc/self/maps", encoding="utf-8") as fh:
        framework = next((ln.split()[-1] for ln in fh if "libtensorflow_framework.so" in ln), None)
    if framework is None:
        return None
    try:
        fn = ctypes.CDLL(framework)._ZN3tsl8internal9DsoLoader22TryDlopenCUDALibrariesEv
    except AttributeError:
        return None
    fn.restype = None
    fn.argtypes = [ctypes.c_void_p]
    status = ctypes.create_string_buffer(16)
    fn(status)
    return int.from_bytes(status.raw[:8], "little") == 1


def package_versions() -> dict[str, str]:
    from importlib import metadata

    wanted = ("tensorflow", "tensorflow-cpu", "keras", "numpy", "nvidia-ml-py")
    out = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name in wanted or name.startswith("nvidia-"):
            out[name] = dist.version
    return dict(sorted(out.items()))


def build_facts() -> dict[str, Any]:
    """TF's build info (imports TensorFlow) and the TF library check, with the package versions."""
    import tensorflow as tf

    plain = (str, int, float, bool, list)
    info = {k: v if isinstance(v, plain) else str(v) for k, v in tf.sysconfig.get_build_info().items()}
    return {"build_info": info, "tf_library_check": tf_library_check(), "packages": package_versions()}


def collect() -> dict[str, Any]:
    sp = site_packages()
    return {
        "site_packages": str(sp),
        "libraries": library_facts(sp),
        "runtime": runtime_versions(sp),
        "toolchain": toolchain_facts(sp),
        "env": {k: os.environ.get(k) for k in ("LD_LIBRARY_PATH", "XLA_FLAGS", "NVIDIA_DRIVER_CAPABILITIES")},
        **build_facts(),
    }


if __name__ == "__main__":
    print(facts_line("cuda-image", collect()), flush=True)
