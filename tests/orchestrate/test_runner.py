"""The runner and the local backend's failure paths, with stand-in worker executables: real processes
and real files, no TensorFlow (fast). A stand-in takes the worker's place (``LocalBackend(python=...)``)
and receives the worker's argv: ``-m harness.worker SPEC RESULT ...`` ($3 is the spec, $4 the result).
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest

from harness.errors import SuiteStoppedError
from harness.orchestrate.backends.local import LocalBackend
from harness.orchestrate.runner import run_specs
from harness.spec.run_spec import RunSpec
from harness.store.layout import ATTEMPTS_DIR, SPECS_DIR
from harness.store.results import RunResult, load_result, write_result


def fake_worker(tmp_path: Path, script: str) -> str:
    """An executable that takes the worker's place (LocalBackend(python=...)); it gets the same argv."""
    path = tmp_path / "fake-python"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(path)


def test_a_worker_that_cannot_write_its_result_stops_the_suite(tmp_path: Path) -> None:
    """Exit 3 (disk full inside the worker): no bogus failed result (resume would skip it); one line."""
    python = fake_worker(
        tmp_path, "echo \"tfparity-worker: cannot write result '$4': No space left on device\" >&2\nexit 3\n"
    )
    out = tmp_path / "suite"
    out.mkdir()
    specs = [RunSpec(epochs=1, benchmark="baseline"), RunSpec(epochs=1, benchmark="batchnorm")]
    with pytest.raises(SuiteStoppedError) as info:
        run_specs(specs, LocalBackend(python=python), out)
    message = str(info.value)
    assert "\n" not in message and "No space left on device" in message
    assert f"tfparity run --resume {out}" in message
    assert [p.name for p in out.glob("*.json")] == []  # no result: the run is still to do
    assert [p.name for p in (out / SPECS_DIR).iterdir()] == [f"{specs[0].run_id}.json"]  # the suite stopped


def test_a_worker_dying_mid_write_leaves_no_temp_file(tmp_path: Path) -> None:
    """The worker is killed between its temp file and the link: the backend removes the temp file."""
    spec = RunSpec(epochs=1, benchmark="baseline")
    out = tmp_path / "suite"
    out.mkdir()
    python = fake_worker(tmp_path, f"printf '{{\"half\": ' > '{out}/.{spec.run_id}.json.x1y2z3.tmp'\nkill -9 $$\n")
    result = LocalBackend(python=python).run(spec, out)
    assert result.status == "failed" and "SIGKILL" in result.error
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{spec.run_id}.json", SPECS_DIR])
    assert load_result(out / f"{spec.run_id}.json") == result


def test_a_worker_refusing_its_spec_is_a_failure_that_quotes_it(tmp_path: Path) -> None:
    python = fake_worker(
        tmp_path, "echo 'tfparity-worker: error: spec x.json: epochs must be an integer >= 1' >&2\nexit 2\n"
    )
    result = LocalBackend(python=python).run(RunSpec(epochs=1), tmp_path)
    assert result.status == "failed"
    assert result.error == "worker exited with code 2: spec x.json: epochs must be an integer >= 1"


def test_resume_reruns_only_unfinished_runs_and_keeps_every_old_attempt(tmp_path: Path, factories: ModuleType) -> None:
    """ok/failed results are final; interrupted and corrupt ones are archived (never deleted) and re-run."""
    specs = [RunSpec(benchmark="batchnorm", epochs=1, max_train_samples=640, seed=s) for s in range(5)]
    out = tmp_path / "suite"
    out.mkdir()

    def result_for(spec: RunSpec, status: str) -> RunResult:
        return factories.result(spec.benchmark, seed=spec.seed, epochs=1, max_train_samples=640, status=status)

    write_result(result_for(specs[0], "ok"), out / f"{specs[0].run_id}.json")
    write_result(result_for(specs[1], "failed"), out / f"{specs[1].run_id}.json")
    write_result(result_for(specs[2], "interrupted"), out / f"{specs[2].run_id}.json")
    (out / f"{specs[3].run_id}.json").write_text('{"schema_version": 1, "run_id": ')  # corrupt
    kept = {p.name: p.read_bytes() for p in out.glob("*.json")}
    # Stand-in worker: logs its call, then writes the ok result the real worker would (argv[4]).
    templates = tmp_path / "templates"
    templates.mkdir()
    for spec in specs:
        write_result(result_for(spec, "ok"), templates / f"{spec.run_id}.json")
    calls = tmp_path / "calls.txt"
    python = fake_worker(tmp_path, f'echo "$4" >> {calls}\ncp "{templates}/$(basename "$4")" "$4"\n')
    results = run_specs(specs, LocalBackend(python=python), out)
    assert [r.status for r in results] == ["ok", "failed", "ok", "ok", "ok"]
    ran = sorted(Path(line).name for line in calls.read_text().split())
    assert ran == sorted(f"{s.run_id}.json" for s in specs[2:])  # only the unfinished three ran
    for name in (f"{specs[0].run_id}.json", f"{specs[1].run_id}.json"):
        assert (out / name).read_bytes() == kept[name]  # final results untouched
    archived = sorted((out / ATTEMPTS_DIR).iterdir())
    assert sorted(p.read_bytes() for p in archived) == sorted(
        [kept[f"{specs[2].run_id}.json"], kept[f"{specs[3].run_id}.json"]]
    )
    for spec in specs:
        load_result(out / f"{spec.run_id}.json")


