"""The GPU path without a GPU: the CUDA image's contents, the GPU check's failure modes, device selection.

* unit: ``--gpus`` validation, the compose device request, the GPU check's classification of
  recorded outputs (tests/fixtures/gpu_check/SOURCES.md);
* ``docker``: the built ``tfparity:gpu`` image (CUDA build, libraries, ptxas), a GPU run and the GPU
  check on this GPU-less engine (one line naming the cause, nothing left), the compose GPU service
  and its device ids as the engine receives them. Under CI=true a missing engine or GPU image fails
  (.ci/setup-docker.sh builds it);
* ``gpu``: the same checks, ``make gpu-check`` included, on a host where a GPU is visible; skipped
  (never passed) everywhere else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.orchestrate.backends.docker.gpu import classify, device_override, gpu_summary, parse_gpu_ids
from harness.orchestrate.backends.docker.settings import (
    COMPOSE_FILE,
    DEFAULT_IMAGES,
    GPU_WHEELHOUSE_DIR,
    LABEL_GPU_DEPS,
    NVIDIA_HINT,
)
from harness.spec.run_spec import PathSpec, RunSpec
from harness.store.protocol import parse_facts
from tests.helpers import ROOT, docker, tfparity, unavailable
from tests.orchestrate.support import assert_no_suite_dir, assert_one_line_error

GPU_IMAGE = DEFAULT_IMAGES["gpu"]
CPU_IMAGE = DEFAULT_IMAGES["cpu"]
FIXTURES = ROOT / "tests" / "fixtures" / "gpu_check"
# Containers these tests start carry this name prefix (docker run) or project prefix (compose).
OWN = "tfparity-gputest"


# --- device selection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ids"),
    [("0", ("0",)), ("0,1", ("0", "1")), (" 2 , 3", ("2", "3")), ("GPU-4f7c1a2b-0d3e", ("GPU-4f7c1a2b-0d3e",))],
)
def test_gpu_ids_are_explicit_device_ids(text: str, ids: tuple[str, ...]) -> None:
    assert parse_gpu_ids(text) == ids


@pytest.mark.parametrize("text", ["all", "", "0,0", "-1", "0;1", "1.5", "gpu0", "0,"])
def test_bad_gpu_ids_are_refused_with_the_value_quoted(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_gpu_ids(text)
    assert repr(text) in str(info.value) and "never all" in str(info.value)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--backend", "docker", "--device", "gpu", "--gpus", "all"), "got 'all'"),
        (("--backend", "docker", "--device", "gpu", "--gpus", "0,0"), "got '0,0'"),
        (("--backend", "docker", "--device", "cpu", "--gpus", "0"), "--device cpu"),
        (("--device", "gpu", "--gpus", "1"), "--backend local"),
    ],
)
def test_run_refuses_bad_gpus_in_one_line_before_anything(
    args: tuple[str, ...], fragment: str, tmp_path: Path, tf_trap: dict[str, str]
) -> None:
    results = tmp_path / "results"
    proc = tfparity("run", "--model", "baseline", "--results-dir", str(results), *args, env=tf_trap)
    assert_one_line_error(proc, fragment)
    assert_no_suite_dir(results)


def test_the_device_override_names_exactly_the_ids(tmp_path: Path) -> None:
    import yaml

    text = device_override(tmp_path, ("0", "1")).read_text()
    assert "!override" in text  # replaces compose.yaml's request instead of adding a second one
    (request,) = yaml.safe_load(text.replace("!override", ""))["services"]["bench-gpu"]["deploy"]["resources"][
        "reservations"
    ]["devices"]
    assert request == {"driver": "nvidia", "device_ids": ["0", "1"], "capabilities": ["gpu"]}


# --- the GPU check's classification, on recorded outputs ----------------------------------------


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_missing_toolkit_is_named_from_the_engines_refusal() -> None:
    output = fixture_text("no-toolkit.compose.txt")
    assert classify(None, output) == ("no_container_toolkit", NVIDIA_HINT)


@pytest.mark.parametrize(
    ("output", "kind", "fragment"),
    [
        # NVIDIA/nvidia-container-toolkit#556 (runc reports the toolkit's prestart hook)
        (
            "docker: Error response from daemon: failed to create shim task: OCI runtime create failed: runc create "
            "failed: unable to start container process: error during container init: error running hook #0: error "
            "running hook: exit status 1, stdout: , stderr: Auto-detected mode as 'legacy'\n"
            "nvidia-container-cli: initialization error: driver rpc error: failed to process request: unknown.",
            "container_toolkit_error",
            "initialization error: driver rpc error",
        ),
        # NVIDIA/nvidia-container-toolkit#260
        (
            "Error response from daemon: ... Running hook #0:: error running hook: exit status 1, stdout: , stderr: "
            "nvidia-container-cli: initialization error: nvml error: driver not loaded: unknown.",
            "container_toolkit_error",
            "nvml error: driver not loaded",
        ),
        # libnvidia-container's --require check (images that declare NVIDIA_REQUIRE_CUDA; ours does not)
        (
            "nvidia-container-cli: requirement error: unsatisfied condition: cuda>=12.5, please update your driver",
            "driver_too_old",
            "cuda>=12.5",
        ),
        (
            "Traceback (most recent call last):\nModuleNotFoundError: No module named 'tensorflow'",
            "unknown",
            "tensorflow",
        ),
    ],
)
def test_toolkit_and_container_failures_are_told_apart(output: str, kind: str, fragment: str) -> None:
    found_kind, reason = classify(None, output)
    assert found_kind == kind and fragment in reason and "\n" not in reason


def test_what_tensorflow_found_comes_from_the_containers_facts() -> None:
    for name in ("no-driver", "no-driver-no-ldpath"):
        output = fixture_text(f"{name}.stdout") + fixture_text(f"{name}.stderr")
        kind, reason = classify(parse_facts(output.splitlines(), "gpu-check"), output)
        assert kind == "no_driver_in_container" and "libcuda.so.1 cannot be loaded" in reason, name


def test_a_passed_check_names_gpu_driver_and_cuda_versions() -> None:
    facts = parse_facts(fixture_text("no-driver.stdout").splitlines(), "gpu-check")
    assert facts is not None
    facts["tf"]["gpus"] = [{"name": "NVIDIA L4", "compute_capability": "8.9"}]
    facts["driver"].update(cuda_driver_version=12040, smi=[{"name": "NVIDIA L4", "driver": "550.54.15"}])
    facts["visible_devices"] = "1"
    text = "\n".join(gpu_summary(facts, ("1",)))
    for fragment in ("--gpus 1", "GPU:0 NVIDIA L4 (compute capability 8.9)", "driver 550.54.15 (CUDA 12.4)",
                     "built for CUDA 12.5.1 / cuDNN 9", "cudart 12.9, cuDNN 9.28.0"):  # fmt: skip
        assert fragment in text, (fragment, text)


# --- the built GPU image (docker) ----------------------------------------------------------------


@pytest.fixture(scope="session")
def gpu_image(engine: None) -> dict[str, Any]:
    """tfparity:gpu, refreshed when the harness changed (seconds: the dependency layer is reused)."""
    from harness.orchestrate.backends.docker.image import ensure_image

    if docker("image", "inspect", GPU_IMAGE).returncode != 0:
        unavailable(f"image {GPU_IMAGE} is missing (make image-gpu)")
    if not any(GPU_WHEELHOUSE_DIR.glob("*.whl")):
        unavailable(f"the GPU wheelhouse {GPU_WHEELHOUSE_DIR} is missing (make wheelhouse-gpu)")
    return ensure_image("gpu")


def in_image(image: str, *args: str, name: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a python module in the image as the compose service would (no network, read-only, non-root)."""
    flags = [f"--env={k}={v}" for k, v in (env or {}).items()]
    return docker(
        "run", "--rm", f"--name={OWN}-{name}", "--network=none", "--read-only", "--tmpfs=/tmp", "--cap-drop=ALL",
        "--security-opt=no-new-privileges", "--user=10001:10001", "--env=MPLCONFIGDIR=/tmp/mpl", *flags,
        "--entrypoint=/opt/tfparity/venv/bin/python", image, *args, timeout=900,
    )  # fmt: skip


