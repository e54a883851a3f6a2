"""Reliability and security under interruption, faults and bad input (GitHub issue 7), local backend.

Everything here uses real processes: the real ``tfparity`` CLI in a subprocess (in its own session,
signalled as a terminal would signal it), real workers, real files, a real tmpfs for "disk full"
and a real unprivileged user for permission errors when the tests run as root. Bad input that is
rejected before any run must not import TensorFlow: those tests put a ``tensorflow`` package that
explodes on import first on the path (fixture ``tf_trap``). The docker variants are in
test_docker_faults.py; the runner's own failure paths, with stand-in workers, in test_runner.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from harness import data
from harness.orchestrate.backends.local import LocalBackend
from harness.orchestrate.runner import run_specs
from harness.spec.run_spec import PathSpec, RunSpec
from harness.store.layout import ATTEMPTS_DIR, MANIFEST
from harness.store.results import load_result, load_results, write_result
from tests.helpers import ROOT, tfparity
from tests.orchestrate.support import (
    ALLOWED_MARKER,
    AS_ROOT,
    QUICK,
    SECRETS,
    assert_no_suite_dir,
    assert_one_line_error,
    assert_suite_dir_consistent,
    fill,
    freeze,
    only_suite_dir,
    start_tfparity,
    started,
    stderr_of,
    wait_for,
)


def workers_under(root: Path) -> list[str]:
    """Worker processes whose command line names a path under ``root`` (other tests' are ignored)."""
    out = subprocess.run(["pgrep", "-af", f"harness.worker {root}"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def no_stray_workers(tmp_path: Path) -> Iterator[None]:
    """Whatever a test does (a timeout, a failed assertion with a frozen worker), its workers end."""
    yield
    for root in (tmp_path, Path(tempfile.gettempdir()) / "tfparity-full-"):
        for line in workers_under(root):
            try:
                os.kill(int(line.split()[0]), signal.SIGKILL)
            except ProcessLookupError:
                pass


def freeze_worker(root: Path) -> bool:
    """SIGSTOP the worker(s) under ``root`` (it cannot finish while the test acts); whether any was found.

    The harness stops a frozen worker as any other: SIGTERM (pending), then SIGKILL after its grace.
    """
    pids = [int(line.split()[0]) for line in workers_under(root)]
    for pid in pids:
        freeze(pid)
    return bool(pids)


def thaw_workers(root: Path) -> None:
    for line in workers_under(root):
        os.kill(int(line.split()[0]), signal.SIGCONT)


def assert_no_workers(root: Path, within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    while workers_under(root) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert workers_under(root) == [], workers_under(root)


def run_ids(*benchmarks: str) -> list[str]:
    """Run ids the CLI gives the quick runs of these benchmarks (mnist-5k, cpu-fp32, seed 0)."""
    base = RunSpec(epochs=1, max_train_samples=640)
    return [base.replace(benchmark=b, suite="bn").run_id for b in benchmarks]


# --- bad input: one line, exit 2, nothing written, no TensorFlow ---------------------------------


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--model", "resnet9000"], "'resnet9000'"),
        (["--model", "baseline", "--dataset", "imagenet"], "'imagenet'"),
        (["--suite", "everything"], "'everything'"),
        (["--model", "baseline", "--epochs", "0"], "'0'"),
        (["--model", "baseline", "--epochs", "-3"], "'-3'"),
        (["--model", "baseline", "--batch-size", "0"], "'0'"),
        (["--model", "baseline", "--batch-size", "-32"], "'-32'"),
        (["--model", "baseline", "--precision", "fp8"], "'fp8'"),
        (["--model", "baseline", "--precision", "mixed", "--mixed-policy", "mixed_int4"], "'mixed_int4'"),
        (["--model", "baseline", "--learning-rate", "-0.1"], "'-0.1'"),
        (["--model", "baseline", "--validation-split", "1.5"], "1.5"),
        (["--model", "baseline", "--backend", "kubernetes"], "'kubernetes'"),
    ],
)
def test_bad_run_arguments_are_one_line_exit_2_and_write_nothing(
    tmp_path: Path, tf_trap: dict[str, str], args: list[str], fragment: str
) -> None:
    results = tmp_path / "results"
    proc = tfparity("run", *args, "--results-dir", str(results), env=tf_trap)
    assert_one_line_error(proc, fragment)
    assert_no_suite_dir(results)


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"[1, 2, 3]", "must be a JSON object"),
        (json.dumps({"benchmark": "baseline", "evil": 1}).encode(), "unknown key"),
        (json.dumps({"epochs": -1}).encode(), "epochs must be an integer >= 1, got -1"),
        (json.dumps({"batch_size": 0}).encode(), "batch_size must be an integer >= 1, got 0"),
        (json.dumps({"path": {"precision": "fp64"}}).encode(), "'fp64'"),
        (json.dumps({"spec_version": 99}).encode(), "spec_version 99"),
        (json.dumps({"suite": "../../etc"}).encode(), "'../../etc'"),
    ],
)
def test_malformed_spec_is_refused_by_the_worker(
    tmp_path: Path, tf_trap: dict[str, str], content: bytes, fragment: str
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_bytes(content)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "harness.worker", str(spec), str(out / "r.json")],
        env={**os.environ, **tf_trap},
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = assert_one_line_error(proc, fragment)
    assert str(spec) in line
    assert list(out.iterdir()) == []


