"""Workers across containers with a real engine: a 2-worker run (two CPU containers sharing the chief's
loopback-only network namespace) completes and agrees with the 1-worker run per compare; a worker
killed from outside stops the suite as the machinery's failure (as the chief would), and the resume runs
it again; a harness killed with ``kill -9`` leaves containers the next
start sweeps; Ctrl-C stops every container. Nothing is left behind (no container with the run's labels,
no compose project). The group's decisions (names, the first failure as the cause) are tested without an engine.

Each test waits on events (progress lines, containers appearing), never on sleeps; every test removes
what a failure or timeout left. Locally these skip when no engine runs; under CI=true they must run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from harness.orchestrate.backends.base import Execution, LogTail
from harness.orchestrate.backends.docker.compose import sweep_stale_containers
from harness.orchestrate.backends.docker.workers import Container, Group, member_override
from harness.spec.run_spec import PathSpec, RunSpec
from harness.store.results import load_result
from tests.helpers import docker, tfparity
from tests.orchestrate.support import (
    assert_suite_dir_consistent,
    containers_of_run,
    only_suite_dir,
    remove_containers_of,
    start_tfparity,
    stderr_of,
    wait_for,
)

# Short real runs: 640 training samples (512 train / 128 validation), global batch 32, the compiled loop.
FLAGS = ("--model", "baseline", "--loop", "compiled", "--input", "numpy", "--max-train-samples", "640")
TIMEOUT_S = "900"  # per run: generous for a busy 2-core machine (two TF imports per run)


def spec(workers: int, epochs: int, seed: int) -> RunSpec:
    """The spec the CLI plans for FLAGS (so that the test knows the run ids)."""
    return RunSpec(
        benchmark="baseline", path=PathSpec(workers=workers), loop="compiled", input="numpy",
        max_train_samples=640, epochs=epochs, seed=seed, suite="run",
    )  # fmt: skip


def labelled(run_id: str, task: str) -> list[str]:
    out = docker(
        "ps", "-aq", "--filter", f"label=org.tfparity.run-id={run_id}", "--filter", f"label=org.tfparity.task={task}"
    )
    return out.stdout.split()


def inspect(container: str) -> dict[str, Any] | None:
    out = docker("inspect", container)
    return json.loads(out.stdout)[0] if out.returncode == 0 else None


def group(workers: int = 4) -> Group:
    run_spec = spec(workers, 1, 0)
    run = Execution(run_spec, Path("spec.json"), Path("result.json"), LogTail(run_spec.run_id, None))
    return Group.plan("tfparity-proj", run, "[docker x] ")


def ended(box: Container, code: int, at_s: int, oom: bool = False) -> None:
    finished = dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=at_s)
    box.state = {"running": False, "exit_code": code, "oom_killed": oom, "finished_at": finished}
    box.outcome = "exited"


def test_a_group_names_its_containers_and_gives_each_its_task() -> None:
    g = group(4)
    assert [(b.name, b.task.label, b.address) for b in g.members] == [
        ("tfparity-proj", "chief", "127.0.0.1:23456"),
        ("tfparity-proj-worker-1", "worker-1", "127.0.0.1:23457"),
        ("tfparity-proj-worker-2", "worker-2", "127.0.0.1:23458"),
        ("tfparity-proj-worker-3", "worker-3", "127.0.0.1:23459"),
    ]
    assert g.chief.tail is g.run.tail  # the chief's progress lines are the run's


def test_the_first_member_to_fail_is_the_cause_and_a_chief_that_failed_first_speaks_for_itself() -> None:
    g = group(4)
    assert g.first_failure() is None
    ended(g.members[2], 0, 5)  # a member that finished cleanly is no failure
    assert g.first_failure() is None
    ended(g.members[1], 134, 10)  # SIGABRT: the benchmark's own crash (a failed check in TF's C++)
    ended(g.chief, 1, 11)  # its collectives failed a second later: a consequence
    assert g.first_failure() is g.members[1]
    reason = g.member_failed(g.members[1])
    assert reason.startswith("worker-1 (task worker 0, container tfparity-proj-worker-1) exited with code 134 ")
    assert "(SIGABRT, not the out-of-memory killer)" in reason and reason.endswith("the other workers were stopped")
    g = group(2)
    ended(g.chief, 1, 10)
    ended(g.members[1], 1, 12)
    assert g.first_failure() is None  # the chief failed first: its own result says why
    g = group(2)
    ended(g.members[1], 137, 3, oom=True)
    assert "(killed by the out-of-memory killer)" in g.member_failed(g.members[1])


class Machinery(Exception):
    pass


@pytest.mark.parametrize(
    ("code", "oom", "says"),
    [
        (
            137,
            False,
            "its worker-1 container was stopped from outside (exit 137: SIGKILL without an out-of-memory record)",
        ),
        (143, False, "its worker-1 container was stopped from outside (exit 143: SIGTERM)"),
        (4, False, "its worker-1 worker stopped itself: "),
        (137, True, None),  # the out-of-memory killer: the benchmark's
        (1, False, None),  # the benchmark's own failure
        (134, False, None),  # SIGABRT comes from inside
    ],
)
def test_a_member_stopped_from_outside_is_judged_as_the_chief_would_be(code: int, oom: bool, says: str | None) -> None:
    """One rule for every member (:func:`not_the_benchmark`): a kill from outside is the machinery's."""
    g = group(2)
    ended(g.members[1], code, 3, oom=oom)
    if says is None:
        g._judge(g.members[1], Machinery)  # returns: member_failed names it as the run's failure
        return
    with pytest.raises(Machinery) as info:
        g._judge(g.members[1], Machinery)
    assert str(info.value).startswith(says), info.value