@pytest.fixture
def no_leftovers(engine: None) -> Iterator[None]:
    yield
    left = docker("ps", "-a", "--filter", f"name={OWN}", "--format", "{{.Names}}").stdout.split()
    left += docker("ps", "-a", "--filter", "name=tfparity-gpucheck-", "--format", "{{.Names}}").stdout.split()
    assert left == [], f"containers left behind: {left}"


@pytest.mark.docker
def test_gpu_image_has_the_cuda_build_its_libraries_and_ptxas(gpu_image: dict[str, Any], no_leftovers: None) -> None:
    proc = in_image(gpu_image["id"], "-m", "harness.worker.cuda_image", name="image")
    assert proc.returncode == 0, proc.stderr[-3000:]
    facts = parse_facts(proc.stdout.splitlines(), "cuda-image")
    assert facts is not None, proc.stdout[-2000:]
    build = facts["build_info"]
    assert build["is_cuda_build"] and build["cuda_version"].startswith("12.") and build["cudnn_version"] == "9"
    # the libraries report the major version the build expects
    assert facts["runtime"]["cudart"].split(".")[0] == build["cuda_version"].split(".")[0]
    assert facts["runtime"]["cudnn"].split(".")[0] == build["cudnn_version"]
    libraries = facts["libraries"]
    missing = [soname for soname, lib in libraries["expected"].items() if not lib["present"]]
    assert missing == [], f"sonames TF dlopens missing from the image: {missing}"
    assert len(libraries["all"]) >= 20
    broken = [lib for lib in libraries["all"] if not lib["loads"] and not lib["needs_driver"]]
    assert broken == [], broken
    # only libraries linked against the driver fail without one (cuDNN's runtime-compiled engines)
    assert {Path(lib["path"]).name for lib in libraries["all"] if not lib["loads"]} <= {
        "libcudnn_engines_runtime_compiled.so.9"
    }
    assert libraries["driver_libraries_in_image"] == {"libcuda.so.1": False, "libnvidia-ml.so.1": False}
    assert facts["tf_library_check"] is True  # cuSOLVER found through the image's LD_LIBRARY_PATH
    tools = facts["toolchain"]
    assert tools["ptxas"]["from_wheel"] and tools["ptxas"]["version"].startswith("12.")
    assert tools["nvlink"] is None and "ptxas alone" in tools["nvlink_note"]
    assert tools["libdevice"] and tools["libdevice"].endswith("libdevice.10.bc")
    assert facts["packages"]["tensorflow"] == "2.21.0" and "tensorflow-cpu" not in facts["packages"]
    assert gpu_image["labels"][LABEL_GPU_DEPS].startswith("tfparity-gpu-deps:")


