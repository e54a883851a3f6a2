"""What a real `tfparity run` leaves behind (issue 11): files another user can read (the umask, not
0600), and a worker killed by a plain SIGKILL reported as exactly that, never as out-of-memory."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from harness.spec.run_spec import RunSpec
from harness.store.layout import MANIFEST, SPECS_DIR
from harness.store.results import RunResult, load_result, result_files
from tests.orchestrate.support import QUICK, start_tfparity, started, stderr_of, wait_for

pytestmark = pytest.mark.slow


def worker_pids(suite_dir: Path) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"harness.worker {suite_dir}"], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


@pytest.fixture(scope="module")
def killed_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `bn` suite run under umask 022 whose second worker gets a plain SIGKILL (no memory pressure)."""
    tmp = tmp_path_factory.mktemp("killed")
    results = tmp / "results"
    second = RunSpec(benchmark="batchnorm", epochs=1, max_train_samples=640, suite="bn").run_id
    before = os.umask(0o022)  # the CLI inherits it
    try:
        proc = start_tfparity("run", "--suite", "bn", *QUICK, "--results-dir", str(results), log_dir=tmp)
    finally:
        os.umask(before)
    try:
        suite_dir = wait_for(lambda: next(iter(results.glob("bn-*")), None), 120, "the suite directory", proc)
        wait_for(lambda: started(tmp, 2, 2, second), 600, "the second run", proc)
        (pid,) = wait_for(lambda: worker_pids(suite_dir), 120, "the second worker", proc)
        os.kill(pid, signal.SIGKILL)  # what `kill -9 <worker>` does
        assert proc.wait(timeout=300) == 1, stderr_of(tmp)[-3000:]  # a failed run: exit 1
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    return suite_dir


def test_a_plain_sigkill_of_the_worker_is_not_called_out_of_memory(killed_suite: Path) -> None:
    results: dict[str, RunResult] = {r.run_spec.benchmark: r for r in map(load_result, result_files(killed_suite))}
    assert results["baseline"].status == "ok"
    killed = results["batchnorm"]
    assert killed.status == "failed"
    assert killed.error is not None and killed.error.startswith("worker killed by SIGKILL"), killed.error
    assert "memory" not in killed.error.lower() and "oom" not in killed.error.lower()


def test_results_specs_and_the_manifest_honour_the_umask(killed_suite: Path) -> None:
    files = [killed_suite / MANIFEST, *(killed_suite / SPECS_DIR).glob("*.json"), *result_files(killed_suite)]
    assert len(files) == 1 + 2 + 2
    modes = {str(p.relative_to(killed_suite)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert set(modes.values()) == {"0o644"}, modes  # readable by another user (a CI artifact uploader)
