"""Reliability and security under interruption, faults and bad input (GitHub issue 7), local backend.

Everything here uses real processes: the real ``tfparity`` CLI in a subprocess (in its own session,
signalled as a terminal would signal it), real workers, real files, a real tmpfs for "disk full"
and a real unprivileged user for permission errors when the tests run as root. Bad input that is
rejected before any run must not import TensorFlow: those tests put a ``tensorflow`` package that
explodes on import first on the path. The docker variants are in test_faults_docker.py.
"""

from __future__ import annotations

import errno
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

import pytest
from conftest import ROOT, tfparity

from harness import data
from harness.backends.local import LocalBackend
from harness.config import PathSpec, RunSpec, load_spec
from harness.results import RunResult, load_result, load_results, write_json_atomic, write_result
from harness.runner import MANIFEST, read_manifest, run_specs

QUICK = ("--epochs", "1", "--max-train-samples", "640")
# Fake credentials: none of these values may reach a result, a spec, a manifest or a report.
SECRETS = {
    "TFPARITY_API_TOKEN": "tfp-secret-token-3f9a1c",
    "TF_SECRET_KEY": "tf-secret-key-77d0e2",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-9b1e5f0c2d",
    "TF_AUTH_PASSWORD": "hunter2-tfparity-d41d8",
}
# An allowlisted variable: proves the environment capture works at all (so the secret check can fail).
ALLOWED_MARKER = {"TFPARITY_FAULT_TEST_MARKER": "allowlisted-value-5c3e"}


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def tf_trap(tmp_path: Path) -> dict[str, str]:
    """Environment under which importing TensorFlow fails loudly (and leaves a marker file)."""
    trap = tmp_path / "tf_trap"
    (trap / "tensorflow").mkdir(parents=True)
    marker = tmp_path / "TENSORFLOW_WAS_IMPORTED"
    (trap / "tensorflow" / "__init__.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nraise ImportError('TensorFlow must not be imported here')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(trap), str(ROOT)]), "_TF_TRAP_MARKER": str(marker)}
    yield env
    assert not marker.exists(), "TensorFlow was imported for input that is rejected before any run"


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 2, exactly one stderr line ``tfparity: error: ...`` naming each fragment, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith(("tfparity: error:", "tfparity-worker: error:")), lines[0]
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def assert_no_suite_dir(results_dir: Path) -> None:
    """'Nothing written': the results directory did not gain a suite directory (or anything)."""
    assert not results_dir.exists() or list(results_dir.iterdir()) == [], list(results_dir.rglob("*"))


def start_tfparity(*args: str, log_dir: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start the real CLI in its own session (so we can signal its process group like a terminal)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    out = open(log_dir / "stdout.txt", "w")  # files, not pipes: a full pipe would stall the CLI
    err = open(log_dir / "stderr.txt", "w")
    proc = subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=ROOT, env=full_env, stdout=out,
                            stderr=err, text=True, start_new_session=True)
    out.close()
    err.close()
    proc.log_dir = log_dir  # type: ignore[attr-defined]  # for failure messages
    return proc


def stderr_of(log_dir: Path) -> str:
    return (log_dir / "stderr.txt").read_text()


def wait_for(condition: Callable[[], object], timeout_s: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            log_dir = getattr(proc, "log_dir", None)
            tail = stderr_of(log_dir)[-2000:] if log_dir else ""
            pytest.fail(f"the CLI exited ({proc.returncode}) before: {what}\n{tail}")
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout_s} s waiting for: {what}")


def workers_under(root: Path) -> list[str]:
    """Worker processes whose command line names a path under ``root`` (other tests' are ignored)."""
    out = subprocess.run(["pgrep", "-af", f"harness.worker {root}"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.strip()]


def assert_no_workers(root: Path, within_s: float = 15.0) -> None:
    deadline = time.monotonic() + within_s
    while workers_under(root) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert workers_under(root) == [], workers_under(root)


def only_suite_dir(results_dir: Path) -> Path:
    (suite_dir,) = [p for p in results_dir.iterdir() if p.is_dir()]
    return suite_dir


def assert_suite_dir_consistent(suite_dir: Path) -> dict[str, RunResult]:
    """Every file in a suite dir is complete: results load strictly, specs and manifest parse, no temp files."""
    results = {}
    for path in sorted(suite_dir.rglob("*")):
        if path.is_dir():
            continue
        assert not path.name.endswith(".tmp"), f"half-written file left behind: {path}"
        assert path.suffix == ".json", f"unexpected file {path}"
        if path.name == MANIFEST:
            read_manifest(suite_dir)
        elif path.parent.name == "specs":
            load_spec(str(path))
        else:
            result = load_result(path)
            if path.parent == suite_dir:
                assert path.stem == result.run_id
                results[result.run_id] = result
    return results


def run_ids(*benchmarks: str) -> list[str]:
    """Run ids the CLI gives the quick runs of these benchmarks (mnist-5k, cpu-fp32, seed 0)."""
    base = RunSpec(epochs=1, max_train_samples=640)
    return [base.replace(benchmark=b, suite="bn").run_id for b in benchmarks]


# --- bad input: one line, exit 2, nothing written, no TensorFlow ---------------------------------


@pytest.mark.parametrize("args, fragment", [
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
])
def test_bad_run_arguments_are_one_line_exit_2_and_write_nothing(tmp_path: Path, tf_trap: dict[str, str],
                                                                 args: list[str], fragment: str) -> None:
    results = tmp_path / "results"
    proc = tfparity("run", *args, "--results-dir", str(results), env=tf_trap)
    assert_one_line_error(proc, fragment)
    assert_no_suite_dir(results)


@pytest.mark.parametrize("content, fragment", [
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
])
def test_malformed_spec_is_refused_by_the_worker(tmp_path: Path, tf_trap: dict[str, str], content: bytes,
                                                 fragment: str) -> None:
    spec = tmp_path / "spec.json"
    spec.write_bytes(content)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-m", "harness.worker", str(spec), str(out / "r.json")],
                          env={**os.environ, **tf_trap}, capture_output=True, text=True, timeout=120)
    line = assert_one_line_error(proc, fragment)
    assert str(spec) in line
    assert list(out.iterdir()) == []


def test_unreadable_spec_is_refused_by_the_worker(tmp_path: Path, tf_trap: dict[str, str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for spec in (tmp_path / "missing.json", tmp_path):  # absent; a directory where a file is expected
        proc = subprocess.run([sys.executable, "-m", "harness.worker", str(spec), str(out / "r.json")],
                              env={**os.environ, **tf_trap}, capture_output=True, text=True, timeout=120)
        assert_one_line_error(proc, "cannot read spec")
    assert list(out.iterdir()) == []


def _valid_result() -> RunResult:
    spec = RunSpec(epochs=1, max_train_samples=640)
    return RunResult(run_id=spec.run_id, status="failed", spec=spec.to_dict(), started_utc="2026-01-01T00:00:00Z",
                     finished_utc="2026-01-01T00:00:01Z", error="x")


@pytest.mark.parametrize("mutate, fragment", [
    (lambda text: text[: len(text) // 2], "not valid JSON"),  # truncated
    (lambda text: "\x00\x01 not json", "not valid JSON"),
    (lambda text: json.dumps(json.loads(text) | {"schema_version": 2}), "newer than this tfparity reads"),
    (lambda text: json.dumps(json.loads(text) | {"schema_version": 0}), "schema_version 0"),
    (lambda text: json.dumps(json.loads(text) | {"status": "great"}), "'great'"),
    (lambda text: json.dumps(json.loads(text) | {"params": "many"}), "result.params"),
    (lambda text: json.dumps([json.loads(text)]), "must be a JSON object"),
])
def test_malformed_result_is_one_line_for_show_and_report(tmp_path: Path, tf_trap: dict[str, str], mutate,
                                                          fragment: str) -> None:
    good = write_result(_valid_result(), tmp_path / "good.json")
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


@pytest.mark.parametrize("evil", [
    {"suite": "../../escaped"}, {"suite": "/tmp/escaped"}, {"benchmark": "../escaped"},
    {"dataset": "../../escaped"}, {"path": {"device": "../x"}}])
def test_paths_from_a_manifest_cannot_escape_the_results_directory(tmp_path: Path, tf_trap: dict[str, str],
                                                                     evil: dict) -> None:
    suite = tmp_path / "results" / "suite"
    suite.mkdir(parents=True)
    run = RunSpec(epochs=1).to_dict() | evil
    (suite / MANIFEST).write_text(json.dumps({"manifest_version": 1, "runs": [run]}))
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    assert_one_line_error(tfparity("run", "--resume", str(suite), env=tf_trap), "invalid run")
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    assert not Path("/tmp/escaped").exists()


def test_results_never_written_through_a_planted_symlink(tmp_path: Path) -> None:
    """A result path that is a (dangling) symlink to outside is refused, not followed."""
    suite = tmp_path / "suite"
    suite.mkdir()
    outside = tmp_path / "outside" / "stolen.json"
    outside.parent.mkdir()
    result = _valid_result()
    (suite / f"{result.run_id}.json").symlink_to(outside)
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        write_result(result, suite / f"{result.run_id}.json")
    assert not outside.exists()
    assert [p.name for p in suite.iterdir()] == [f"{result.run_id}.json"]  # no temp file left


# --- data problems -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prepared_synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ddir = tmp_path_factory.mktemp("data")
    data.prepare("synthetic", ddir)
    return ddir


def _copy_data_dir(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_truncated_dataset_file_is_one_line(tmp_path: Path, prepared_synthetic: Path,
                                            tf_trap: dict[str, str]) -> None:
    ddir = _copy_data_dir(prepared_synthetic, tmp_path / "data")
    npz = ddir / "synthetic.npz"
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 3])
    (ddir / "synthetic.sha256").unlink()  # without a manifest the truncation itself must be detected
    results = tmp_path / "results"
    proc = tfparity("run", "--model", "baseline", "--dataset", "synthetic", "--data-dir", str(ddir),
                    "--results-dir", str(results), env=tf_trap)
    assert_one_line_error(proc, "truncated or corrupt", str(npz))
    assert_no_suite_dir(results)


def test_dataset_with_a_wrong_checksum_is_one_line(tmp_path: Path, prepared_synthetic: Path,
                                                   tf_trap: dict[str, str]) -> None:
    ddir = _copy_data_dir(prepared_synthetic, tmp_path / "data")
    manifest = ddir / "synthetic.sha256"
    manifest.write_text("0" * 64 + "  synthetic.npz\n")
    results = tmp_path / "results"
    proc = tfparity("run", "--model", "baseline", "--dataset", "synthetic", "--data-dir", str(ddir),
                    "--results-dir", str(results), env=tf_trap)
    assert_one_line_error(proc, "checksum mismatch")
    # Same with the manifest intact and one byte of the data changed.
    shutil.copy2(prepared_synthetic / "synthetic.sha256", manifest)
    raw = bytearray((ddir / "synthetic.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (ddir / "synthetic.npz").write_bytes(bytes(raw))
    proc = tfparity("run", "--model", "baseline", "--dataset", "synthetic", "--data-dir", str(ddir),
                    "--results-dir", str(results), env=tf_trap)
    assert_one_line_error(proc, "checksum mismatch")
    assert_no_suite_dir(results)


# Permission tests: as root, chmod stops nothing, so the CLI runs as nobody (setpriv) over a
# world-traversable scratch directory; as a normal user, chmod is enough.
AS_ROOT = os.geteuid() == 0


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
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(home), "MPLCONFIGDIR": str(home / "mpl"),
                "KERAS_HOME": str(home / "keras"), **(env or {})}
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if AS_ROOT else []
    return subprocess.run([*prefix, sys.executable, "-m", "harness", *args], cwd="/", env=full_env,
                          capture_output=True, text=True, timeout=300)


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
    trap_env = {"PYTHONPATH": tf_trap["PYTHONPATH"].replace(str(ROOT), "").strip(os.pathsep)}
    trap_copy = scratch / "trap"
    shutil.copytree(trap_env["PYTHONPATH"], trap_copy)  # the trap must be readable by the other user
    proc = run_unprivileged("run", "--model", "baseline", "--data-dir", str(ddir), "--results-dir", str(results),
                            home=scratch / "home", env={"PYTHONPATH": f"{trap_copy}{os.pathsep}{ROOT}"})
    ddir.chmod(0o700)
    assert_one_line_error(proc, "not readable", str(ddir))
    assert_no_suite_dir(results)


def test_data_dir_that_is_a_file_is_one_line(tmp_path: Path, tf_trap: dict[str, str]) -> None:
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("I am a file")
    results = tmp_path / "results"
    proc = tfparity("run", "--model", "baseline", "--data-dir", str(not_a_dir), "--results-dir", str(results),
                    env=tf_trap)
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


def test_injected_enospc_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An injected ENOSPC at the fsync of an atomic write: no result, no temp file, the error propagates."""
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as info:
        write_result(_valid_result(), tmp_path / "r.json")
    assert info.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def tiny_tmpfs() -> Iterator[Path]:
    """A real 1 MiB tmpfs (root only): a file system that really runs full."""
    if not AS_ROOT:
        pytest.skip("mounting a tmpfs needs root; the injected-ENOSPC test covers the write path")
    mount_point = Path(tempfile.mkdtemp(prefix="tfparity-full-"))
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        mount_point.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
        mount_point.rmdir()


def fill(directory: Path) -> Path:
    """Write until ENOSPC; returns the filler file."""
    filler = directory / "filler.bin"
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


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
    # The spec file appears right before the worker starts; TF's import leaves seconds to fill the disk.
    first_spec = wait_for(lambda: list(results.glob("*/specs/*.json")), 120, "the first run's spec", proc)
    fill(tiny_tmpfs)
    proc.wait(timeout=300)
    err = stderr_of(tmp_path)
    assert proc.returncode == 2, err
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
    wait_for(lambda: workers_under(suite_dir) and (suite_dir / "specs" / f"{second}.json").exists(), 120,
             "the second worker", proc)
    time.sleep(1.0)  # inside the second run (TF import / training)
    first_bytes = (suite_dir / f"{first}.json").read_bytes()
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    assert proc.wait(timeout=60) == 130
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
    (archived,) = (suite_dir / "attempts").iterdir()  # the interrupted attempt is kept, not deleted
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
    wait_for(lambda: workers_under(results), 120, "the first worker", proc)
    os.killpg(proc.pid, signal.SIGTERM)  # the worker is importing TensorFlow (3-5 s)
    time.sleep(0.2)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)  # an impatient second signal must not break the cleanup
    assert proc.wait(timeout=60) == 143
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
    wait_for(lambda: workers_under(suite_dir), 120, "the second worker", proc)
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)  # the harness only: no handler runs, its worker is orphaned
    proc.wait(timeout=30)
    # The orphan must not train on (and record a bogus failure once its output pipe is gone).
    assert_no_workers(suite_dir, within_s=10)
    time.sleep(2)
    final = assert_suite_dir_consistent(suite_dir)
    assert {k: r.status for k, r in final.items()} == {first: "ok"}


def test_resume_removes_temp_files_of_a_cut_short_write(tmp_path: Path) -> None:
    """A kill -9 inside an atomic write can leave only a hidden temp file: resume removes it."""
    from harness.runner import remove_stale_temp_files

    (tmp_path / "specs").mkdir()
    stale = [tmp_path / ".run.json.abc123.tmp", tmp_path / "specs" / ".run.json.x.tmp"]
    for path in stale:
        path.write_text('{"half": ')
    keep = write_json_atomic(tmp_path / "other.json", {"a": 1})
    assert sorted(remove_stale_temp_files(tmp_path)) == sorted(stale)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [keep]


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


# --- the local backend's failure paths, with stand-in worker executables (real processes, no TF) ---


def fake_worker(tmp_path: Path, script: str) -> str:
    """An executable that takes the worker's place (LocalBackend(python=...)); it gets the same argv."""
    path = tmp_path / "fake-python"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(path)


def test_a_worker_that_cannot_write_its_result_stops_the_suite(tmp_path: Path) -> None:
    """Exit 3 (disk full inside the worker): no bogus failed result (resume would skip it); one line."""
    from harness.backends.base import BackendError

    python = fake_worker(tmp_path, "echo \"tfparity-worker: cannot write result '$4': No space left on device\" >&2\n"
                                   "exit 3\n")
    out = tmp_path / "suite"
    out.mkdir()
    specs = [RunSpec(epochs=1, benchmark="baseline"), RunSpec(epochs=1, benchmark="batchnorm")]
    with pytest.raises(BackendError) as info:
        run_specs(specs, LocalBackend(python=python), out)
    message = str(info.value)
    assert "\n" not in message and "No space left on device" in message
    assert f"tfparity run --resume {out}" in message
    assert [p.name for p in out.glob("*.json")] == []  # no result: the run is still to do
    assert [p.name for p in (out / "specs").iterdir()] == [f"{specs[0].run_id}.json"]  # the suite stopped


def test_a_worker_dying_mid_write_leaves_no_temp_file(tmp_path: Path) -> None:
    """The worker is killed between its temp file and the link: the backend removes the temp file."""
    spec = RunSpec(epochs=1, benchmark="baseline")
    out = tmp_path / "suite"
    out.mkdir()
    python = fake_worker(tmp_path, f"printf '{{\"half\": ' > '{out}/.{spec.run_id}.json.x1y2z3.tmp'\nkill -9 $$\n")
    result = LocalBackend(python=python).run(spec, out)
    assert result.status == "failed" and "SIGKILL" in result.error
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{spec.run_id}.json", "specs"])
    assert load_result(out / f"{spec.run_id}.json") == result


def test_a_worker_refusing_its_spec_is_a_failure_that_quotes_it(tmp_path: Path) -> None:
    python = fake_worker(tmp_path, "echo 'tfparity-worker: error: spec x.json: epochs must be an integer >= 1' >&2\n"
                                   "exit 2\n")
    result = LocalBackend(python=python).run(RunSpec(epochs=1), tmp_path)
    assert result.status == "failed"
    assert result.error == "worker exited with code 2: spec x.json: epochs must be an integer >= 1"


# --- interruption before any run starts -------------------------------------------------------------


@pytest.fixture
def silent_engine(tmp_path: Path) -> Iterator[str]:
    """A Docker socket that accepts connections and never answers: the harness hangs in its engine check."""
    import socket
    import threading

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


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_before_the_suite_starts_is_one_line_and_writes_nothing(tmp_path: Path, silent_engine: str,
                                                                         tf_trap: dict[str, str], sig: int) -> None:
    if not shutil.which("docker"):
        pytest.skip("needs the docker CLI (no engine): the harness must hang in its engine check")
    results = tmp_path / "results"
    proc = start_tfparity("run", "--backend", "docker", "--model", "baseline", *QUICK, "--results-dir", str(results),
                          log_dir=tmp_path, env={"DOCKER_HOST": silent_engine, **tf_trap})
    def children() -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    docker_cli = wait_for(children, 60, "the engine check (a docker CLI child waiting on the socket)", proc)
    time.sleep(0.5)
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


def test_resume_reruns_only_unfinished_runs_and_keeps_every_old_attempt(tmp_path: Path) -> None:
    """ok/failed results are final; interrupted and corrupt ones are archived (never deleted) and re-run."""
    base = RunSpec(epochs=1, max_train_samples=640)
    specs = [base.replace(seed=s) for s in range(5)]
    out = tmp_path / "suite"
    out.mkdir()

    def result_for(spec: RunSpec, status: str) -> RunResult:
        return RunResult(run_id=spec.run_id, status=status, spec=spec.to_dict(), started_utc="2026-01-01T00:00:00Z",
                         finished_utc="2026-01-01T00:00:01Z", error=None if status == "ok" else status)

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
    assert sorted(Path(line).name for line in calls.read_text().split()) == sorted(
        f"{s.run_id}.json" for s in specs[2:])  # only the unfinished three ran
    for name in (f"{specs[0].run_id}.json", f"{specs[1].run_id}.json"):
        assert (out / name).read_bytes() == kept[name]  # final results untouched
    archived = sorted((out / "attempts").iterdir())
    assert sorted(p.read_bytes() for p in archived) == sorted(
        [kept[f"{specs[2].run_id}.json"], kept[f"{specs[3].run_id}.json"]])
    for spec in specs:
        load_result(out / f"{spec.run_id}.json")
