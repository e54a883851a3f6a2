"""The worker's own deadline and its watch on the harness's heartbeat (GitHub issue 11): a worker
whose harness is gone stops itself (exit 4, one line, no result), and one whose harness keeps the
heartbeat fresh is never stopped. Real worker processes, real files."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.spec.run_spec import RunSpec
from harness.store.jsonio import write_json
from harness.store.protocol import WORKER_ERROR_PREFIX, ExitCode, worker_args
from harness.worker.watchdog import Watch
from tests.helpers import ROOT


def test_a_fresh_heartbeat_and_no_deadline_never_stop_the_worker(tmp_path: Path) -> None:
    beat = tmp_path / "run.heartbeat"
    beat.touch()
    watch = Watch(heartbeat=beat, stale_s=60)
    now = beat.stat().st_mtime
    assert watch.reason_to_stop(started=0.0, now_monotonic=10_000.0, now_wall=now + 59) is None
    assert Watch().reason_to_stop(0.0, 1e9, 1e9) is None  # nothing to watch


def test_a_stale_or_missing_heartbeat_or_a_passed_deadline_stops_it(tmp_path: Path) -> None:
    beat = tmp_path / "run.heartbeat"
    beat.touch()
    mtime = beat.stat().st_mtime
    stale = Watch(heartbeat=beat, stale_s=60).reason_to_stop(0.0, 1.0, mtime + 61)
    assert stale is not None and "no heartbeat from the harness for 61 s" in stale
    gone = Watch(heartbeat=tmp_path / "absent.heartbeat").reason_to_stop(0.0, 1.0, mtime)
    assert gone is not None and "is gone" in gone
    late = Watch(deadline_s=30).reason_to_stop(started=100.0, now_monotonic=131.0, now_wall=mtime)
    assert late is not None and "deadline of 30 s passed" in late
    assert Watch(deadline_s=30).reason_to_stop(started=100.0, now_monotonic=129.0, now_wall=mtime) is None


def start_worker(tmp_path: Path, spec: RunSpec, **watch: object) -> tuple[subprocess.Popen[str], Path]:
    spec_path = write_json(tmp_path / "spec.json", spec.to_dict())
    result = tmp_path / "out" / f"{spec.run_id}.json"
    result.parent.mkdir()
    args = worker_args(str(spec_path), str(result), **watch)  # type: ignore[arg-type]
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.worker", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, result


def finish(proc: subprocess.Popen[str], timeout_s: float) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:  # a timeout still cleans up
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("watch", ["deadline", "heartbeat"])
def test_the_worker_stops_itself_with_exit_4_and_one_line_and_writes_nothing(tmp_path: Path, watch: str) -> None:
    # A long run: it cannot end by itself before its watchdog stops it (the watchdog starts before TF).
    spec = RunSpec(epochs=500, max_train_samples=640)
    options: dict[str, object] = (
        {"deadline_s": 2}
        if watch == "deadline"
        else {
            "heartbeat": str(tmp_path / "never-renewed.heartbeat"),
            "heartbeat_stale_s": 2,
        }
    )
    if watch == "heartbeat":
        (tmp_path / "never-renewed.heartbeat").touch()
    started = time.monotonic()
    proc, result = start_worker(tmp_path, spec, **options)
    _out, err = finish(proc, timeout_s=300)
    assert proc.returncode == ExitCode.ABANDONED, err[-2000:]
    ours = [line for line in err.splitlines() if line.startswith(WORKER_ERROR_PREFIX)]
    assert len(ours) == 1 and "stopping:" in ours[0], err[-2000:]
    assert ("deadline of 2 s passed" if watch == "deadline" else "no heartbeat from the harness") in ours[0]
    assert list(result.parent.iterdir()) == []  # no result: the harness (or a resume) decides
    assert time.monotonic() - started < 290


@pytest.mark.slow
def test_a_heartbeat_renewed_by_a_live_harness_lets_the_run_finish(tmp_path: Path) -> None:
    beat = tmp_path / "run.heartbeat"
    beat.touch()
    stop = threading.Event()

    def harness() -> None:  # what DockerBackend._follow does, faster
        while not stop.wait(0.5):
            os.utime(beat)

    renewer = threading.Thread(target=harness, daemon=True)
    renewer.start()
    try:
        # Stale after 3 s of silence: the run takes far longer than that (TF import alone: ~5 s).
        proc, result = start_worker(
            tmp_path, RunSpec(epochs=2, max_train_samples=640), heartbeat=str(beat), heartbeat_stale_s=3
        )
        _out, err = finish(proc, timeout_s=600)
    finally:
        stop.set()
        renewer.join()
    assert proc.returncode == ExitCode.OK, err[-2000:]
    assert result.exists()
