"""Why TensorFlow has no usable GPU, decided on data: harness.worker.gpu_check.diagnose on recorded
facts (this machine's GPU image without a driver) and on the states only a GPU host shows, built from
the recorded facts with the driver's documented return codes; and XLA's ptxas search order
(harness.worker.cuda_image) with real executables. No TensorFlow, no GPU."""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.store.protocol import parse_facts
from harness.worker import cuda_image, gpu_check
from tests.helpers import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "gpu_check"


def recorded(name: str) -> dict[str, Any]:
    facts = parse_facts((FIXTURES / f"{name}.stdout").read_text().splitlines(), "gpu-check")
    assert facts is not None, name
    return facts


def on_a_gpu_host(cuinit: int = 0, version: int = 12040, **tf: Any) -> dict[str, Any]:
    """The recorded facts with a driver that answers (what the toolkit injects on a GPU host)."""
    facts = copy.deepcopy(recorded("no-driver"))
    facts["driver"].update(libcuda_error=None, cuinit=cuinit, cuda_driver_version=version, device_count=1)
    facts["driver"]["cuinit_name"] = gpu_check.cu_error_name(cuinit)
    facts["tf"].update(tf)
    return facts


L4 = [{"name": "NVIDIA L4", "compute_capability": "8.9"}]
H100 = [{"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}]


def test_recorded_gpu_image_without_a_driver_says_so() -> None:
    for name in ("no-driver", "no-driver-no-ldpath"):
        facts = recorded(name)
        # the facts themselves, as recorded: a CUDA build, no GPU, no libcuda
        assert facts["tf"]["is_cuda_build"] and facts["tf"]["gpus"] == []
        assert "libcuda.so.1" in facts["driver"]["libcuda_error"]
        # decided again from the data (not read back from the recording)
        assert gpu_check.diagnose(facts)["kind"] == "no_driver_in_container", name
    # without the image's LD_LIBRARY_PATH TF's own library check fails, naming cuSOLVER
    no_ldpath = recorded("no-driver-no-ldpath")["tf"]
    assert no_ldpath["library_check"] is False and no_ldpath["libraries_not_loaded"] == ["libcusolver.so.11"]
    assert recorded("no-driver")["tf"]["library_check"] is True


@pytest.mark.parametrize(
    ("facts", "kind", "fragment"),
    [
        (on_a_gpu_host(gpus=L4), "ok", ""),
        (on_a_gpu_host(cuinit=100), "no_device_visible", "CUDA_ERROR_NO_DEVICE"),
        (on_a_gpu_host(cuinit=35, version=11040), "driver_too_old", "supports CUDA 11.4"),
        (on_a_gpu_host(version=11080), "driver_too_old", "CUDA >= 12.0 (R525+)"),
        (on_a_gpu_host(cuinit=803), "driver_mismatch", "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH"),
        (on_a_gpu_host(cuinit=999), "cuinit_failed", "CUresult 999"),
        (
            on_a_gpu_host(library_check=False, libraries_not_loaded=["libcusolver.so.11"]),
            "libraries_missing",
            "not loaded: libcusolver.so.11); the driver works (cuInit OK, CUDA 12.4)",
        ),
        (
            # tensorflow/tensorflow#23385 (the wording TF still logs from gpu_device.cc)
            on_a_gpu_host(
                ignored_gpus=[
                    "(device: 0, name: GeForce GTX 1070, pci bus id: 0000:01:00.0, compute capability: 6.1) "
                    "with Cuda compute capability 6.1. The minimum required Cuda capability is 7.0"
                ]
            ),
            "gpu_ignored",
            "minimum required Cuda capability is 7.0",
        ),
        (on_a_gpu_host(), "unknown", "did not log"),
        (on_a_gpu_host(is_cuda_build=False), "cpu_only_build", "CPU-only build"),
    ],
)
def test_each_cause_is_told_apart_in_one_line(facts: dict[str, Any], kind: str, fragment: str) -> None:
    facts.setdefault("kernels", {"matmul_error": None, "xla_error": None})
    found = gpu_check.diagnose(facts)
    assert found["kind"] == kind, found
    assert fragment in found["reason"] and "\n" not in found["reason"]


def test_a_gpu_whose_kernels_fail_is_not_ok() -> None:
    ptx = "CUDA_ERROR_UNSUPPORTED_PTX_VERSION: the provided PTX was compiled with an unsupported toolchain."
    facts = on_a_gpu_host(gpus=H100, version=12040)
    facts["kernels"] = {"matmul_error": ptx, "xla_error": None}
    assert gpu_check.diagnose(facts)["kind"] == "driver_too_old"
    facts["kernels"] = {"matmul_error": None, "xla_error": "INTERNAL: ptxas exited with non-zero error code 255"}
    found = gpu_check.diagnose(facts)
    assert found["kind"] == "kernel_failed" and "XLA-compiled function" in found["reason"]


def test_hopper_on_a_driver_older_than_cuda_12_5_is_a_warning_not_a_failure() -> None:
    facts = on_a_gpu_host(gpus=H100, version=12040)
    facts["kernels"] = {"matmul_error": None, "xla_error": None}
    assert gpu_check.diagnose(facts)["kind"] == "ok"
    (warning,) = gpu_check.warnings(facts)
    assert "CUDA 12.5 PTX" in warning and "R555" in warning
    assert gpu_check.warnings(on_a_gpu_host(gpus=L4, version=12040)) == []  # Ada has SASS in the build
    assert gpu_check.warnings(on_a_gpu_host(gpus=H100, version=12080)) == []


# --- where XLA finds ptxas ----------------------------------------------------------------------


def fake_tool(directory: Path, name: str, version: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tool = directory / name
    tool.write_text(f"#!/bin/sh\necho 'Cuda compilation tools, release x, V{version}'\n")
    tool.chmod(0o755)
    return tool


def test_ptxas_is_searched_in_xla_order_and_bad_versions_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sp = tmp_path / "site-packages"
    wheel = fake_tool(sp / "nvidia" / "cuda_nvcc" / "bin", "ptxas", "12.9.86")
    on_path = fake_tool(tmp_path / "path-bin", "ptxas", "13.0.48")
    # PATH without the host's own CUDA tools (this machine has a CUDA 13 ptxas and nvlink in /usr/local/bin)
    monkeypatch.setenv("PATH", os.pathsep.join([str(on_path.parent), "/usr/bin", "/bin"]))
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    # PATH comes before the wheel (the hazard the image's XLA_FLAGS removes)
    assert cuda_image.toolchain_facts(sp)["ptxas"] == {"path": str(on_path), "version": "13.0.48", "from_wheel": False}
    # the flag's directory comes first of all
    monkeypatch.setenv("XLA_FLAGS", f"--xla_gpu_cuda_data_dir={sp / 'nvidia' / 'cuda_nvcc'}")
    found = cuda_image.toolchain_facts(sp)
    assert found["ptxas"] == {"path": str(wheel), "version": "12.9.86", "from_wheel": True}
    # XLA refuses ptxas 12.3.103 (kBuggyPtxAsVersions) and anything older than 11.8: the next one wins
    fake_tool(wheel.parent, "ptxas", "12.3.103")
    assert cuda_image.toolchain_facts(sp)["ptxas"]["path"] == str(on_path)


def test_a_library_is_loaded_in_a_fresh_interpreter_and_its_error_kept(tmp_path: Path) -> None:
    broken = tmp_path / "libbroken.so.1"
    broken.write_text("not an ELF file\n")
    error = cuda_image.load_in_child(str(broken))
    assert error is not None and "libbroken.so.1" in error
    libc = next(p for p in ("/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib64/libc.so.6") if Path(p).exists())
    assert cuda_image.load_in_child(libc) is None, sys.platform
