"""A fleet of Docker hosts: the hosts file validated at the edge, and suites over a real second engine
reached through a Docker context (its own socket and data root, no bridge): the image shipped by id,
data and results through named volumes and ``docker cp``, each result naming its host and context,
an engine stopped mid-suite failing only its own runs, and the plain resume running them again on the
fleet (the manifest records it)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.orchestrate.backends.docker.fleet import HostEntry, hosts_from_contexts, load_hosts
from harness.store.results import load_result
from tests.helpers import docker, tfparity
from tests.orchestrate.support import (
    QUICK,
    assert_no_suite_dir,
    assert_one_line_error,
    assert_suite_dir_consistent,
    containers_of_run,
    only_suite_dir,
    remove_containers_of,
    start_tfparity,
    stderr_of,
    wait_for,
)


def write_hosts(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hosts.toml"
    path.write_text(text)
    return path


def test_hosts_file_names_contexts_gpus_and_labels(tmp_path: Path) -> None:
    path = write_hosts(
        tmp_path,
        '[[host]]\ncontext = "gpu-a"\ngpus = ["0", "1"]\nlabels = { rack = "r1" }\n\n'
        '[[host]]\nname = "spare"\ncontext = "ctx-b"\n',
    )
    assert load_hosts(path) == [
        HostEntry(name="gpu-a", context="gpu-a", gpus=("0", "1"), labels={"rack": "r1"}),
        HostEntry(name="spare", context="ctx-b"),
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[[host]\n", "is not valid TOML"),
        ("", "names no hosts"),
        ('title = "x"\n', "unknown top-level key(s) ['title']"),
        ('[[host]]\nname = "a"\n', "'context' is required"),
        ('[[host]]\ncontext = "a b"\n', "got 'a b'"),
        ('[[host]]\ncontext = "a"\ngpus = [0]\n', "got [0]"),
        ('[[host]]\ncontext = "a"\ngpus = ["0", "0"]\n', "lists a device twice"),
        ('[[host]]\ncontext = "a"\nport = 1\n', "unknown key(s) ['port']"),
        ('[[host]]\ncontext = "a"\nname = "x"\n[[host]]\ncontext = "b"\nname = "x"\n', "name 'x' appears twice"),
        ('[[host]]\ncontext = "a"\nname = "x"\n[[host]]\ncontext = "a"\nname = "y"\n', "context 'a' appears twice"),
    ],
)
def test_a_bad_hosts_file_is_refused_quoting_the_value(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_hosts(write_hosts(tmp_path, text))
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_contexts_on_the_command_line_are_hosts_named_after_them() -> None:
    assert hosts_from_contexts(["a", "b"]) == [HostEntry("a", "a"), HostEntry("b", "b")]
    with pytest.raises(ConfigError, match="context 'a' appears twice"):
        hosts_from_contexts(["a", "a"])


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (("--docker-context", "x"), "add --backend docker"),
        (("--backend", "docker", "--hosts", "/nonexistent/hosts.toml"), "cannot read hosts file"),
        (("--backend", "docker", "--docker-context", "x", "--hosts", "h.toml"), "not both"),
        (("--backend", "docker", "--parallel", "2", "--docker-context", "x"), "--parallel is for one host"),
        (("--backend", "docker", "--docker-context", "bad name"), "got 'bad name'"),
        (("--backend", "docker", "--parallel", "64"), "--parallel 64 needs 64 CPUs to pin one run to each"),
    ],
)
def test_fleet_flags_are_checked_before_anything_is_written(
    tmp_path: Path, tf_trap: dict[str, str], flags: tuple[str, ...], fragment: str
) -> None:
    results = tmp_path / "results"
    proc = tfparity("run", "--model", "baseline", *flags, "--results-dir", str(results), env=tf_trap)
    assert_one_line_error(proc, fragment)
    assert_no_suite_dir(results)


def _fleet_results(results_dir: Path) -> dict[str, Any]:
    return assert_suite_dir_consistent(only_suite_dir(results_dir))


@pytest.mark.docker
@pytest.mark.slow
def test_a_two_host_suite_runs_on_both_engines_and_records_where(
    cpu_backend: Any, fleet_engine: tuple[Any, str], data_dir: Path, tmp_path: Path
) -> None:
    second, context = fleet_engine
    hosts = write_hosts(tmp_path, f'[[host]]\nname = "here"\ncontext = "default"\n\n[[host]]\ncontext = "{context}"\n')
    results_dir = tmp_path / "results"
    args = ("run", "--backend", "docker", "--model", "baseline", "--seeds", "2", *QUICK, "--hosts", str(hosts))
    proc = start_tfparity(*args, "--results-dir", str(results_dir), "--data-dir", str(data_dir), log_dir=tmp_path)
    try:
        assert proc.wait(timeout=3600) == 0, stderr_of(tmp_path)[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    results = _fleet_results(results_dir)
    assert sorted(r.status for r in results.values()) == ["ok", "ok"]
    where = sorted((r.environment["fleet_host"], r.environment["docker_context"]) for r in results.values())
    assert where == [("here", "default"), (context, context)]
    # Both ran one image, by id (the tag may move meanwhile: other checkouts rebuild it), and that id
    # is on the second engine: shipped there, not rebuilt (a rebuild there would have another id).
    (image_id,) = {r.environment["image_id"] for r in results.values()}
    assert second.docker("image", "inspect", "--format", "{{.Id}}", image_id).stdout.strip() == image_id
    assert second.docker("ps", "-aq").stdout.split() == []  # nothing left there
    left = second.docker("volume", "ls", "-q", "--filter", "label=org.tfparity.volume=results").stdout.split()
    assert left == []  # each run's results volume removed; the data volume stays for the next suite
    for r in results.values():  # a result copied back is the worker's own, complete
        assert r.environment["tensorflow_version"] and r.epochs and r.test_accuracy is not None


@pytest.mark.docker
@pytest.mark.slow
def test_fleet_check_runs_the_same_probe_and_run_on_both_hosts_and_finds_them_agreeing(
    cpu_backend: Any, fleet_engine: tuple[Any, str], data_dir: Path, tmp_path: Path
) -> None:
    _, context = fleet_engine
    results_dir = tmp_path / "results"
    proc = tfparity(
        "fleet", "check", "--docker-context", "default", "--docker-context", context,
        "--results-dir", str(results_dir), "--data-dir", str(data_dir), timeout=3600,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout, proc.stderr[-3000:])
    assert "fleet check: OK: 2 hosts agree" in proc.stdout
    check_dir = only_suite_dir(results_dir)
    for host in ("default", context):  # each host's own results, the same two runs
        runs = assert_suite_dir_consistent(check_dir / host)
        assert sorted(r.spec["mode"] for r in runs.values()) == ["probe", "train"]
        assert {r.environment["docker_context"] for r in runs.values()} == {host}
        (probe,) = [r for r in runs.values() if r.spec["mode"] == "probe"]
        assert probe.extra["probe"]["loss_float64"] > 0
    for line in proc.stdout.splitlines():
        if line.startswith(("OK", "FAIL", "INCONCLUSIVE")):
            assert line.startswith("OK "), line


@pytest.mark.docker
@pytest.mark.slow
def test_an_engine_stopped_mid_suite_fails_its_runs_the_other_host_s_are_kept_and_a_plain_resume_reruns_them(
    cpu_backend: Any, fleet_engine: tuple[Any, str], data_dir: Path, tmp_path: Path
) -> None:
    # Last in this module: it stops the module's second engine (and starts it again for the purge).
    second, context = fleet_engine
    results_dir = tmp_path / "results"
    args = ("run", "--backend", "docker", "--model", "baseline", "--seeds", "4", "--epochs", "20")
    proc = start_tfparity(
        *args, "--max-train-samples", "640", "--docker-context", "default", "--docker-context", context,
        "--results-dir", str(results_dir), "--data-dir", str(data_dir), log_dir=tmp_path,
    )  # fmt: skip
    try:
        suite = wait_for(lambda: next(iter(results_dir.glob("run-*")), None), 900, "the suite directory", proc)
        # Runs are dealt in turn: the 2nd and 4th go to the second engine. The event: the 2nd trains there.
        second_run = wait_for(
            lambda: next((ln.split()[1][:-1] for ln in stderr_of(tmp_path).splitlines()
                          if ln.startswith("[2/4]") and ": epoch 1/20" in ln), None),
            1800, "run 2 training on the second engine", proc,
        )  # fmt: skip
        second.stop(signal.SIGTERM)
        returncode = proc.wait(timeout=1800)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        second.start()  # for the fixture's purge
    assert returncode == 1, stderr_of(tmp_path)[-3000:]  # runs failed; the suite itself went on
    assert "Traceback" not in stderr_of(tmp_path)
    results = assert_suite_dir_consistent(suite)
    by_host: dict[str, list[Any]] = {}
    for r in results.values():
        by_host.setdefault(r.environment["fleet_host"], []).append(r)
    assert sorted(r.status for r in by_host["default"]) == ["ok", "ok"]  # kept, complete
    assert sorted(r.status for r in by_host[context]) == ["failed", "failed"]
    cause = f"the Docker engine at context {context!r} stopped answering"
    assert results[second_run].error == cause  # the run it hit (its environment names the host)
    (never,) = [r for r in by_host[context] if r.run_id != second_run]
    assert never.error == f"host {context} lost: {cause}"  # never started there, nor anywhere else
    assert never.environment["docker_context"] == context
    # The engine is back. The resume command as the harness prints it, without the fleet flags (the
    # manifest recorded the fleet), runs the failed runs again on the host each was dealt to; without
    # the record they would run on this host's engine alone (fleet_host "").
    resumed = tfparity("run", "--resume", str(suite), "--retry-failed", timeout=1800)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = assert_suite_dir_consistent(suite)
    assert all(r.ok for r in final.values())
    assert [final[r.run_id].environment["fleet_host"] for r in by_host[context]] == [context, context]
    assert all(final[r.run_id] == r for r in by_host["default"])  # the kept ones were not run again


@pytest.mark.docker
@pytest.mark.slow
def test_an_unreachable_host_fails_its_runs_with_the_reason_and_the_other_host_s_are_kept(
    cpu_backend: Any, data_dir: Path, tmp_path: Path
) -> None:
    dead = f"tfparity-test-dead-{os.getpid()}"
    made = docker("context", "create", dead, "--docker", f"host=unix://{tmp_path}/no-engine.sock")
    assert made.returncode == 0, made.stderr
    results_dir = tmp_path / "results"
    try:
        proc = tfparity(
            "run", "--backend", "docker", "--model", "baseline", "--seeds", "2", *QUICK,
            "--docker-context", "default", "--docker-context", dead,
            "--results-dir", str(results_dir), "--data-dir", str(data_dir), timeout=1800,
        )  # fmt: skip
    finally:
        docker("context", "rm", "-f", dead)
    assert proc.returncode == 1, proc.stderr[-3000:]  # runs failed; the suite went on
    results = assert_suite_dir_consistent(only_suite_dir(results_dir))
    by_host = {r.environment["fleet_host"]: r for r in results.values()}
    assert by_host["default"].status == "ok"
    failed = by_host[dead]
    assert failed.status == "failed" and failed.environment["docker_context"] == dead
    assert failed.error is not None and failed.error.startswith(f"host {dead} is not usable: ")
    assert f"Docker engine not reachable at context {dead!r}" in failed.error


@pytest.mark.docker
@pytest.mark.slow
def test_ctrl_c_under_a_fleet_suite_stops_the_remote_container_and_removes_its_volume(
    cpu_backend: Any, data_dir: Path, tmp_path: Path
) -> None:
    # The local engine through its context is a fleet host like any other: volumes, docker cp.
    def results_volumes() -> set[str]:
        return set(docker("volume", "ls", "-q", "--filter", "label=org.tfparity.volume=results").stdout.split())

    before = results_volumes()
    results_dir = tmp_path / "results"
    proc = start_tfparity(
        "run", "--backend", "docker", "--model", "baseline", "--epochs", "2000", "--max-train-samples", "640",
        "--docker-context", "default", "--results-dir", str(results_dir), "--data-dir", str(data_dir),
        log_dir=tmp_path,
    )  # fmt: skip
    run_ids: list[str] = []
    try:
        suite = wait_for(lambda: next(iter(results_dir.glob("run-*")), None), 900, "the suite directory", proc)
        wait_for(lambda: list((suite / "specs").glob("*.json")), 900, "the spec", proc)
        run_ids = [p.stem for p in (suite / "specs").glob("*.json")]
        wait_for(lambda: ": epoch 1/2000" in stderr_of(tmp_path), 900, "the first epoch", proc)
        proc.send_signal(signal.SIGINT)
        returncode = proc.wait(timeout=300)
        left = {r: containers_of_run(r) for r in run_ids}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        remove_containers_of(*run_ids)
    assert returncode == 128 + signal.SIGINT, stderr_of(tmp_path)[-3000:]
    (run_id,) = run_ids
    result = load_result(suite / f"{run_id}.json")
    assert result.status == "interrupted" and result.environment["docker_context"] == "default"
    assert left == {run_id: []}
    assert results_volumes() - before == set()


@pytest.mark.docker
def test_results_volumes_of_a_gone_harness_are_swept_and_a_live_one_s_kept(engine: None) -> None:
    import dataclasses
    import subprocess

    from harness.orchestrate.backends.docker.owner import Owner
    from harness.orchestrate.backends.docker.placement import LABEL_VOLUME, sweep_results_volumes

    me = Owner.me()
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that was real and is gone
    dead = dataclasses.replace(me, pid=gone.pid)
    names = {"dead": f"tfparity-test-sweep-dead-{os.getpid()}", "live": f"tfparity-test-sweep-live-{os.getpid()}"}
    try:
        for who, owner in (("dead", dead), ("live", me)):
            labels = [f"--label={k}={v}" for k, v in {LABEL_VOLUME: "results", **owner.labels()}.items()]
            assert docker("volume", "create", *labels, names[who]).returncode == 0
        removed = sweep_results_volumes(me)
        assert names["dead"] in removed and names["live"] not in removed
        assert docker("volume", "inspect", names["dead"]).returncode != 0
        assert docker("volume", "inspect", names["live"]).returncode == 0
    finally:
        docker("volume", "rm", "-f", *names.values())