def test_a_worker_that_cannot_be_started_stops_the_suite_and_resume_runs_it(tmp_path: Path) -> None:
    """A failure of the machinery, not of the benchmark: recorded interrupted (never failed), one line."""
    specs = [RunSpec(epochs=1, benchmark="baseline"), RunSpec(epochs=1, benchmark="batchnorm")]
    out = tmp_path / "suite"
    out.mkdir()
    missing = str(tmp_path / "no-such-python")
    with pytest.raises(SuiteStoppedError) as info:
        run_specs(specs, LocalBackend(python=missing), out)
    message = str(info.value)
    assert "\n" not in message and f"cannot start the worker with {missing!r}" in message
    assert message.endswith(f"then resume with: tfparity run --resume {out}")
    first = load_result(out / f"{specs[0].run_id}.json")
    assert first.status == "interrupted" and "cannot start the worker" in first.error
    assert not (out / f"{specs[1].run_id}.json").exists()  # the suite stopped at once
    # Fixed, the resume runs both (the interrupted attempt archived, not deleted).
    python = fake_worker(tmp_path, "exit 1\n")
    results = run_specs(specs, LocalBackend(python=python), out)
    assert [r.status for r in results] == ["failed", "failed"]  # they ran (and the stand-in failed)
    (archived,) = (out / ATTEMPTS_DIR).iterdir()
    assert load_result(archived).status == "interrupted"


def test_retry_failed_runs_failed_runs_again_and_keeps_the_old_result(tmp_path: Path, factories: ModuleType) -> None:
    specs = [RunSpec(benchmark="batchnorm", epochs=1, max_train_samples=640, seed=s) for s in range(2)]
    out = tmp_path / "suite"
    out.mkdir()
    for spec, status in zip(specs, ("ok", "failed"), strict=True):
        result = factories.result(spec.benchmark, seed=spec.seed, epochs=1, max_train_samples=640, status=status)
        write_result(result, out / f"{spec.run_id}.json")
    kept = {p.name: p.read_bytes() for p in out.glob("*.json")}
    templates = tmp_path / "templates"
    templates.mkdir()
    for spec in specs:
        ok = factories.result(spec.benchmark, seed=spec.seed, epochs=1, max_train_samples=640)
        write_result(ok, templates / f"{spec.run_id}.json")
    calls = tmp_path / "calls.txt"
    python = fake_worker(tmp_path, f'echo "$4" >> {calls}\ncp "{templates}/$(basename "$4")" "$4"\n')
    assert [r.status for r in run_specs(specs, LocalBackend(python=python), out)] == ["ok", "failed"]
    assert not calls.exists()  # without retry_failed a failed result is final
    results = run_specs(specs, LocalBackend(python=python), out, retry_failed=True)
    assert [r.status for r in results] == ["ok", "ok"]
    assert [Path(line).name for line in calls.read_text().split()] == [f"{specs[1].run_id}.json"]
    assert (out / f"{specs[0].run_id}.json").read_bytes() == kept[f"{specs[0].run_id}.json"]
    (archived,) = (out / ATTEMPTS_DIR).iterdir()
    assert archived.read_bytes() == kept[f"{specs[1].run_id}.json"]


def test_a_worker_stopped_from_outside_stops_the_suite_but_a_crash_is_the_benchmark_s(tmp_path: Path) -> None:
    """SIGTERM never comes from the benchmark or the kernel: someone stopped the worker (machinery)."""
    specs = [RunSpec(epochs=1, benchmark="baseline"), RunSpec(epochs=1, benchmark="batchnorm")]
    out = tmp_path / "suite"
    out.mkdir()
    # As the real worker does, the stand-in takes SIGTERM back (the backend starts it blocked).
    stopped = "import os, signal; signal.pthread_sigmask(signal.SIG_UNBLOCK, {15}); os.kill(os.getpid(), 15)"
    with pytest.raises(SuiteStoppedError) as info:
        run_specs(specs, LocalBackend(python=fake_worker(tmp_path, f'exec {sys.executable} -c "{stopped}"\n')), out)
    assert f"its worker was stopped from outside (SIGTERM) during run {specs[0].run_id}" in str(info.value)
    assert load_result(out / f"{specs[0].run_id}.json").status == "interrupted"
    assert not (out / f"{specs[1].run_id}.json").exists()
    crashed = LocalBackend(python=fake_worker(tmp_path, "kill -ABRT $$\n")).run(specs[1], out)
    assert crashed.status == "failed" and "SIGABRT" in crashed.error  # the benchmark's own crash
