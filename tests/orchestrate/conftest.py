"""Fixtures of the orchestrate tests: a TensorFlow trap, a disk that runs full, an engine that never
answers, a real Docker engine with the CPU image and a prepared data directory, and a second engine
of our own that can be stopped or crashed under a suite.

Docker fixtures skip locally when no engine runs; under CI=true a missing engine, compose plugin or
CPU image is a failure (:func:`tests.helpers.unavailable`). Images are never built per test: the
session's ``cpu_backend`` refreshes a stale image once (reusing the cached dependency layers).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.orchestrate.backends.docker.settings import LOCAL_BASE_IMAGE
from harness.spec.run_spec import RunSpec
from tests.helpers import ROOT, docker, unavailable

CPU_IMAGE = "tfparity:cpu"
ENGINE_ATTEMPTS = 3  # a busy engine (an image build next door) can be slow to answer


@pytest.fixture
def tf_trap(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment under which importing TensorFlow fails loudly (and leaves a marker file)."""
    trap = tmp_path / "tf_trap"
    (trap / "tensorflow").mkdir(parents=True)
    marker = tmp_path / "TENSORFLOW_WAS_IMPORTED"
    (trap / "tensorflow" / "__init__.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nraise ImportError('TensorFlow must not be imported here')\n"
    )
    yield {"PYTHONPATH": os.pathsep.join([str(trap), str(ROOT)])}
    assert not marker.exists(), "TensorFlow was imported for input that is rejected before any run"


@pytest.fixture
def tiny_tmpfs() -> Iterator[Path]:
    """A real 1 MiB tmpfs (root only): a file system that really runs full."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the injected-ENOSPC test covers the write path")
    mount_point = Path(tempfile.mkdtemp(prefix="tfparity-full-"))
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        mount_point.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
        mount_point.rmdir()


@pytest.fixture
def silent_engine(tmp_path: Path) -> Iterator[str]:
    """A Docker socket that accepts connections and never answers: the harness hangs in its engine check."""
    path = tmp_path / "silent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"unix://{path}"
    stop.set()
    thread.join(timeout=5)
    for conn in accepted:
        conn.close()
    server.close()


@pytest.fixture(scope="session")
def engine() -> None:
    """A running Docker engine with the compose v2 plugin."""
    up = False
    for attempt in range(ENGINE_ATTEMPTS):
        try:
            up = docker("info", timeout=30 * (attempt + 1)).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            up = False
        if up:
            break
    if not up:
        unavailable("no Docker engine is running")
    if docker("compose", "version").returncode != 0:
        unavailable("the docker compose v2 plugin is missing")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mnist-5k prepared for the containers (the container user must be able to read the mount)."""
    from harness import data

    path = tmp_path_factory.mktemp("docker-data")
    path.chmod(0o755)  # pytest makes 0700 directories
    data.prepare("mnist-5k", path)
    return path


@pytest.fixture(scope="session")
def cpu_backend(engine: None, data_dir: Path) -> Any:
    """A prepared CPU backend: image present (refreshed if the harness changed), mnist-5k prepared."""
    from harness.orchestrate.backends import get_backend

    if docker("image", "inspect", CPU_IMAGE).returncode != 0:
        unavailable(f"image {CPU_IMAGE} is missing (make image-cpu)")
    backend = get_backend("docker", device="cpu", data_dir=data_dir)
    backend.prepare([RunSpec(dataset="mnist-5k")])
    return backend