def test_unreadable_spec_is_refused_by_the_worker(tmp_path: Path, tf_trap: dict[str, str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for spec in (tmp_path / "missing.json", tmp_path):  # absent; a directory where a file is expected
        proc = subprocess.run(
            [sys.executable, "-m", "harness.worker", str(spec), str(out / "r.json")],
            env={**os.environ, **tf_trap},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert_one_line_error(proc, "cannot read spec")
    assert list(out.iterdir()) == []


MUTATIONS: list[tuple[Callable[[str], str], str]] = [
    (lambda text: text[: len(text) // 2], "not valid JSON"),  # truncated
    (lambda text: "\x00\x01 not json", "not valid JSON"),
    (lambda text: json.dumps(json.loads(text) | {"schema_version": 3}), "newer than this tfparity reads"),
    (lambda text: json.dumps(json.loads(text) | {"schema_version": 0}), "schema_version 0"),
    (lambda text: json.dumps(json.loads(text) | {"status": "great"}), "'great'"),
    (lambda text: json.dumps(json.loads(text) | {"params": "many"}), "result.params"),
    (lambda text: json.dumps([json.loads(text)]), "must be a JSON object"),
]


@pytest.mark.parametrize("mutate, fragment", MUTATIONS)
def test_malformed_result_is_one_line_for_show_and_report(
    tmp_path: Path, tf_trap: dict[str, str], factories: ModuleType, mutate: Callable[[str], str], fragment: str
) -> None:
    good = write_result(factories.result(status="failed", error="x"), tmp_path / "good.json")
    bad_dir = tmp_path / "suite"
    bad_dir.mkdir()
    bad = bad_dir / "bad.json"
    bad.write_text(mutate(good.read_text()))
    assert_one_line_error(tfparity("show", str(bad), env=tf_trap), fragment, str(bad))
    report_out = tmp_path / "report"
    assert_one_line_error(tfparity("report", str(bad_dir), "-o", str(report_out), env=tf_trap), fragment)
    assert_no_suite_dir(report_out)


def test_resume_of_a_non_suite_or_broken_manifest_is_one_line(tmp_path: Path, tf_trap: dict[str, str]) -> None:
    assert_one_line_error(tfparity("run", "--resume", str(tmp_path / "nope"), env=tf_trap), "not a suite directory")
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / MANIFEST).write_text('{"manifest_version": 1, "runs": [')
    assert_one_line_error(tfparity("run", "--resume", str(suite), env=tf_trap), "cannot read")
    (suite / MANIFEST).write_text(json.dumps({"manifest_version": 1, "runs": [{"epochs": 0}]}))
    assert_one_line_error(tfparity("run", "--resume", str(suite), env=tf_trap), "epochs must be an integer >= 1")
    assert sorted(p.name for p in suite.iterdir()) == [MANIFEST]


def write_suite(suite: Path, specs: list[RunSpec], backend: str = "local") -> dict[str, bytes]:
    """A suite directory as `tfparity run` leaves it (manifest + specs), without running anything."""
    from harness.store.layout import write_manifest, write_spec

    suite.mkdir(parents=True)
    write_manifest(suite, specs, {"suite": "bn", "backend": backend, "data_dir": None})
    for spec in specs:
        write_spec(suite, spec)
    return {str(p): p.read_bytes() for p in suite.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--epochs", "5"], "--epochs"),
        (["--results-dir", "elsewhere"], "--results-dir"),
        (["--seed", "0"], "--seed"),  # a value equal to the default is still given
        (["--dropout-rate", "0"], "--dropout-rate"),
        (["--device", "cpu", "--precision", "fp32"], "--device, --precision"),
        (["--model", "baseline"], "--model"),
        (["--dataset", "mnist-5k"], "--dataset"),
        (["--preset", "fast"], "--preset"),
        (["--xla", "off"], "--xla"),
        (["--inject-fault", "crash"], "--inject-fault"),
    ],
)
def test_resume_refuses_flags_that_would_change_the_plan_or_where_results_go(
    tmp_path: Path, tf_trap: dict[str, str], flags: list[str], named: str
) -> None:
    suite = tmp_path / "results" / "bn-1"
    before = write_suite(suite, [RunSpec(epochs=1, benchmark="baseline")])
    proc = tfparity("run", "--resume", str(suite), *flags, env=tf_trap)
    line = assert_one_line_error(proc, f"drop {named} (with --resume only")
    assert "--timeout" in line  # and says what does apply
    assert {str(p): p.read_bytes() for p in suite.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["bn-1"]  # nothing new elsewhere
    assert not (ROOT / "elsewhere").exists()


def test_resume_refuses_another_backend_and_retry_failed_needs_resume(tmp_path: Path, tf_trap: dict[str, str]) -> None:
    suite = tmp_path / "bn-1"
    before = write_suite(suite, [RunSpec(epochs=1)])
    assert_one_line_error(
        tfparity("run", "--resume", str(suite), "--backend", "docker", env=tf_trap), "--backend docker", "'local'"
    )
    results = tmp_path / "results"
    assert_one_line_error(
        tfparity("run", "--model", "baseline", "--retry-failed", "--results-dir", str(results), env=tf_trap),
        "--retry-failed",
        "--resume DIR",
    )
    assert_no_suite_dir(results)
    assert {str(p): p.read_bytes() for p in suite.rglob("*") if p.is_file()} == before


def test_resume_accepts_the_flags_that_say_how_to_run(tmp_path: Path, factories: ModuleType) -> None:
    """--timeout, --data-dir, --backend (its own) and -v apply; a finished suite then has nothing to do."""
    spec = RunSpec(epochs=1, benchmark="baseline")
    suite = tmp_path / "bn-1"
    write_suite(suite, [spec])
    write_result(factories.result("baseline", epochs=1), suite / f"{spec.run_id}.json")
    assert spec.run_id == factories.result("baseline", epochs=1).run_id
    data_dir = tmp_path / "data"
    data.prepare("mnist-5k", data_dir)
    proc = tfparity(
        "-v", "run", "--resume", str(suite), "--timeout", "60", "--data-dir", str(data_dir), "--backend", "local"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"{spec.run_id}: already ok, skipped" in proc.stderr


@pytest.mark.parametrize(
    "evil",
    [
        {"suite": "../../escaped"},
        {"suite": "/tmp/escaped"},
        {"benchmark": "../escaped"},
        {"dataset": "../../escaped"},
        {"path": {"device": "../x"}},
    ],
)
def test_paths_from_a_manifest_cannot_escape_the_results_directory(
    tmp_path: Path, tf_trap: dict[str, str], evil: dict[str, object]
) -> None:
    suite = tmp_path / "results" / "suite"
    suite.mkdir(parents=True)
    run = RunSpec(epochs=1).to_dict() | evil
    (suite / MANIFEST).write_text(json.dumps({"manifest_version": 1, "runs": [run]}))
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    assert_one_line_error(tfparity("run", "--resume", str(suite), env=tf_trap), "invalid run")
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    assert not Path("/tmp/escaped").exists()


# --- data problems -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prepared_synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ddir = tmp_path_factory.mktemp("data")
    data.prepare("synthetic", ddir)
    return ddir


def test_truncated_dataset_file_is_one_line(tmp_path: Path, prepared_synthetic: Path, tf_trap: dict[str, str]) -> None:
    ddir = Path(shutil.copytree(prepared_synthetic, tmp_path / "data"))
    npz = ddir / "synthetic.npz"
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 3])
    (ddir / "synthetic.sha256").unlink()  # without a manifest the truncation itself must be detected
    results = tmp_path / "results"
    proc = tfparity(
        "run",
        "--model",
        "baseline",
        "--dataset",
        "synthetic",
        "--data-dir",
        str(ddir),
        "--results-dir",
        str(results),
        env=tf_trap,
    )
    assert_one_line_error(proc, "truncated or corrupt", str(npz))
    assert_no_suite_dir(results)


def test_dataset_with_a_wrong_checksum_is_one_line(
    tmp_path: Path, prepared_synthetic: Path, tf_trap: dict[str, str]
) -> None:
    ddir = Path(shutil.copytree(prepared_synthetic, tmp_path / "data"))
    manifest = ddir / "synthetic.sha256"
    manifest.write_text("0" * 64 + "  synthetic.npz\n")
    results = tmp_path / "results"
    args = (
        "run",
        "--model",
        "baseline",
        "--dataset",
        "synthetic",
        "--data-dir",
        str(ddir),
        "--results-dir",
        str(results),
    )
    assert_one_line_error(tfparity(*args, env=tf_trap), "checksum mismatch")
    # Same with the manifest intact and one byte of the data changed.
    shutil.copy2(prepared_synthetic / "synthetic.sha256", manifest)
    raw = bytearray((ddir / "synthetic.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (ddir / "synthetic.npz").write_bytes(bytes(raw))
    assert_one_line_error(tfparity(*args, env=tf_trap), "checksum mismatch")
    assert_no_suite_dir(results)


# Permission tests: as root, chmod stops nothing, so the CLI runs as nobody (setpriv) over a
# world-traversable scratch directory; as a normal user, chmod is enough.


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory an unprivileged user can traverse (pytest's tmp_path is 0700 under root)."""
    path = Path(tempfile.mkdtemp(prefix="tfparity-faults-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_unprivileged(*args: str, home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI as an unprivileged user when we are root (setpriv), else as ourselves."""
    home.mkdir(exist_ok=True)
    home.chmod(0o777)
    full_env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOME": str(home),
        "MPLCONFIGDIR": str(home / "mpl"),
        "KERAS_HOME": str(home / "keras"),
        **(env or {}),
    }
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if AS_ROOT else []
    return subprocess.run(
        [*prefix, sys.executable, "-m", "harness", *args],
        cwd="/",
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def unprivileged_ok(scratch: Path) -> None:
    if AS_ROOT and not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: cannot drop privileges for a permission test")
    proc = run_unprivileged("list", home=scratch / "home")
    assert proc.returncode == 0, f"the CLI does not start as an unprivileged user: {proc.stderr[-1000:]}"


def test_data_dir_not_readable_is_one_line(scratch: Path, unprivileged_ok: None, tf_trap: dict[str, str]) -> None:
    ddir = scratch / "data"
    ddir.mkdir(mode=0o700)  # root-owned 0700 when we are root; chmod'ed 000 below otherwise
    if not AS_ROOT:
        ddir.chmod(0o000)
    results = scratch / "results"
    results.mkdir(mode=0o777)
    results.chmod(0o777)
    trap_dir = tf_trap["PYTHONPATH"].split(os.pathsep)[0]
    trap_copy = scratch / "trap"
    shutil.copytree(trap_dir, trap_copy)  # the trap must be readable by the other user
    proc = run_unprivileged(
        "run",
        "--model",
        "baseline",
        "--data-dir",
        str(ddir),
        "--results-dir",
        str(results),
        home=scratch / "home",
        env={"PYTHONPATH": f"{trap_copy}{os.pathsep}{ROOT}"},
    )
    ddir.chmod(0o700)
    assert_one_line_error(proc, "not readable", str(ddir))
    assert_no_suite_dir(results)


def test_data_dir_that_is_a_file_is_one_line(tmp_path: Path, tf_trap: dict[str, str]) -> None:
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("I am a file")
    results = tmp_path / "results"
    proc = tfparity(
        "run", "--model", "baseline", "--data-dir", str(not_a_dir), "--results-dir", str(results), env=tf_trap
    )
    assert_one_line_error(proc, "not a directory")
    assert_no_suite_dir(results)


def test_results_dir_not_writable_is_one_line(scratch: Path, unprivileged_ok: None) -> None:
    results = scratch / "results"
    results.mkdir(mode=0o755)  # owned by root (we are root) or made read-only below
    if not AS_ROOT:
        results.chmod(0o555)
    proc = run_unprivileged("run", "--model", "baseline", "--results-dir", str(results), home=scratch / "home")
    results.chmod(0o755)
    assert_one_line_error(proc, "not writable", str(results))
    assert_no_suite_dir(results)


def test_results_dir_under_a_file_is_one_line(tmp_path: Path, tf_trap: dict[str, str]) -> None:
    blocker = tmp_path / "results"
    blocker.write_text("a file where a directory is expected")
    proc = tfparity("run", "--model", "baseline", "--results-dir", str(blocker / "sub"), env=tf_trap)
    assert_one_line_error(proc, "cannot create results directory")
    assert blocker.read_text() == "a file where a directory is expected"


# --- disk full ------------------------------------------------------------------------------------


def test_full_disk_before_the_suite_starts_is_one_line(tiny_tmpfs: Path, tf_trap: dict[str, str]) -> None:
    results = tiny_tmpfs / "results"
    results.mkdir()
    fill(tiny_tmpfs)
    proc = tfparity("run", "--model", "baseline", *QUICK, "--results-dir", str(results), env=tf_trap)
    assert_one_line_error(proc, "No space left on device")
    assert_no_suite_dir(results)


@pytest.mark.slow
def test_disk_full_while_writing_a_result_stops_the_suite_in_one_line(tiny_tmpfs: Path, tmp_path: Path) -> None:
    results = tiny_tmpfs / "results"
    proc = start_tfparity("run", "--suite", "bn", *QUICK, "--results-dir", str(results), log_dir=tmp_path)
    # Frozen as soon as it is seen, the worker cannot write its result before the disk is full.
    wait_for(lambda: freeze_worker(results), 600, "the first worker", proc)
    first_spec = list(results.glob("*/specs/*.json"))
    fill(tiny_tmpfs)
    thaw_workers(results)
    proc.wait(timeout=600)
    err = stderr_of(tmp_path)
    assert proc.returncode == 3, err  # the suite stopped (resumable), not bad input
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("tfparity: error:"), err
    assert "No space left on device" in errors[0] and "--resume" in errors[0] and "Traceback" not in err
    suite_dir = first_spec[0].parent.parent
    assert_no_workers(tiny_tmpfs)
    # Nothing partial, nothing bogus: no result at all for the run (a resume runs it again), the
    # second run was not started into a full disk, every remaining file is complete.
    assert assert_suite_dir_consistent(suite_dir) == {}
    assert [p.name for p in (suite_dir / "specs").iterdir()] == [first_spec[0].name]


# --- interruption, kill -9 and resume -------------------------------------------------------------


@pytest.mark.slow
def test_sigint_mid_suite_then_resume_loses_nothing_and_leaks_no_secret(tmp_path: Path) -> None:
    results = tmp_path / "results"
    env = {**SECRETS, **ALLOWED_MARKER}
    proc = start_tfparity("run", "--suite", "bn", *QUICK, "--results-dir", str(results), log_dir=tmp_path, env=env)
    first, second = run_ids("baseline", "batchnorm")
    suite_dir = wait_for(lambda: next(iter(results.glob("bn-*")), None), 120, "the suite directory", proc)
    wait_for(lambda: (suite_dir / f"{first}.json").exists(), 300, "the first result", proc)
    # Frozen as soon as it is seen: it cannot end before the signal lands, however slow the machine.
    wait_for(lambda: started(tmp_path, 2, 2, second) and freeze_worker(suite_dir), 600, "the second worker", proc)
    first_bytes = (suite_dir / f"{first}.json").read_bytes()
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    assert proc.wait(timeout=600) == 130
    err = stderr_of(tmp_path)
    assert "Traceback" not in err
    assert f"interrupted by SIGINT; finished results are kept in {suite_dir}" in err
    assert f"tfparity run --resume {suite_dir}" in err
    assert_no_workers(suite_dir)

    results_now = assert_suite_dir_consistent(suite_dir)
    assert results_now[first].status == "ok"
    assert results_now[second].status == "interrupted" and results_now[second].error == "interrupted by SIGINT"

    resumed = tfparity("run", "--resume", str(suite_dir), env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{first}: already ok, skipped" in resumed.stderr
    final = assert_suite_dir_consistent(suite_dir)
    assert {k: r.status for k, r in final.items()} == {first: "ok", second: "ok"}
    assert (suite_dir / f"{first}.json").read_bytes() == first_bytes  # never rewritten
    (archived,) = (suite_dir / ATTEMPTS_DIR).iterdir()  # the interrupted attempt is kept, not deleted
    assert load_result(archived).status == "interrupted"

    # A second resume has nothing to do and changes nothing.
    before = {p: p.read_bytes() for p in suite_dir.rglob("*.json")}
    again = tfparity("run", "--resume", str(suite_dir), env=env)
    assert again.returncode == 0 and again.stderr.count("skipped") == 2
    assert {p: p.read_bytes() for p in suite_dir.rglob("*.json")} == before

    # Secrets: the environment reaches results only through the allowlist.
    assert final[first].environment["env"].get("TFPARITY_FAULT_TEST_MARKER") == "allowlisted-value-5c3e"
    report_dir = tmp_path / "report"
    report = tfparity("report", str(suite_dir), "-o", str(report_dir), env=env)
    assert report.returncode == 0, report.stderr[-2000:]
    scanned = [p for p in [*suite_dir.rglob("*"), *report_dir.rglob("*")] if p.is_file()]
    assert any(p.name == "report.html" for p in scanned)
    for path in scanned:
        content = path.read_bytes()
        for name, value in SECRETS.items():
            assert value.encode() not in content, f"secret {name} leaked into {path}"
            assert name.encode() not in content, f"secret variable name {name} leaked into {path}"


@pytest.mark.slow
def test_sigterm_during_tf_import_and_a_second_signal_are_clean(tmp_path: Path) -> None:
    results = tmp_path / "results"
    proc = start_tfparity("run", "--suite", "bn", *QUICK, "--results-dir", str(results), log_dir=tmp_path)
    wait_for(lambda: freeze_worker(results), 600, "the first worker", proc)  # frozen while importing TF
    os.killpg(proc.pid, signal.SIGTERM)
    # The harness handled SIGTERM once it stopped its worker; a second signal now lands in its cleanup.
    wait_for(lambda: proc.poll() is not None or not workers_under(results), 600, "the worker to be stopped")
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)  # an impatient second signal must not break the cleanup
    assert proc.wait(timeout=600) == 143
    err = stderr_of(tmp_path)
    assert "Traceback" not in err and "interrupted by SIGTERM" in err
    suite_dir = only_suite_dir(results)
    assert_no_workers(results)
    (result,) = assert_suite_dir_consistent(suite_dir).values()
    assert result.status == "interrupted" and result.error == "interrupted by SIGTERM"
    assert result.run_id == run_ids("baseline")[0]


@pytest.mark.slow
def test_kill_9_of_the_harness_leaves_valid_results_and_no_worker(tmp_path: Path) -> None:
    results = tmp_path / "results"
    proc = start_tfparity("run", "--suite", "bn", *QUICK, "--results-dir", str(results), log_dir=tmp_path)
    first, second = run_ids("baseline", "batchnorm")
    suite_dir = wait_for(lambda: next(iter(results.glob("bn-*")), None), 120, "the suite directory", proc)
    wait_for(lambda: (suite_dir / f"{first}.json").exists(), 300, "the first result", proc)
    wait_for(lambda: started(tmp_path, 2, 2, second) and freeze_worker(suite_dir), 600, "the second worker", proc)
    os.kill(proc.pid, signal.SIGKILL)  # the harness only: no handler runs, its worker is orphaned
    proc.wait(timeout=60)
    thaw_workers(suite_dir)
    # The orphan must not train on (and record a bogus failure once its output pipe is gone): the
    # kernel kills it with its parent (PR_SET_PDEATHSIG), or, orphaned before it could ask for
    # that, it sees its parent gone and exits.
    assert_no_workers(suite_dir)
    final = assert_suite_dir_consistent(suite_dir)
    assert {k: r.status for k, r in final.items()} == {first: "ok"}


# --- faults inside runs: each a recorded failure with a reason; the suite goes on -----------------


@pytest.mark.slow
def test_oom_crash_and_nan_are_failures_with_reasons_and_the_suite_goes_on(tmp_path: Path) -> None:
    quick = RunSpec(epochs=1, max_train_samples=640, benchmark="baseline")
    specs = [
        quick.replace(inject_fault="oom", seed=1),  # a forced allocation past the address-space limit
        quick.replace(inject_fault="crash", seed=2),  # os.abort(): no Python cleanup, no result from the worker
        # An absurd learning rate in float16 overflows to inf/NaN in the first steps: a real divergence.
        quick.replace(learning_rate=1e6, path=PathSpec(precision="mixed", mixed_policy="mixed_float16"), seed=3),
        quick.replace(seed=4),
    ]
    results = run_specs(specs, LocalBackend(), tmp_path)
    assert [r.status for r in results] == ["failed", "failed", "failed", "ok"]
    oom, crash, nan, ok = results
    assert oom.error.startswith("out of memory") and "MemoryError" in oom.error
    assert "SIGABRT" in crash.error
    assert "non-finite" in nan.error and "learning_rate=1000000.0" in nan.error
    assert any("NonFiniteLossError" in line for line in nan.log_tail)
    assert ok.test_accuracy > 0.5
    on_disk = assert_suite_dir_consistent(tmp_path)
    assert {k: r.status for k, r in on_disk.items()} == {r.run_id: r.status for r in results}
    assert load_results([tmp_path]) and workers_under(tmp_path) == []


# --- interruption before any run starts -------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_before_the_suite_starts_is_one_line_and_writes_nothing(
    tmp_path: Path, silent_engine: str, tf_trap: dict[str, str], sig: int
) -> None:
    if not shutil.which("docker"):
        pytest.skip("needs the docker CLI (no engine): the harness must hang in its engine check")
    results = tmp_path / "results"
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
        env={"DOCKER_HOST": silent_engine, **tf_trap},
    )

    def docker_cli_children() -> list[int]:
        """The CLI's children that are the docker CLI itself (exec'ed), waiting on the socket."""
        out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout
        pids = []
        for pid in out.split():
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if Path(argv[0].decode()).name == "docker" and b"info" in argv:
                pids.append(int(pid))
        return pids

    docker_cli = wait_for(docker_cli_children, 60, "the engine check (a docker CLI child waiting on the socket)", proc)
    os.killpg(proc.pid, sig)  # the docker CLI child (same group) gets it too, as from a terminal
    assert proc.wait(timeout=30) == 128 + sig
    err = stderr_of(tmp_path)
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [f"tfparity: interrupted by {signal.Signals(sig).name}"], err
    assert_no_suite_dir(results)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in docker_cli) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in docker_cli), "the docker CLI child was left running"


@pytest.mark.slow
def test_a_reader_of_stderr_that_goes_away_stops_the_run_as_interrupted(tmp_path: Path) -> None:
    # `tfparity run 2>&1 | head`, or a parent script that died: Python turns SIGPIPE into a broken
    # pipe on the next progress line; the run in progress is recorded, never silently lost.
    results = tmp_path / "results"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["run", "--model", "baseline", "--epochs", "3", "--max-train-samples", "640", "--results-dir", str(results)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # the progress so far, up to the run's start (an event, not a sleep)
            if line.startswith("[1/1] baseline-") and line.rstrip().endswith(": started"):
                break
        proc.stderr.close()  # the reader goes away; the next progress line (epoch 1 of 3) breaks
        assert proc.wait(timeout=900) == 128 + signal.SIGPIPE
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    suite_dir = only_suite_dir(results)
    assert_no_workers(suite_dir)
    (result,) = assert_suite_dir_consistent(suite_dir).values()
    assert result.status == "interrupted" and result.error == "interrupted by SIGPIPE"
