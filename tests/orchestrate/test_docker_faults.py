"""Issue 7 with the docker backend and a real engine: interruption through the CLI, resume, faults
inside containers, engine/compose/image problems, and the containers' security settings as the
engine reports them for a *running* container (test_docker.py checks the compose file itself).

Locally these skip when no engine runs; under CI=true a missing engine, compose plugin or CPU image
is a failure. Only the project's own containers are inspected: other tests may run containers at
the same time, so every check is scoped to this test's run ids or results directory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.errors import BackendError, SuiteStoppedError
from harness.orchestrate.backends import get_backend
from harness.orchestrate.backends.docker.compose import sweep_stale_containers
from harness.orchestrate.backends.docker.settings import COMPOSE_FILE, CONTAINER_UID, DEFAULT_IMAGES
from harness.orchestrate.runner import run_specs
from harness.spec.run_spec import PathSpec, RunSpec
from harness.store.protocol import ExitCode
from harness.store.results import load_result, write_result
from tests.helpers import docker, tfparity, unavailable
from tests.orchestrate.support import (
    ALLOWED_MARKER,
    QUICK,
    SECRETS,
    PauseOnStart,
    assert_no_suite_dir,
    assert_one_line_error,
    assert_suite_dir_consistent,
    container_state,
    containers_of_run,
    fill,
    remove_containers_of,
    start_backend_child,
    start_tfparity,
    stderr_of,
    stdout_of,
    wait_for,
)

pytestmark = pytest.mark.docker

CPU_IMAGE = DEFAULT_IMAGES["cpu"]


def containers_touching(root: Path) -> list[str]:
    """Containers (any state) of the project's services with a bind mount under ``root``."""
    names = []
    out = docker("ps", "-a", "-q", "--filter", "label=com.docker.compose.project")
    for cid in out.stdout.split():
        info = docker("inspect", cid)
        if info.returncode != 0:  # removed meanwhile
            continue
        (c,) = json.loads(info.stdout)
        if any(str(m.get("Source", "")).startswith(str(root)) for m in c.get("Mounts", [])):
            names.append(c["Name"].lstrip("/"))
    return names


def projects_of(run_ids: list[str]) -> list[str]:
    """Compose projects (running or not) named after these runs (the backend's naming scheme)."""
    out = docker("compose", "ls", "-a", "--format", "json")
    assert out.returncode == 0, out.stderr
    stems = [r.lower()[:40] for r in run_ids]
    return [p["Name"] for p in json.loads(out.stdout or "[]") if any(s in p["Name"] for s in stems)]