class SecondEngine:
    """A second Docker engine of its own (socket, data root, exec root, containerd), for the machinery
    failing under a suite: it can be stopped (SIGTERM, as `systemctl stop docker`) or crashed (SIGKILL)
    mid-run and started again, without touching the engine other work uses."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "run" / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.proc: subprocess.Popen[bytes] | None = None

    def docker(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return docker(*args, env={"DOCKER_HOST": self.host}, timeout=timeout)

    def start(self) -> None:
        self._end_orphaned_containerd()
        (self.root / "run").mkdir(parents=True, exist_ok=True)
        (self.root / "data").mkdir(exist_ok=True)
        config = self.root / "daemon.json"
        config.write_text("{}")
        with open(self.root / "dockerd.log", "ab") as log:
            self.proc = subprocess.Popen(
                ["dockerd", "--host", self.host, "--pidfile", str(self.root / "run" / "docker.pid"),
                 "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "x"),
                 "--config-file", str(config), "--bridge", "none", "--iptables=false", "--ip-masq=false"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 120
        while self.docker("info", "--format", "{{.ID}}", timeout=30).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.root / "dockerd.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"the second engine did not start: {tail}")
            time.sleep(0.2)  # poll interval while it starts, not a fixed wait

    def _end_orphaned_containerd(self) -> None:
        """A crashed dockerd leaves its containerd running, which a new dockerd cannot replace (as
        systemd's restart of the service would): end it first. Its shims and containers live on."""
        try:
            pid = int((self.root / "x" / "containerd" / "containerd.pid").read_text())
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + 60
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)  # poll interval until it is gone

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: a clean stop (containers stopped first); SIGKILL: a crash (containers keep running)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=120)
        self.proc = None

    def purge(self) -> None:
        """Stop it and leave nothing: containers still running under its shims, mounts, files."""
        self.stop()
        shim_socket = f"-address {self.root / 'x'}"
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if "containerd" in (text := cmdline.read_bytes().replace(b"\0", b" ").decode()) and shim_socket in text:
                    os.kill(int(cmdline.parent.name), signal.SIGKILL)
            except (OSError, ValueError):
                continue
        for init in (self.root / "x").glob("containerd/daemon/io.containerd.runtime.v2.task/moby/*/init.pid"):
            try:
                os.kill(int(init.read_text()), signal.SIGKILL)
            except (OSError, ValueError):
                continue
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(str(self.root))), reverse=True):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def second_engine(engine: None) -> Iterator[SecondEngine]:
    """A running second engine with the registry-free base image loaded (a few seconds)."""
    if os.geteuid() != 0:
        pytest.skip("a second Docker engine needs root")
    if not shutil.which("dockerd"):
        unavailable("dockerd is not on PATH (a second engine cannot be started)")
    if docker("image", "inspect", LOCAL_BASE_IMAGE).returncode != 0:
        unavailable(f"image {LOCAL_BASE_IMAGE} is missing (make base-image)")
    # Short: the containerd socket under it must fit a unix socket path (108 bytes).
    second = SecondEngine(Path(tempfile.mkdtemp(prefix="tfp2-", dir="/tmp")))
    try:
        second.start()
        saved = subprocess.Popen(["docker", "save", LOCAL_BASE_IMAGE], stdout=subprocess.PIPE)
        loaded = subprocess.run(
            ["docker", "-H", second.host, "load"], stdin=saved.stdout, capture_output=True, text=True, timeout=600
        )
        assert saved.wait(timeout=60) == 0 and loaded.returncode == 0, loaded.stderr
        yield second
    finally:
        second.purge()


@pytest.fixture(scope="module")
def fleet_engine(engine: None) -> Iterator[tuple[SecondEngine, str]]:
    """A second engine reached through a Docker context of its own: (the engine, the context name).
    Module-scoped: the image the harness ships there (2 GB, about a minute) serves every fleet test."""
    if os.geteuid() != 0:
        pytest.skip("a second Docker engine needs root")
    if not shutil.which("dockerd"):
        unavailable("dockerd is not on PATH (a second engine cannot be started)")
    second = SecondEngine(Path(tempfile.mkdtemp(prefix="tfpf-", dir="/tmp")))
    context = f"tfparity-test-fleet-{os.getpid()}"
    try:
        second.start()
        made = docker("context", "create", context, "--docker", f"host={second.host}")
        assert made.returncode == 0, made.stderr
        yield second, context
    finally:
        docker("context", "rm", "-f", context)
        second.purge()
