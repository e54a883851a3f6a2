"""Fixtures of the orchestrate tests: a TensorFlow trap, a disk that runs full, an engine that never
answers, and a real Docker engine with the CPU image and a prepared data directory.

Docker fixtures skip locally when no engine runs; under CI=true a missing engine, compose plugin or
CPU image is a failure (:func:`tests.helpers.unavailable`). Images are never built per test: the
session's ``cpu_backend`` refreshes a stale image once (reusing the cached dependency layers).
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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