@pytest.mark.docker
def test_gpu_and_cpu_images_run_the_same_keras_and_numpy(gpu_image: dict[str, Any], no_leftovers: None) -> None:
    if docker("image", "inspect", CPU_IMAGE).returncode != 0:
        unavailable(f"image {CPU_IMAGE} is missing (make image-cpu)")
    code = "import keras, numpy; print(keras.__version__, numpy.__version__)"
    versions = {}
    for image in (gpu_image["id"], CPU_IMAGE):
        proc = in_image(image, "-c", code, name="versions", env={"TF_CPP_MIN_LOG_LEVEL": "3"})
        assert proc.returncode == 0, proc.stderr[-2000:]
        versions[image] = proc.stdout.split()
    assert versions[gpu_image["id"]] == versions[CPU_IMAGE], versions


@pytest.mark.docker
def test_a_gpu_run_without_a_gpu_fails_in_one_line_and_leaves_only_its_result(
    gpu_image: dict[str, Any], data_dir: Path, tmp_path: Path, no_leftovers: None
) -> None:
    spec = RunSpec(benchmark="baseline", path=PathSpec(device="gpu"), epochs=1, max_train_samples=640)
    results = tmp_path / "results"
    (results / "specs").mkdir(parents=True)
    (results / "specs" / f"{spec.run_id}.json").write_text(json.dumps(spec.to_dict()))
    os.chmod(results, 0o777)  # the container user (10001) writes its result here
    proc = docker(
        "run", "--rm", f"--name={OWN}-run", "--network=none", "--read-only", "--tmpfs=/tmp", "--user=10001:10001",
        "--env=MPLCONFIGDIR=/tmp/mpl", f"--volume={results}:/results", f"--volume={data_dir}:/data:ro",
        gpu_image["id"], f"/results/specs/{spec.run_id}.json", f"/results/{spec.run_id}.json", "--data-dir", "/data",
        timeout=900,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-3000:]
    ours = [ln for ln in proc.stderr.splitlines() if ln.startswith("tfparity-worker:")]
    assert len(ours) == 1 and "no NVIDIA driver in the container" in ours[0], ours
    assert "Traceback" not in proc.stderr
    written = sorted(str(p.relative_to(results)) for p in results.rglob("*") if p.is_file())
    assert written == sorted([f"specs/{spec.run_id}.json", f"{spec.run_id}.json"])
    result = json.loads((results / f"{spec.run_id}.json").read_text())
    assert result["status"] == "failed" and "no NVIDIA driver in the container" in result["error"]
    assert result["environment"]["numpy_version"] and result["environment"]["keras_version"]


