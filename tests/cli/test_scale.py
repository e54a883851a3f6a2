"""The lanes ``--parallel`` plans on one host: one GPU per lane, or one CPU set per lane, never shared."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from harness.cli import scale
from harness.errors import BackendError, ConfigError
from harness.orchestrate.backends.docker import DockerBackend


def lanes(backend: DockerBackend, n: int) -> list[DockerBackend]:
    (host,) = scale.hosts(argparse.Namespace(parallel=n), backend)
    return host.lanes  # type: ignore[no-any-return]


def test_gpu_lanes_get_one_gpu_each(tmp_path: Path) -> None:
    backend = DockerBackend(device="gpu", gpus="0,1,2", data_dir=tmp_path)
    assert [lane.gpu_ids for lane in lanes(backend, 2)] == [("0",), ("1",)]
    assert [lane.cpuset for lane in lanes(backend, 2)] == [None, None]
    assert backend.gpu_ids == ("0", "1", "2")  # the original is left as it was


def test_more_gpu_lanes_than_gpus_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--parallel 4 on --device gpu needs --gpus naming 4 GPUs.*got '0,1,2'"):
        lanes(DockerBackend(device="gpu", gpus="0,1,2", data_dir=tmp_path), 4)


def test_cpu_lanes_get_disjoint_cpu_sets(tmp_path: Path) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    got = [lane.cpuset for lane in lanes(DockerBackend(device="cpu", data_dir=tmp_path), len(cpus))]
    assert got == [str(c) for c in cpus]
    with pytest.raises(BackendError, match=f"needs {len(cpus) + 1} CPUs"):
        lanes(DockerBackend(device="cpu", data_dir=tmp_path), len(cpus) + 1)