def test_the_member_override_joins_the_chiefs_network_namespace(tmp_path: Path) -> None:
    path = member_override(tmp_path, "bench-cpu", "tfparity-proj")
    assert path.read_text() == 'services:\n  bench-cpu:\n    network_mode: "container:tfparity-proj"\n'


@pytest.mark.docker
@pytest.mark.slow
def test_two_workers_complete_in_one_namespace_and_agree_with_one_worker(
    cpu_backend: Any, data_dir: Path, tmp_path: Path
) -> None:
    seed = 7301
    w1, w2 = spec(1, 2, seed), spec(2, 2, seed)
    results = tmp_path / "results"
    proc = start_tfparity(
        "run", "--backend", "docker", *FLAGS, "--epochs", "2", "--seed", str(seed), "--workers", "1",
        "--workers", "2", "--timeout", TIMEOUT_S, "--data-dir", str(data_dir), "--results-dir", str(results),
        log_dir=tmp_path,
    )  # fmt: skip
    try:
        # While the 2-worker run trains: the chief keeps network_mode none, the worker joins its namespace.
        chief_id = wait_for(lambda: labelled(w2.run_id, "chief"), 1200, "the chief container", proc)[0]
        worker_id = wait_for(lambda: labelled(w2.run_id, "worker-1"), 300, "the worker container", proc)[0]
        chief, worker = inspect(chief_id), inspect(worker_id)
        assert chief is not None and worker is not None, "the containers ended before they could be inspected"
        assert chief["HostConfig"]["NetworkMode"] == "none"
        assert worker["HostConfig"]["NetworkMode"] == f"container:{chief['Id']}"
        tf_config = next(e for e in worker["Config"]["Env"] if e.startswith("TF_CONFIG="))
        assert json.loads(tf_config.removeprefix("TF_CONFIG="))["task"] == {"type": "worker", "index": 0}
        assert proc.wait(timeout=1800) == 0, stderr_of(tmp_path)[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        remove_containers_of(w1.run_id, w2.run_id)
    suite_dir = only_suite_dir(results)
    found = assert_suite_dir_consistent(suite_dir)
    assert sorted(found) == sorted([w1.run_id, w2.run_id]) and all(r.ok for r in found.values())
    result = found[w2.run_id]
    ev = result.evidence
    assert ev is not None and ev.distribute_strategy == "CollectiveAllReduceStrategy"
    assert (ev.num_workers, ev.num_replicas_in_sync, ev.task_type, ev.task_index) == (2, 2, "chief", 0)
    assert ev.cluster == {"chief": ["127.0.0.1:23456"], "worker": ["127.0.0.1:23457"]}
    assert [(m.task, m.exit_code, m.outcome) for m in result.workers] == [
        ("chief", 0, "exited"),
        ("worker-1", 0, "exited"),
    ]
    assert result.workers[0].container_id == chief["Id"] and result.workers[1].container_id == worker["Id"]
    assert found[w1.run_id].workers == [] and found[w1.run_id].evidence.num_workers is None  # type: ignore[union-attr]
    compared = tfparity("compare", str(suite_dir), "--json")
    assert compared.returncode == 0, compared.stderr[-2000:]
    checks = json.loads(compared.stdout)["checks"]
    (replicas,) = [c for c in checks if c["name"] == "replicas"]
    assert replicas["verdict"] == "PASS", replicas
    assert replicas["subject"] == "baseline/mnist-5k: cpu-fp32-w2 vs cpu-fp32"
    assert not [c for c in checks if c["verdict"] == "FAIL"], checks
    assert containers_of_run(w1.run_id) == [] and containers_of_run(w2.run_id) == []


@pytest.mark.docker
@pytest.mark.slow
def test_a_worker_killed_from_outside_stops_the_suite_and_the_resume_runs_it_again(
    cpu_backend: Any, data_dir: Path, tmp_path: Path
) -> None:
    seed = 7302
    w2 = spec(2, 500, seed)
    results = tmp_path / "results"
    proc = start_tfparity(
        "run", "--backend", "docker", *FLAGS, "--epochs", "500", "--seed", str(seed), "--workers", "2",
        "--timeout", TIMEOUT_S, "--data-dir", str(data_dir), "--results-dir", str(results), log_dir=tmp_path,
    )  # fmt: skip
    try:
        wait_for(lambda: f"{w2.run_id}: epoch 1/500" in stderr_of(tmp_path), 1200, "the first epoch", proc)
        (worker,) = labelled(w2.run_id, "worker-1")
        assert docker("kill", worker).returncode == 0  # a `docker kill` by hand: not the benchmark's failure
        returncode = proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        remove_containers_of(w2.run_id)
    err = stderr_of(tmp_path)
    ours = [line for line in err.splitlines() if line.startswith("tfparity:") and "error" in line]
    assert returncode == 3 and len(ours) == 1 and "Traceback" not in err, err[-3000:]
    suite_dir = only_suite_dir(results)
    assert ours[0].startswith(
        "tfparity: error: its worker-1 container was stopped from outside (exit 137: SIGKILL without an out-of-memory "
        f"record) during run {w2.run_id}"
    ), ours[0]
    assert ours[0].endswith(f"resume with: tfparity run --resume {suite_dir}"), ours[0]
    result = assert_suite_dir_consistent(suite_dir)[w2.run_id]
    assert result.status == "interrupted" and result.error is not None and "worker-1" in result.error
    members = {m.task: m for m in result.workers}
    assert (members["worker-1"].exit_code, members["worker-1"].outcome) == (137, "exited")
    assert members["chief"].outcome in ("stopped by the harness", "exited"), members["chief"]
    assert containers_of_run(w2.run_id) == []
    assert load_result(suite_dir / f"{w2.run_id}.json") == result
    # The resume runs it again (bounded here by its own --timeout, which is the benchmark's failure).
    resumed = tfparity("run", "--resume", str(suite_dir), "--timeout", "5", timeout=900)
    assert resumed.returncode == 1, resumed.stderr[-3000:]
    final = assert_suite_dir_consistent(suite_dir)[w2.run_id]
    assert final.status == "failed" and final.error is not None and final.error.startswith("timed out after 5 s")
    assert containers_of_run(w2.run_id) == []


@pytest.mark.docker
@pytest.mark.slow
def test_kill_9_of_the_harness_leaves_worker_containers_the_next_start_sweeps(
    cpu_backend: Any, data_dir: Path, tmp_path: Path
) -> None:
    seed = 7303
    w2 = spec(2, 500, seed)
    proc = start_tfparity(
        "run", "--backend", "docker", *FLAGS, "--epochs", "500", "--seed", str(seed), "--workers", "2",
        "--data-dir", str(data_dir), "--results-dir", str(tmp_path / "results"), log_dir=tmp_path,
    )  # fmt: skip
    try:
        wait_for(lambda: f"{w2.run_id}: epoch 1/500" in stderr_of(tmp_path), 1200, "the first epoch", proc)
        os.kill(proc.pid, signal.SIGKILL)  # no handler runs: nobody stops the containers
        proc.wait(timeout=60)
        assert len(containers_of_run(w2.run_id)) == 2  # both left behind, still labelled with their owner
        swept = sweep_stale_containers()  # what the next start does
        assert sorted(n.endswith("-worker-1") for n in swept if w2.run_id.lower()[:30] in n) == [False, True], swept
        assert containers_of_run(w2.run_id) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        remove_containers_of(w2.run_id)


@pytest.mark.docker
@pytest.mark.slow
def test_ctrl_c_stops_every_worker_container_and_records_the_run_interrupted(
    cpu_backend: Any, data_dir: Path, tmp_path: Path
) -> None:
    seed = 7304
    w2 = spec(2, 500, seed)
    results = tmp_path / "results"
    proc = start_tfparity(
        "run", "--backend", "docker", *FLAGS, "--epochs", "500", "--seed", str(seed), "--workers", "2",
        "--data-dir", str(data_dir), "--results-dir", str(results), log_dir=tmp_path,
    )  # fmt: skip
    try:
        wait_for(lambda: f"{w2.run_id}: epoch 1/500" in stderr_of(tmp_path), 1200, "the first epoch", proc)
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C does
        assert proc.wait(timeout=300) == 130, stderr_of(tmp_path)[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        remove_containers_of(w2.run_id)
    result = assert_suite_dir_consistent(only_suite_dir(results))[w2.run_id]
    assert result.status == "interrupted" and result.error is not None and "SIGINT" in result.error
    assert [(m.task, m.outcome) for m in result.workers] == [
        ("chief", "stopped by the harness"),
        ("worker-1", "stopped by the harness"),
    ]
    assert containers_of_run(w2.run_id) == []
