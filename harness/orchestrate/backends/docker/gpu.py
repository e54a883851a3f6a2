"""The GPU check (``tfparity docker check-gpu``, run first by ``make bench-gpu``) and GPU device selection.

The check has two steps, cheapest first:

1. :func:`check_toolkit`: the engine accepts the ``bench-gpu`` service's device request. A throw-away
   container of the small local base image starts with it; without the NVIDIA Container Toolkit the
   engine refuses at once (no GPU image is built for nothing).
2. :func:`check_gpu`: TensorFlow in the GPU image, with the same device request, must list >= 1 GPU
   and run a matmul and an XLA-compiled function on it (``python -m harness.worker.gpu_check``).
   Success is one summary (GPU, driver, CUDA/cuDNN of the build and of the libraries); failure is
   one line naming the cause (:func:`classify`): missing toolkit, toolkit error, no driver, no
   device, driver too old or mismatched, CUDA libraries missing, a GPU TF ignored, a failing kernel.

Device selection: ``--gpus 0`` / ``--gpus 0,1`` become explicit ``device_ids`` in the compose device
request (:func:`device_override`), never ``count: all``; one GPU (``0``) unless more are named.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from pathlib import Path
from typing import Any

from harness.errors import BackendError, ConfigError
from harness.orchestrate.backends.docker.compose import cleanup_project, compose_client, project_name, write_env_file
from harness.orchestrate.backends.docker.engine import check_engine, explain_docker_error, image_exists, whales
from harness.orchestrate.backends.docker.owner import Owner
from harness.orchestrate.backends.docker.settings import (
    CONTAINER_UID,
    DEFAULT_GPU_IDS,
    DEFAULT_IMAGES,
    LABEL_PURPOSE,
    LOCAL_BASE_IMAGE,
    NVIDIA_HINT,
    SERVICES,
)
from harness.store.protocol import parse_facts

log = logging.getLogger(__name__)

GPU_ID = re.compile(r"\d+|GPU-[0-9a-fA-F-]{8,}")  # an index (nvidia-smi order) or a GPU UUID
CHECK_MODULE = "harness.worker.gpu_check"
# What the NVIDIA Container Toolkit's prestart hook (libnvidia-container) prints when it cannot set up
# the container: the driver or its kernel module is broken (source: NVIDIA/libnvidia-container).
TOOLKIT_ERROR = re.compile(r"nvidia-container-cli: (?P<detail>.*)")
TOOLKIT_TOO_OLD = re.compile(r"requirement error: unsatisfied condition: (?P<requirement>cuda>=[\d.]+)")


def parse_gpu_ids(text: str) -> tuple[str, ...]:
    """``0`` or ``0,1`` (indices as nvidia-smi numbers them, or GPU UUIDs) -> ``("0", "1")``; quotes bad input."""
    ids = tuple(part.strip() for part in str(text).split(","))
    if not all(GPU_ID.fullmatch(i) for i in ids) or len(set(ids)) != len(ids):
        raise ConfigError(
            f"GPU ids must be distinct ids like 0 or 0,1 (indices or GPU-<uuid>; never all: one GPU per run "
            f"unless you name more), got {text!r}"
        )
    return ids


def device_override(directory: Path, gpu_ids: tuple[str, ...] = DEFAULT_GPU_IDS) -> Path:
    """A compose override file whose ``bench-gpu`` device request names exactly ``gpu_ids``.

    ``!override`` replaces compose.yaml's request (a plain override would append a second one); ids
    stay strings (compose refuses numbers). The engine turns them into NVIDIA_VISIBLE_DEVICES.
    """
    path = directory / "compose.gpus.yaml"
    ids = ", ".join(json.dumps(i) for i in gpu_ids)
    path.write_text(
        "services:\n"
        f"  {SERVICES['gpu']}:\n"
        "    deploy:\n"
        "      resources:\n"
        "        reservations:\n"
        "          devices: !override\n"
        "            - driver: nvidia\n"
        f"              device_ids: [{ids}]\n"
        "              capabilities: [gpu]\n",
        encoding="utf-8",
    )
    return path


def _gpu_project(directory: Path, image: str, image_id: str, gpu_ids: tuple[str, ...]) -> tuple[Any, str]:
    """A compose client for one throw-away ``bench-gpu`` container (empty mounts, the device request)."""
    project = project_name("gpucheck")
    env_file = write_env_file(
        directory,
        {
            "TFPARITY_IMAGE": image,
            "TFPARITY_IMAGE_ID": image_id,
            "TFPARITY_RESULTS_DIR": str(directory),
            "TFPARITY_DATA_DIR": str(directory),
            "TFPARITY_USER": f"{CONTAINER_UID}:{CONTAINER_UID}",
            "TFPARITY_MEMORY_LIMIT": "0",
            "TFPARITY_GPUS": ",".join(gpu_ids),
        },
    )
    return compose_client(project, env_file, [device_override(directory, gpu_ids)]), project


def check_toolkit(gpu_ids: tuple[str, ...] = DEFAULT_GPU_IDS, probe_image: str | None = None) -> None:
    """Step 1: fail in one line (naming the NVIDIA Container Toolkit) unless a GPU container can start."""
    candidates = [LOCAL_BASE_IMAGE, probe_image, DEFAULT_IMAGES["gpu"], DEFAULT_IMAGES["cpu"]]
    image = next((c for c in candidates if c and image_exists(c)), None)
    if image is None:
        # No image to start: the registered runtimes are the best evidence we have.
        if "nvidia" not in check_engine()["runtimes"]:
            raise BackendError(f"GPU runtime check: {NVIDIA_HINT}")
        return
    with tempfile.TemporaryDirectory(prefix="tfparity-gpucheck-") as tmp:
        dc, project = _gpu_project(Path(tmp), image, "", gpu_ids)
        try:
            _run_or_explain(dc, ["-c", "exit 0"], entrypoint="sh")
        finally:
            cleanup_project(dc, project)


def check_gpu(image: str, image_id: str = "", gpu_ids: tuple[str, ...] = DEFAULT_GPU_IDS) -> dict[str, Any]:
    """Step 2: TensorFlow in ``image`` sees and uses the GPU(s); returns the facts, else one-line BackendError."""
    with tempfile.TemporaryDirectory(prefix="tfparity-gpucheck-") as tmp:
        dc, project = _gpu_project(Path(tmp), image, image_id, gpu_ids)
        try:
            output = _run_or_explain(dc, ["-m", CHECK_MODULE], entrypoint="/opt/tfparity/venv/bin/python")
        finally:
            cleanup_project(dc, project)
    facts = parse_facts(output.splitlines(), "gpu-check")
    kind, reason = classify(facts, output)
    if kind != "ok":
        raise BackendError(f"GPU check failed ({kind}): {reason} [image {image}, --gpus {','.join(gpu_ids)}]")
    assert facts is not None  # classify says ok only with facts
    return facts


def _run_or_explain(dc: Any, command: list[str], *, entrypoint: str) -> str:
    """``compose run`` of the check container; its stdout, or a one-line BackendError naming the cause."""
    try:
        return str(
            dc.compose.run(
                SERVICES["gpu"],
                command,
                entrypoint=entrypoint,
                tty=False,
                remove=True,
                dependencies=False,
                labels={LABEL_PURPOSE: "gpu-check", **Owner.me().labels()},
            )
        )
    except whales().exceptions.DockerException as exc:
        output = "\n".join(part for part in (exc.stdout, exc.stderr) if part)
        facts = parse_facts(output.splitlines(), "gpu-check")
        kind, reason = classify(facts, output)
        if kind in ("ok", "unknown") and facts is None:
            command = [str(c) for c in exc.docker_command]
            raise BackendError(explain_docker_error("GPU check container", command, exc.return_code, output)) from None
        raise BackendError(f"GPU check failed ({kind}): {reason}") from None
    except whales().ClientNotFoundError:
        raise BackendError("GPU check: the docker CLI is not on PATH; install docker.io (or docker-ce-cli)") from None


def classify(facts: dict[str, Any] | None, output: str) -> tuple[str, str]:
    """(kind, one-line reason) from the check's facts and the container's output.

    What only the engine or the toolkit can say comes from their output (the container never ran,
    or ran without the GPU); what TensorFlow found comes from the facts the container printed
    (:func:`harness.worker.gpu_check.diagnose`).
    """
    if "could not select device driver" in output:  # moby daemon/errors.go incompatibleDeviceRequest
        return "no_container_toolkit", NVIDIA_HINT
    too_old = TOOLKIT_TOO_OLD.search(output)
    if too_old:
        requirement = too_old["requirement"]
        return "driver_too_old", f"the NVIDIA Container Toolkit refused the container: the driver fails {requirement}"
    toolkit = TOOLKIT_ERROR.search(output)
    if toolkit:
        detail = toolkit["detail"].strip()
        return "container_toolkit_error", f"the NVIDIA Container Toolkit could not set up the container: {detail}"
    if facts is None:
        lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
        return "unknown", f"the GPU check printed no result (last output: {lines[-1] if lines else 'none'!r})"
    diagnosis = facts.get("diagnosis") or {}
    kind = str(diagnosis.get("kind", "unknown"))
    if kind == "ok":
        return "ok", ""
    return kind, f"TensorFlow has no usable GPU: {diagnosis.get('reason', 'no reason given')}"


def gpu_summary(facts: dict[str, Any], gpu_ids: tuple[str, ...] = DEFAULT_GPU_IDS) -> list[str]:
    """What a passed check found: one line per GPU, the driver, TF's CUDA build and the libraries, warnings."""
    tf, drv, runtime = facts["tf"], facts["driver"], facts.get("runtime") or {}
    smi = drv.get("smi") or []
    driver = smi[0]["driver"] if smi else "unknown"
    cuda = drv.get("cuda_driver_version")
    lines = [
        f"GPU check: ok (--gpus {','.join(gpu_ids)}; NVIDIA_VISIBLE_DEVICES={facts.get('visible_devices')})",
        *(f"  GPU:{i} {g['name']} (compute capability {g['compute_capability']})" for i, g in enumerate(tf["gpus"])),
        f"  driver {driver}" + (f" (CUDA {cuda // 1000}.{(cuda % 1000) // 10})" if cuda else ""),
        f"  TensorFlow {tf['version']} built for CUDA {tf['cuda_version']} / cuDNN {tf['cudnn_version']}; "
        f"libraries: cudart {runtime.get('cudart')}, cuDNN {runtime.get('cudnn')}, cuBLASLt {runtime.get('cublasLt')}",
        "  a matmul and an XLA-compiled function ran on GPU:0",
    ]
    return lines + [f"  warning: {w}" for w in facts.get("warnings") or []]