@pytest.mark.docker
def test_the_gpu_check_on_this_engine_fails_in_one_line_naming_the_toolkit(
    gpu_image: dict[str, Any], tmp_path: Path, no_leftovers: None
) -> None:
    if gpu_visible():
        pytest.skip("this host has a GPU runtime: the failure path cannot be shown here")
    proc = tfparity("docker", "check-gpu", "--gpus", "0,1")
    line = assert_one_line_error(proc, "(no_container_toolkit)", "NVIDIA Container Toolkit")
    assert "could not select device driver" in line
    # through the run command: the same line, exit 2, no suite directory
    results = tmp_path / "results"
    proc = tfparity("run", "--backend", "docker", "--device", "gpu", "--gpus", "1", "--model", "baseline",
                    "--dataset", "mnist-5k", "--epochs", "1", "--results-dir", str(results))  # fmt: skip
    assert_one_line_error(proc, "NVIDIA Container Toolkit")
    assert_no_suite_dir(results)


@pytest.mark.docker
def test_make_gpu_check_without_a_gpu_prints_the_cause_and_one_fail_verdict(
    engine: None, tmp_path: Path, no_leftovers: None
) -> None:
    if gpu_visible():
        pytest.skip("this host has a GPU runtime: the failure path cannot be shown here")
    out = tmp_path / "gpu-check"
    proc = subprocess.run(
        ["make", "-s", "-o", "install", "gpu-check", f"GPU_CHECK_DIR={out}", f"TFPARITY={sys.executable} -m harness",
         f"PY={sys.executable}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("tfparity:")]
    assert len(errors) == 1 and "(no_container_toolkit)" in errors[0], proc.stderr[-2000:]
    verdicts = [ln for ln in proc.stdout.splitlines() if ln.startswith("gpu-check: ")]
    assert verdicts == ["gpu-check: FAIL (the GPU check failed: the line above names the cause; nothing was run)"]
    assert not out.exists()


@pytest.mark.docker
def test_the_check_of_tensorflow_in_the_image_classifies_a_container_without_a_driver(
    gpu_image: dict[str, Any], no_leftovers: None
) -> None:
    proc = in_image(gpu_image["id"], "-m", "harness.worker.gpu_check", name="tfcheck")
    assert proc.returncode == 0, proc.stderr[-3000:]
    facts = parse_facts(proc.stdout.splitlines(), "gpu-check")
    kind, reason = classify(facts, proc.stdout + proc.stderr)
    assert kind == "no_driver_in_container", reason
    assert facts is not None and facts["tf"]["library_check"] is True and facts["tf"]["gpus"] == []


@pytest.mark.docker
def test_compose_gpu_service_sends_explicit_device_ids_to_the_engine(
    engine: None, tmp_path: Path, no_leftovers: None
) -> None:
    env = {
        "TFPARITY_RESULTS_DIR": str(tmp_path),
        "TFPARITY_DATA_DIR": str(tmp_path),
        "TFPARITY_IMAGE": "tfparity-base:bookworm",
        "TFPARITY_GPUS": "0,1",
    }
    files = ["-f", str(COMPOSE_FILE), "-f", str(device_override(tmp_path, ("0", "1")))]
    config = docker("compose", *files, "config", "--format", "json", env=env)
    assert config.returncode == 0, config.stderr
    service = json.loads(config.stdout)["services"]["bench-gpu"]
    (request,) = service["deploy"]["resources"]["reservations"]["devices"]
    assert request == {"driver": "nvidia", "device_ids": ["0", "1"], "capabilities": ["gpu"]}  # no count
    assert service["environment"]["TFPARITY_GPUS"] == "0,1"
    # compose.yaml alone: one GPU, by id
    alone = json.loads(docker("compose", "-f", str(COMPOSE_FILE), "config", "--format", "json", env=env).stdout)
    assert alone["services"]["bench-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == ["0"]
    # what the engine receives: create (device requests are only resolved at start) and inspect
    project = f"{OWN}-ids"
    created = docker("compose", *files, "-p", project, "create", "bench-gpu", env=env)
    try:
        assert created.returncode == 0, created.stderr
        (container,) = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").stdout.split()
        host_config = json.loads(docker("inspect", "--format", "{{json .HostConfig}}", container).stdout)
        (engine_request,) = host_config["DeviceRequests"]
        assert engine_request["Driver"] == "nvidia" and engine_request["DeviceIDs"] == ["0", "1"]
        assert engine_request["Count"] == 0 and engine_request["Capabilities"] == [["gpu"]]
    finally:
        docker("compose", *files, "-p", project, "down", "--remove-orphans", env=env)


# --- on a GPU host (gpu) -------------------------------------------------------------------------


def gpu_visible() -> bool:
    """A GPU this engine can hand to a container: nvidia-smi answers and docker knows the nvidia runtime."""
    try:
        smi = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    runtimes = docker("info", "--format", "{{json .Runtimes}}").stdout
    return smi.returncode == 0 and "GPU " in smi.stdout and "nvidia" in runtimes


@pytest.fixture(scope="session")
def gpu_host(engine: None) -> int:
    """The number of GPUs; skips (never passes) without one, on CI as anywhere."""
    if not gpu_visible():
        pytest.skip("no GPU visible to this Docker engine (nvidia-smi and the NVIDIA Container Toolkit)")
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60).stdout
    return sum(line.startswith("GPU ") for line in out.splitlines())


@pytest.mark.gpu
def test_gpu_check_passes_on_a_gpu_host_and_names_the_gpu(gpu_host: int, gpu_image: dict[str, Any]) -> None:
    proc = tfparity("docker", "check-gpu", "--gpus", "0", timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "GPU check: ok" in proc.stdout and "GPU:0 " in proc.stdout and "built for CUDA 12." in proc.stdout


@pytest.mark.gpu
def test_two_gpu_ids_reach_tensorflow(gpu_host: int, gpu_image: dict[str, Any]) -> None:
    if gpu_host < 2:
        pytest.skip(f"{gpu_host} GPU on this host; --gpus 0,1 needs two")
    proc = tfparity("docker", "check-gpu", "--gpus", "0,1", timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "GPU:1 " in proc.stdout and "NVIDIA_VISIBLE_DEVICES=0,1" in proc.stdout


@pytest.mark.gpu
@pytest.mark.slow
def test_make_gpu_check_runs_every_gpu_path_and_prints_one_verdict(gpu_host: int, tmp_path: Path) -> None:
    proc = subprocess.run(
        ["make", "-s", "-o", "install", "gpu-check", f"GPU_CHECK_DIR={tmp_path}",
         f"TFPARITY={sys.executable} -m harness", f"PY={sys.executable}"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    verdicts = [ln for ln in proc.stdout.splitlines() if ln.startswith("gpu-check: ")]
    assert len(verdicts) == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert verdicts[0].split()[1] in ("PASS", "WARN"), verdicts[0]
    assert proc.returncode == 0
    assert (tmp_path / "report" / "report.html").is_file()
    results = [json.loads(p.read_text()) for p in (tmp_path / "gpu").rglob("*-gpu-*.json") if p.parent.name != "specs"]
    assert all(r["status"] == "ok" for r in results), [r["error"] for r in results if r["status"] != "ok"]
    ran = {
        (r["spec"]["path"]["precision"], r["spec"]["path"]["xla"], r["spec"]["loop"], r["spec"]["mode"])
        for r in results
    }
    for path in (("fp32", False, "fit", "train"), ("tf32", False, "fit", "train"), ("mixed", False, "fit", "train"),
                 ("fp32", True, "fit", "train"), ("fp32", True, "compiled", "train"), ("fp32", False, "fit", "probe"),
                 ("tf32", False, "fit", "probe"), ("mixed", False, "fit", "probe")):  # fmt: skip
        assert path in ran, (path, sorted(ran))


def test_gpu_tests_are_skipped_not_passed_without_a_gpu() -> None:
    """The gpu-marked tests above must report 'skipped' on a GPU-less machine (CI included)."""
    if gpu_visible():
        pytest.skip("a GPU is visible here")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu", "-rs", __file__],
        cwd=ROOT, capture_output=True, text=True, timeout=900, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    summary = proc.stdout.strip().splitlines()[-1]
    assert proc.returncode == 0 and "passed" not in summary and "3 skipped" in summary, proc.stdout[-2000:]
