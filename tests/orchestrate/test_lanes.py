"""Runs over several lanes: the plan (CPU sets, hosts dealt in turn) and ``tfparity run --parallel``
against the real engine: each run pinned to its own CPU set (read back from the worker's affinity),
runs really overlapping, and Ctrl-C stopping every lane's container."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from harness.errors import BackendError
from harness.orchestrate.lanes import cpu_sets, plan_hosts
from harness.store.results import load_result
from tests.orchestrate.support import (
    QUICK,
    assert_suite_dir_consistent,
    containers_of_run,
    only_suite_dir,
    remove_containers_of,
    start_tfparity,
    stderr_of,
    wait_for,
)


@pytest.mark.parametrize(
    ("cpus", "n", "expected"),
    [
        ([0, 1], 2, ["0", "1"]),
        ([0, 1], 1, ["0,1"]),
        ([3, 1, 2, 0], 2, ["0,1", "2,3"]),
        ([0, 1, 2, 3, 4], 2, ["0,1,2", "3,4"]),
        ([4, 6, 7], 3, ["4", "6", "7"]),
    ],
)
def test_cpu_sets_are_disjoint_and_cover_the_cpus(cpus: list[int], n: int, expected: list[str]) -> None:
    sets = cpu_sets(cpus, n)
    assert sets == expected
    members = [int(c) for s in sets for c in s.split(",")]
    assert sorted(members) == sorted(cpus) and len(set(members)) == len(members)


@pytest.mark.parametrize("n", [0, 3])
def test_more_lanes_than_cpus_is_refused_in_one_line(n: int) -> None:
    with pytest.raises(BackendError, match=f"--parallel {n} needs {n} CPUs to pin one run to each, this host has 2"):
        cpu_sets([0, 1], n)


@pytest.mark.parametrize(
    ("n_specs", "n_hosts", "expected"),
    [
        (5, 2, [[0, 2, 4], [1, 3]]),
        (2, 3, [[0], [1], []]),
        (0, 2, [[], []]),
        (4, 1, [[0, 1, 2, 3]]),
    ],
)
def test_runs_are_dealt_to_hosts_in_turn(n_specs: int, n_hosts: int, expected: list[list[int]]) -> None:
    plan = plan_hosts(n_specs, n_hosts)
    assert plan == expected
    assert sorted(i for host in plan for i in host) == list(range(n_specs))  # each run once


def test_a_plan_without_hosts_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one host"):
        plan_hosts(3, 0)


def _run_ids(suite: Path) -> list[str]:
    return sorted(p.stem for p in (suite / "specs").glob("*.json"))


@pytest.mark.docker
@pytest.mark.slow
def test_parallel_runs_overlap_each_pinned_to_its_own_cpu_set(cpu_backend: Any, data_dir: Path, tmp_path: Path) -> None:
    expected = cpu_sets(sorted(os.sched_getaffinity(0)), 2)
    results_dir = tmp_path / "results"
    args = ("run", "--backend", "docker", "--model", "baseline", "--seeds", "2", *QUICK, "--parallel", "2")
    proc = start_tfparity(*args, "--results-dir", str(results_dir), "--data-dir", str(data_dir), log_dir=tmp_path)
    try:
        assert proc.wait(timeout=1800) == 0, stderr_of(tmp_path)[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    results = assert_suite_dir_consistent(only_suite_dir(results_dir))
    assert len(results) == 2 and all(r.status == "ok" for r in results.values())
    # The worker's own affinity mask (read in the container): one CPU set each, never the same one.
    seen = sorted(",".join(map(str, r.environment["cpu_affinity"])) for r in results.values())
    assert seen == sorted(expected)
    # Both ran at once: each started before the other finished.
    a, b = results.values()
    assert a.started_utc < b.finished_utc and b.started_utc < a.finished_utc, (a.started_utc, b.started_utc)


@pytest.mark.docker
@pytest.mark.slow
def test_ctrl_c_stops_every_lane_and_leaves_no_container(cpu_backend: Any, data_dir: Path, tmp_path: Path) -> None:
    results_dir = tmp_path / "results"
    # Runs far longer than the test: the signal always lands while both train.
    args = ("run", "--backend", "docker", "--model", "baseline", "--seeds", "2", "--epochs", "2000")
    proc = start_tfparity(
        *args, "--max-train-samples", "640", "--parallel", "2", "--results-dir", str(results_dir),
        "--data-dir", str(data_dir), log_dir=tmp_path,
    )  # fmt: skip
    run_ids: list[str] = []
    try:
        suite = wait_for(lambda: next(iter(results_dir.glob("run-*")), None), 900, "the suite directory", proc)
        wait_for(lambda: len(_run_ids(suite)) == 2, 900, "both specs written", proc)
        run_ids = _run_ids(suite)
        for run_id in run_ids:  # the event: each lane's worker reported an epoch
            wait_for(lambda r=run_id: f"{r}: epoch 1/2000" in stderr_of(tmp_path), 900, f"{run_id} epoch 1", proc)
        proc.send_signal(signal.SIGINT)
        returncode = proc.wait(timeout=300)
        left = {run_id: containers_of_run(run_id) for run_id in run_ids}  # before the test's own cleanup
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        remove_containers_of(*run_ids)
    assert returncode == 128 + signal.SIGINT, stderr_of(tmp_path)[-3000:]
    assert "interrupted by SIGINT" in stderr_of(tmp_path) and "Traceback" not in stderr_of(tmp_path)
    for run_id in run_ids:
        result = load_result(suite / f"{run_id}.json")
        assert result.status == "interrupted" and "SIGINT" in (result.error or ""), result.error
    assert left == {run_id: [] for run_id in run_ids}  # the harness removed every lane's container