def assert_nothing_left(root: Path, run_ids: list[str], within_s: float = 20) -> None:
    deadline = time.monotonic() + within_s
    while (containers_touching(root) or projects_of(run_ids)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert containers_touching(root) == [], "containers left behind"
    assert projects_of(run_ids) == [], "compose projects left behind"


def docker_run_ids(*benchmarks: str, seed: int, suite: str = "bn") -> list[str]:
    """Run ids of the quick runs the CLI plans (``--suite bn``, or ``--model X``: suite ``run``)."""
    base = RunSpec(epochs=1, max_train_samples=640, seed=seed)
    return [base.replace(benchmark=b, suite=suite).run_id for b in benchmarks]


# --- security, as the engine applies it to a running container -------------------------------------


@pytest.fixture
def probe_container(cpu_backend: Any, data_dir: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A container of the bench-cpu service, kept alive (sleep) to be inspected, as the backend starts it."""
    results = tmp_path / "results"
    results.mkdir()
    if os.geteuid() == 0:  # the container user must be able to write there, as the backend arranges
        os.chown(results, CONTAINER_UID, CONTAINER_UID)
    project = f"tfparity-faults-probe-{os.getpid()}"
    env = {
        "TFPARITY_RESULTS_DIR": str(results),
        "TFPARITY_DATA_DIR": str(data_dir),
        "TFPARITY_IMAGE": CPU_IMAGE,
        **SECRETS,
    }
    base = ["compose", "-f", str(COMPOSE_FILE), "-p", project]
    started = docker(*base, "run", "-d", "--name", project, "--entrypoint", "sleep", "bench-cpu", "300", env=env)
    try:
        assert started.returncode == 0, started.stderr
        yield project, results
    finally:
        docker("rm", "-f", project)
        docker(*base, "down", "--remove-orphans", env=env)


def test_running_container_is_unprivileged_isolated_and_read_only(
    probe_container: tuple[str, Path], data_dir: Path
) -> None:
    name, results = probe_container
    (c,) = json.loads(docker("inspect", name).stdout)
    host = c["HostConfig"]
    assert host["Privileged"] is False
    assert host["NetworkMode"] == "none"
    assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
    assert "no-new-privileges:true" in (host.get("SecurityOpt") or [])
    assert host["ReadonlyRootfs"] is True
    assert c["Config"]["User"].split(":")[0] not in ("", "0", "root")
    mounts = {m["Destination"]: m for m in c["Mounts"]}
    assert mounts["/data"]["RW"] is False and mounts["/data"]["Source"] == str(data_dir)
    assert mounts["/results"]["RW"] is True
    assert set(mounts) == {"/data", "/results"}, "nothing else of the host is mounted"
    assert not any(m["Source"] in ("/var/run/docker.sock", "/run/docker.sock") for m in c["Mounts"])

    def sh(script: str) -> subprocess.CompletedProcess[str]:
        return docker("exec", name, "sh", "-c", script)

    assert sh("id -u").stdout.strip() not in ("", "0")
    status = sh("cat /proc/self/status").stdout
    caps = {line.split(":")[0]: int(line.split()[1], 16) for line in status.splitlines() if line.startswith("Cap")}
    assert caps["CapEff"] == 0 and caps["CapPrm"] == 0 and caps["CapBnd"] == 0, caps
    assert "NoNewPrivs:\t1" in status
    denied = sh("touch /data/x 2>&1; echo rc=$?")
    assert "Read-only file system" in denied.stdout and "rc=1" in denied.stdout
    assert "rc=1" in sh("touch /opt/x 2>&1; echo rc=$?").stdout  # read-only root file system
    assert sh("touch /results/ok && echo written").stdout.strip() == "written"
    interfaces = sh("cat /proc/net/dev").stdout
    assert [ln.split(":")[0].strip() for ln in interfaces.splitlines()[2:]] == ["lo"]
    env = sh("env").stdout
    for value in SECRETS.values():  # the host's environment does not reach the container
        assert value not in env


# --- interrupt through the CLI, resume, secrets ----------------------------------------------------


@pytest.mark.slow
def test_sigint_of_a_docker_suite_then_resume(cpu_backend: Any, data_dir: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    seed = 7101  # unique run ids: other tests may run containers concurrently
    first, second = docker_run_ids("baseline", "batchnorm", seed=seed)
    env = {**SECRETS, **ALLOWED_MARKER}
    args = (
        "run",
        "--backend",
        "docker",
        "--suite",
        "bn",
        *QUICK,
        "--seed",
        str(seed),
        "--data-dir",
        str(data_dir),
        "--results-dir",
        str(results),
    )
    pause = PauseOnStart(second)  # run 2 cannot end before the signal lands, however slow the machine
    proc = start_tfparity(*args, log_dir=tmp_path, env=env)
    try:
        suite_dir = wait_for(lambda: next(iter(results.glob("bn-*")), None), 900, "the suite directory", proc)
        wait_for(lambda: (suite_dir / f"{first}.json").exists(), 900, "the first result", proc)
        pause.paused(900, proc)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=600) == 130, stderr_of(tmp_path)[-3000:]
    finally:
        pause.close()
        if proc.poll() is None:  # a timeout still cleans up
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        remove_containers_of(first, second)
    err = stderr_of(tmp_path)
    assert "Traceback" not in err and f"tfparity run --resume {suite_dir}" in err
    assert_nothing_left(tmp_path, [first, second])
    now = assert_suite_dir_consistent(suite_dir)
    assert now[first].status == "ok" and now[first].environment["backend"] == "docker"
    assert now[second].status == "interrupted" and "SIGINT" in now[second].error

    resumed = tfparity("run", "--resume", str(suite_dir), env=env, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{first}: already ok, skipped" in resumed.stderr
    final = assert_suite_dir_consistent(suite_dir)
    assert {k: r.status for k, r in final.items()} == {first: "ok", second: "ok"}
    assert final[second].environment["backend"] == "docker"  # resumed on the suite's own backend
    assert_nothing_left(tmp_path, [first, second])

    # The container never saw the secrets; the results and the report carry none of them, while
    # allowlisted variables set in the container do arrive (so this check could fail).
    assert final[first].environment["env"].get("TFPARITY_BACKEND") == "docker"
    report_dir = tmp_path / "report"
    assert tfparity("report", str(suite_dir), "-o", str(report_dir), env=env).returncode == 0
    for path in [p for p in [*suite_dir.rglob("*"), *report_dir.rglob("*")] if p.is_file()]:
        content = path.read_bytes()
        for name, value in SECRETS.items():
            assert value.encode() not in content and name.encode() not in content, f"{name} leaked into {path}"


@pytest.mark.slow
def test_kill_9_of_the_harness_its_container_stops_itself_and_the_next_start_sweeps_it(
    cpu_backend: Any, data_dir: Path, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    seed = 7102
    long_run = RunSpec(benchmark="baseline", epochs=2000, max_train_samples=640, seed=seed, suite="run")
    proc = start_tfparity(
        "run", "--backend", "docker", "--model", "baseline", "--epochs", "2000", "--max-train-samples", "640",
        "--seed", str(seed), "--data-dir", str(data_dir), "--results-dir", str(results), log_dir=tmp_path,
    )  # fmt: skip
    try:
        wait_for(lambda: f"{long_run.run_id}: epoch 1/2000" in stderr_of(tmp_path), 900, "the first epoch", proc)
        os.kill(proc.pid, signal.SIGKILL)  # no handler runs: nobody stops the container
        proc.wait(timeout=60)
        suite_dir = next(results.glob("run-*"))
        assert_suite_dir_consistent(suite_dir)  # right after the kill: no partial file
        (container,) = containers_of_run(long_run.run_id)
        # Its worker no longer sees the heartbeat renewed: it stops itself within about a minute
        # (HEARTBEAT_STALE_S), not after the 2000 epochs.
        state = wait_for(
            lambda: (s := container_state(container)) and not s["Running"] and s, 600, "the container to stop itself"
        )
        assert state["ExitCode"] == ExitCode.ABANDONED and not state["OOMKilled"], state
        said = docker("logs", container).stderr
        assert "tfparity-worker: stopping: no heartbeat from the harness for" in said, said[-2000:]
        assert assert_suite_dir_consistent(suite_dir) == {}  # no result: a resume runs it again
        # The next start (any tfparity process here) removes it: its harness is gone.
        swept = sweep_stale_containers()
        assert [n for n in swept if long_run.run_id.lower()[:30] in n], swept  # named after the run
        assert containers_of_run(long_run.run_id) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        remove_containers_of(long_run.run_id)
    assert_nothing_left(tmp_path, [long_run.run_id])


@pytest.mark.slow
def test_resume_after_a_kill_9_during_a_container_run_completes(
    cpu_backend: Any, data_dir: Path, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    seed = 7105
    (run_id,) = docker_run_ids("baseline", seed=seed, suite="run")
    pause = PauseOnStart(run_id)
    proc = start_tfparity(
        "run",
        "--backend",
        "docker",
        "--model",
        "baseline",
        *QUICK,
        "--seed",
        str(seed),
        "--data-dir",
        str(data_dir),
        "--results-dir",
        str(results),
        log_dir=tmp_path,
    )
    try:
        pause.paused(900, proc)  # mid-run: the run cannot have finished
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        pause.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        # The orphan dies too (host reboot, engine restart, make docker-clean): the run is unfinished.
        remove_containers_of(run_id)
    suite_dir = next(results.glob("run-*"))
    assert assert_suite_dir_consistent(suite_dir) == {}
    resumed = tfparity("run", "--resume", str(suite_dir), timeout=900)
    result = assert_suite_dir_consistent(suite_dir)[run_id]
    assert_nothing_left(tmp_path, [run_id])
    # The suite dir may still be lent to the container user: the backend takes it back first and
    # lends the spec readable, so the resumed run really runs.
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert result.status == "ok", result.error


# --- faults inside containers ----------------------------------------------------------------------


@pytest.mark.slow
def test_oom_crash_and_nan_in_containers_are_failures_and_the_suite_goes_on(
    cpu_backend: Any, data_dir: Path, tmp_path: Path
) -> None:
    quick = RunSpec(epochs=1, max_train_samples=640, benchmark="baseline", seed=7103)
    specs = [
        quick.replace(inject_fault="crash"),
        quick.replace(learning_rate=1e6, path=PathSpec(precision="mixed", mixed_policy="mixed_float16")),
    ]
    backend = get_backend("docker", device="cpu", data_dir=data_dir)
    backend.prepare(specs)
    crash, nan = run_specs(specs, backend, tmp_path)
    assert crash.status == "failed" and ("SIGABRT" in crash.error or "134" in crash.error), crash.error
    assert nan.status == "failed" and "non-finite" in nan.error and nan.environment["backend"] == "docker"

    # A real kernel OOM kill through the CLI: a memory limit far below TF's ~700 MB start-up.
    results = tmp_path / "oom"
    proc = tfparity(
        "run",
        "--backend",
        "docker",
        "--suite",
        "bn",
        *QUICK,
        "--seed",
        "7104",
        "--memory-limit",
        "96m",
        "--data-dir",
        str(data_dir),
        "--results-dir",
        str(results),
        timeout=900,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]  # runs failed; the harness itself did not
    final = assert_suite_dir_consistent(next(results.iterdir()))
    assert len(final) == 2  # the suite went on after the first OOM kill
    for result in final.values():
        assert result.status == "failed", result.error
        assert result.error.startswith("container killed by the out-of-memory killer (memory limit 96m)"), result.error
    assert_nothing_left(tmp_path, [s.run_id for s in specs] + list(final))


@pytest.mark.slow
def test_disk_full_during_a_container_run_stops_the_suite_in_one_line(
    cpu_backend: Any, data_dir: Path, tiny_tmpfs: Path, tmp_path: Path
) -> None:
    results = tiny_tmpfs / "results"
    seed = 7106
    first, second = docker_run_ids("baseline", "batchnorm", seed=seed)
    pause = PauseOnStart(first)
    proc = start_tfparity(
        "run",
        "--backend",
        "docker",
        "--suite",
        "bn",
        *QUICK,
        "--seed",
        str(seed),
        "--data-dir",
        str(data_dir),
        "--results-dir",
        str(results),
        log_dir=tmp_path,
    )
    try:
        container = pause.paused(900, proc)  # it cannot write its result before the disk is full
        fill(tiny_tmpfs)  # the worker in the container finds the results mount full when it writes
        assert docker("unpause", container).returncode == 0
        proc.wait(timeout=900)
    finally:
        pause.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        remove_containers_of(first, second)
    err = stderr_of(tmp_path)
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert proc.returncode == 3 and len(errors) == 1 and errors[0].startswith("tfparity: error:"), err[-3000:]
    assert "No space left on device" in errors[0] and "--resume" in errors[0] and "Traceback" not in err
    suite_dir = next(results.glob("bn-*"))
    # No result for the unfinished run (a resume runs it again), the second never started.
    assert assert_suite_dir_consistent(suite_dir) == {}
    assert not (suite_dir / "specs" / f"{second}.json").exists()
    assert_nothing_left(tiny_tmpfs, [first, second])


# --- engine, compose, image problems: one line, exit 2, nothing written -----------------------------


def test_engine_down_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    # No engine needed: an unreachable socket is what a stopped engine looks like.
    results = tmp_path / "results"
    proc = tfparity(
        "run",
        "--backend",
        "docker",
        "--model",
        "baseline",
        *QUICK,
        "--results-dir",
        str(results),
        env={"DOCKER_HOST": f"unix://{tmp_path}/engine-is-down.sock"},
    )
    assert_one_line_error(proc, "not reachable", "engine-is-down.sock")
    assert not results.exists() or list(results.iterdir()) == []


def processes_using(needle: str) -> list[int]:
    """Pids whose environment mentions ``needle`` (e.g. a docker CLI child still on a socket)."""
    pids = []
    for env_file in Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle.encode() in env_file.read_bytes():
                pids.append(int(env_file.parent.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return pids


def test_a_silent_engine_is_one_line_within_the_timeout_and_writes_nothing(tmp_path: Path, silent_engine: str) -> None:
    # The socket accepts and never answers (a wedged dockerd): without a bound the run waits forever.
    if not shutil.which("docker"):
        unavailable("the docker CLI is not on PATH")
    results = tmp_path / "results"
    started = time.monotonic()
    proc = start_tfparity(
        "run",
        "--backend",
        "docker",
        "--model",
        "baseline",
        *QUICK,
        "--results-dir",
        str(results),
        log_dir=tmp_path,
        env={"DOCKER_HOST": silent_engine, "TFPARITY_DOCKER_TIMEOUT_S": "3"},
    )
    try:
        returncode = proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the docker CLI child too (same group)
        proc.wait()
        pytest.fail("tfparity run still waited on the silent engine after 90 s")
    elapsed_s = time.monotonic() - started
    err = stderr_of(tmp_path)
    lines = [line for line in err.splitlines() if line.strip()]
    assert returncode == 2 and len(lines) == 1 and lines[0].startswith("tfparity: error:"), err[-2000:]
    assert f"Docker engine at {silent_engine} did not answer within 3 s; is dockerd healthy?" in lines[0], lines[0]
    assert "TFPARITY_DOCKER_TIMEOUT_S" in lines[0]  # how to allow a slow engine more time
    assert 3 <= elapsed_s < 60, elapsed_s
    assert_no_suite_dir(results)
    assert processes_using(silent_engine) == [], "a docker CLI was left waiting on the socket"


@pytest.mark.parametrize("value", ["soon", "0", "-5", "nan", "inf"])
def test_a_bad_engine_timeout_is_quoted_in_one_line(tmp_path: Path, value: str) -> None:
    results = tmp_path / "results"
    proc = tfparity(
        "run",
        "--backend",
        "docker",
        "--model",
        "baseline",
        *QUICK,
        "--results-dir",
        str(results),
        env={"TFPARITY_DOCKER_TIMEOUT_S": value},
    )
    assert_one_line_error(proc, "TFPARITY_DOCKER_TIMEOUT_S", repr(value))
    assert_no_suite_dir(results)


def test_compose_missing_is_one_line_and_writes_nothing(engine: None, tmp_path: Path) -> None:
    # A docker config directory without the compose plugin (what a host without it has).
    empty_config = tmp_path / "docker-config"
    empty_config.mkdir()
    env = {"DOCKER_CONFIG": str(empty_config)}
    if docker("compose", "version", env=env).returncode == 0:
        # Installed system-wide: hide it behind a docker CLI that lacks exactly that plugin (the
        # message is the real CLI's for an unknown command).
        real = shutil.which("docker")
        wrapper_dir = tmp_path / "bin"
        wrapper_dir.mkdir()
        (wrapper_dir / "docker").write_text(
            '#!/bin/sh\nfor a in "$@"; do [ "$a" = compose ] && '
            "{ echo \"docker: 'compose' is not a docker command.\" >&2; echo \"See 'docker --help'\" >&2; exit 1; }; "
            f'done\nexec {real} "$@"\n'
        )
        (wrapper_dir / "docker").chmod(0o755)
        env["PATH"] = f"{wrapper_dir}{os.pathsep}{os.environ['PATH']}"
        assert docker("compose", "version", env=env).returncode != 0
    results = tmp_path / "results"
    proc = tfparity("run", "--backend", "docker", "--model", "baseline", *QUICK, "--results-dir", str(results), env=env)
    assert_one_line_error(proc, "compose")
    assert not results.exists() or list(results.iterdir()) == []


def test_missing_image_that_cannot_be_built_is_one_line(engine: None, data_dir: Path) -> None:
    tag = f"tfparity-faults-missing:{os.getpid()}"
    backend = get_backend(
        "docker", device="cpu", data_dir=data_dir, image=tag, base_image="tfparity-faults-no-such-base:0"
    )
    with pytest.raises(BackendError) as info:
        backend.prepare([RunSpec(epochs=1)])
    assert "\n" not in str(info.value) and "tfparity-faults-no-such-base:0" in str(info.value)
    assert docker("image", "inspect", tag).returncode != 0  # nothing half-built under that tag


# --- the machinery failing under a suite: not the benchmark's failure ------------------------------

# Stands in for the worker on the second engine (its image has no TensorFlow): reports an epoch, waits
# until the test releases its run (a file in the data mount), then copies the result the test prepared.
STAND_IN = """
import os, shutil, sys, time
result = sys.argv[2]
run_id = os.path.basename(result)[: -len(".json")]
print('TFPARITY_PROGRESS {"epoch": 1, "epochs": 2, "elapsed_s": 0.1}', flush=True)
while not os.path.exists(f"/data/release-{run_id}"):
    time.sleep(0.1)
shutil.copy(f"/data/templates/{run_id}.json", result + ".part")
os.rename(result + ".part", result)
"""


def stand_in_image(second: Any, tmp_path: Path) -> str:
    """The stand-in on the base image, labelled as current (the backend takes it as the worker image)."""
    from harness.orchestrate.backends.docker.image import source_hash
    from harness.orchestrate.backends.docker.settings import LOCAL_BASE_IMAGE

    ctx = tmp_path / "stand-in"
    ctx.mkdir()
    (ctx / "stand_in.py").write_text(STAND_IN)
    (ctx / "Dockerfile").write_text(
        f"FROM {LOCAL_BASE_IMAGE}\nCOPY stand_in.py /stand_in.py\n"
        f"LABEL org.tfparity.base-image={LOCAL_BASE_IMAGE} org.tfparity.source-hash={source_hash(LOCAL_BASE_IMAGE)}\n"
        'ENTRYPOINT ["python3", "/stand_in.py"]\n'
    )
    tag = "tfparity-test-stand-in:1"
    made = subprocess.run(
        ["docker", "-H", second.host, "build", "-q", "-t", tag, str(ctx)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return tag


@pytest.mark.slow
@pytest.mark.parametrize("how", ["stopped", "crashed"])
def test_the_engine_going_away_mid_run_stops_the_suite_and_the_next_start_cleans_up(
    second_engine: Any, factories: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    from harness.store.layout import ATTEMPTS_DIR

    tag = stand_in_image(second_engine, tmp_path)
    templates = [factories.result("baseline", seed=s, epochs=1, backend="docker") for s in range(3)]
    specs = [t.run_spec for t in templates]
    first, second, third = (s.run_id for s in specs)
    data_dir = tmp_path / "data"
    (data_dir / "templates").mkdir(parents=True)
    for template in templates:
        write_result(template, data_dir / "templates" / f"{template.run_id}.json")
    (data_dir / f"release-{first}").touch()
    for path in (data_dir, *data_dir.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    out = tmp_path / "suite"
    engine = {"DOCKER_HOST": second_engine.host}
    options = {"image": tag, "base_image": "tfparity-base:bookworm"}
    logs = tmp_path / "first"
    logs.mkdir()
    proc = start_backend_child(specs, data_dir, out, logs, env=engine, **options)
    try:
        wait_for(lambda: f"PROGRESS {second} 1" in stdout_of(logs), 600, "run 2 under way", proc)
        second_engine.stop(signal.SIGTERM if how == "stopped" else signal.SIGKILL)
        returncode = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    said = stdout_of(logs)
    # One line naming the cause and the resume command; the run it hit is interrupted, not failed.
    assert returncode == 3, (said, stderr_of(logs)[-3000:])
    (line,) = [ln for ln in said.splitlines() if ln.startswith("STOPPED")]
    assert line == (
        f"STOPPED the Docker engine at {second_engine.host} stopped answering during run {second}; "
        f"start the engine, then resume with: tfparity run --resume {out}"
    )
    assert stderr_of(logs).strip() == ""  # nothing else: no traceback, no warning about the cleanup
    now = assert_suite_dir_consistent(out)
    assert {k: r.status for k, r in now.items()} == {first: "ok", second: "interrupted"}
    assert now[second].error == f"the Docker engine at {second_engine.host} stopped answering"
    assert not (out / "specs" / f"{third}.json").exists()  # the suite stopped at once
    first_bytes = (out / f"{first}.json").read_bytes()

    # The engine is back: its container of run 2 is still there (stopped by the engine, or killed
    # when the engine restarted). The next start on this engine removes it: its harness is gone.
    second_engine.start()
    left = second_engine.docker("ps", "-aq", "--filter", f"label=org.tfparity.run-id={second}").stdout.split()
    assert len(left) == 1, left
    for release in (second, third):
        (data_dir / f"release-{release}").touch()
    logs = tmp_path / "resume"
    logs.mkdir()
    resumed = start_backend_child(specs, data_dir, out, logs, env=engine, **options)
    try:
        assert resumed.wait(timeout=600) == 0, stderr_of(logs)[-3000:]
    finally:
        if resumed.poll() is None:
            os.killpg(resumed.pid, signal.SIGKILL)
            resumed.wait()
    assert "FINISHED" in stdout_of(logs)
    assert f"removing container tfparity-{second.lower()[:30]}" in stderr_of(logs)
    final = assert_suite_dir_consistent(out)
    assert {k: r.status for k, r in final.items()} == {first: "ok", second: "ok", third: "ok"}
    assert (out / f"{first}.json").read_bytes() == first_bytes  # never rewritten
    (archived,) = (out / ATTEMPTS_DIR).iterdir()  # the interrupted attempt is kept
    assert load_result(archived).status == "interrupted"
    assert second_engine.docker("ps", "-aq").stdout.split() == []  # nothing left on that engine
    monkeypatch.setenv("DOCKER_HOST", second_engine.host)
    assert sweep_stale_containers() == []


@pytest.mark.slow
def test_an_image_deleted_between_runs_stops_the_suite_and_the_resume_rebuilds_it(
    cpu_backend: Any, data_dir: Path, tmp_path: Path
) -> None:
    # A copy of the CPU image (its own id) that this test may delete; its labels say it is current.
    tag = f"tfparity-test-deleted:{os.getpid()}"
    made = subprocess.run(
        ["docker", "build", "-q", "-t", tag, "-"],
        input=f"FROM {cpu_backend.environment()['image_id']}\nLABEL org.tfparity.test=deleted-image\n",
        capture_output=True, text=True, timeout=600, env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    specs = [RunSpec(epochs=1, max_train_samples=640, benchmark="baseline", seed=s) for s in (7111, 7112, 7113)]
    out = tmp_path / "suite"
    try:
        backend = get_backend("docker", device="cpu", data_dir=data_dir, image=tag)
        backend.prepare(specs)
        image_id = backend.environment()["image_id"]
        assert backend.run(specs[0], out).ok
        assert docker("rmi", "-f", image_id).returncode == 0  # e.g. `docker image prune -a` next door
        with pytest.raises(SuiteStoppedError) as info:
            run_specs(specs, backend, out)
        message = str(info.value)
        assert "\n" not in message and f"image {tag} ({image_id[:19]}) is no longer in the engine" in message
        assert f"during run {specs[1].run_id}; resume with: tfparity run --resume {out}" in message
        now = assert_suite_dir_consistent(out)
        assert {k: r.status for k, r in now.items()} == {specs[0].run_id: "ok", specs[1].run_id: "interrupted"}
        # The resume (a new harness) finds the image missing, builds it again and runs what is left.
        again = get_backend("docker", device="cpu", data_dir=data_dir, image=tag)
        again.prepare(specs)
        assert [r.status for r in run_specs(specs, again, out)] == ["ok", "ok", "ok"]
    finally:
        docker("image", "rm", "-f", tag)
        remove_containers_of(*(s.run_id for s in specs))
    assert_nothing_left(tmp_path, [s.run_id for s in specs])


@pytest.mark.slow
def test_a_container_removed_from_outside_stops_the_suite_in_one_line_and_resume_runs_it(
    cpu_backend: Any, data_dir: Path, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    seed = 7114
    first = RunSpec(benchmark="batchnorm", epochs=2000, max_train_samples=640, seed=seed, suite="run").run_id
    args = ("--model", "batchnorm", "--epochs", "2000", "--max-train-samples", "640", "--data-dir", str(data_dir))
    proc = start_tfparity(
        "run", "--backend", "docker", *args, "--seed", str(seed), "--results-dir", str(results), log_dir=tmp_path
    )
    try:
        wait_for(lambda: f"{first}: epoch 1/2000" in stderr_of(tmp_path), 900, "the first epoch", proc)
        assert docker("rm", "-f", *containers_of_run(first)).returncode == 0  # e.g. a `docker rm -f` by hand
        returncode = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        remove_containers_of(first)
    err = stderr_of(tmp_path)
    ours = [line for line in err.splitlines() if line.startswith("tfparity:") and "error" in line]
    assert returncode == 3 and len(ours) == 1 and "Traceback" not in err, err[-3000:]
    suite_dir = next(results.glob("run-*"))
    assert ours[0].startswith("tfparity: error: its container ") and f"during run {first}" in ours[0], ours[0]
    assert ours[0].endswith(f"resume with: tfparity run --resume {suite_dir}")
    (result,) = assert_suite_dir_consistent(suite_dir).values()
    assert result.run_id == first and result.status == "interrupted", result.error
    assert_nothing_left(tmp_path, [first])
    # The resume runs it again (bounded here by its own --timeout, which is the benchmark's failure).
    resumed = tfparity("run", "--resume", str(suite_dir), "--timeout", "5", timeout=900)
    assert resumed.returncode == 1, resumed.stderr[-3000:]  # ran again; its own timeout is a failure
    final = assert_suite_dir_consistent(suite_dir)
    assert final[first].status == "failed" and final[first].error.startswith("timed out after 5 s")
    assert_nothing_left(tmp_path, [first])
