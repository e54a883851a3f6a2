"""Helpers shared by the orchestrate tests (local and docker backends, their fault tests).

The real CLI started in its own session (so a test can signal its process group as a terminal
would), waiting on events (files, processes, containers, output lines), the house checks for
one-line errors, for "nothing written" and for suite directories whose every file is complete, and
a disk filler. Fixtures are in conftest.py.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.spec.run_spec import load_spec
from harness.store.layout import HEARTBEAT_SUFFIX, MANIFEST, SPECS_DIR, read_manifest
from harness.store.results import RunResult, load_result
from tests.helpers import ROOT, docker

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
AS_ROOT = os.geteuid() == 0


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
    # Files, not pipes: a full pipe would stall the CLI.
    with open(log_dir / "stdout.txt", "w") as out, open(log_dir / "stderr.txt", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness", *args],
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=err,
            text=True,
            start_new_session=True,
        )
    proc.log_dir = log_dir  # type: ignore[attr-defined]  # for failure messages
    return proc


def stderr_of(log_dir: Path) -> str:
    return (log_dir / "stderr.txt").read_text()


def wait_for(
    condition: Callable[[], Any], timeout_s: float, what: str, proc: subprocess.Popen[str] | None = None
) -> Any:
    """Poll ``condition`` until it is truthy (returned); fail on timeout or when ``proc`` exits first."""
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


def started(log_dir: Path, index: int, total: int, run_id: str) -> bool:
    """Whether the CLI's progress output says run ``index`` of ``total`` has started."""
    return f"[{index}/{total}] {run_id}: started" in stderr_of(log_dir)


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
        if path.parent.name == SPECS_DIR and path.name.endswith(HEARTBEAT_SUFFIX):
            assert path.stat().st_size == 0, path  # only its modification time speaks
            continue
        assert path.suffix == ".json", f"unexpected file {path}"
        if path.name == MANIFEST:
            read_manifest(suite_dir)
        elif path.parent.name == SPECS_DIR:
            load_spec(str(path))
        else:
            result = load_result(path)
            if path.parent == suite_dir:
                assert path.stem == result.run_id
                results[result.run_id] = result
    return results


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


def containers_of_run(run_id: str) -> list[str]:
    """Ids of every container (any state) the docker backend started for this run (its run-id label)."""
    out = docker("ps", "-aq", "--filter", f"label=org.tfparity.run-id={run_id}")
    return out.stdout.split()


def remove_containers_of(*run_ids: str) -> None:
    """Test cleanup that never fails: whatever a test (or a timeout) left, gone."""
    for run_id in run_ids:
        ids = containers_of_run(run_id)
        if ids:
            docker("rm", "-f", *ids)


def container_state(container: str) -> dict[str, Any] | None:
    out = docker("inspect", "--format", "{{json .State}}", container)
    if out.returncode != 0:
        return None
    import json

    state: dict[str, Any] = json.loads(out.stdout)
    return state


# A child process that runs specs through the docker backend and prints what happened, line by line:
# PROGRESS <run_id> <epoch> per epoch, then FINISHED, INTERRUPTED <signum> (exit 128+signum) or
# STOPPED <message> (exit 3). Tests wait on these lines (events), never on sleeps.
BACKEND_SCRIPT = """
import sys
from pathlib import Path
from harness.errors import RunInterrupted, SuiteStoppedError
from harness.orchestrate.backends import get_backend
from harness.orchestrate.runner import run_specs
from harness.spec.run_spec import RunSpec

specs = [RunSpec.from_dict(d) for d in {specs!r}]
backend = get_backend("docker", device="cpu", data_dir={data_dir!r}, {options})
backend.prepare(specs)

def event(e):
    if e.kind == "progress":
        print("PROGRESS", e.spec.run_id, e.progress.epoch, flush=True)

try:
    run_specs(specs, backend, Path({out_dir!r}), on_event=event)
except RunInterrupted as exc:
    print("INTERRUPTED", exc.signum, flush=True)
    sys.exit(exc.exit_code)
except SuiteStoppedError as exc:
    print("STOPPED", exc, flush=True)
    sys.exit(3)
print("FINISHED", flush=True)
"""


def start_backend_child(
    specs: list[Any], data_dir: Path, out_dir: Path, log_dir: Path, env: dict[str, str] | None = None, **options: Any
) -> subprocess.Popen[str]:
    """Start :data:`BACKEND_SCRIPT` (its own session; output in ``log_dir``); ``options`` go to get_backend."""
    script = BACKEND_SCRIPT.format(
        specs=[s.to_dict() for s in specs],
        data_dir=str(data_dir),
        out_dir=str(out_dir),
        options=", ".join(f"{k}={v!r}" for k, v in options.items()),
    )
    with open(log_dir / "stdout.txt", "w") as out, open(log_dir / "stderr.txt", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            stdout=out,
            stderr=err,
            text=True,
            start_new_session=True,
        )
    proc.log_dir = log_dir  # type: ignore[attr-defined]
    return proc


def stdout_of(log_dir: Path) -> str:
    return (log_dir / "stdout.txt").read_text()


class PauseOnStart:
    """Pauses the container of a run the moment the engine starts it (``docker events``, an event, not
    a poll), so that a test can act on a run that cannot finish meanwhile, however slow the machine.

    A run of a few seconds otherwise races the test: a busy engine answers ``docker ps`` "running"
    after the run has ended. Create it before the run starts; ``paused()`` waits for the freeze.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.container: str | None = None
        self.events = subprocess.Popen(
            ["docker", "events", "--filter", "type=container", "--filter", "event=start",
             "--filter", f"label=org.tfparity.run-id={run_id}", "--format", "{{.ID}}"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self._thread = threading.Thread(target=self._pause_first, daemon=True)
        self._thread.start()

    def _pause_first(self) -> None:
        assert self.events.stdout is not None
        line = self.events.stdout.readline().strip()
        if line:
            docker("pause", line)
            self.container = line

    def paused(self, timeout_s: float, proc: subprocess.Popen[str] | None = None) -> str:
        """The container's id once it is paused (and so still running); fails on timeout."""
        container: str = wait_for(
            lambda: self.container if (container_state(self.container or "-") or {}).get("Paused") else None,
            timeout_s,
            f"the container of {self.run_id} to be paused",
            proc,
        )
        return container

    def close(self) -> None:
        if self.events.poll() is None:
            self.events.kill()
            self.events.wait()


def freeze(pid: int) -> None:
    """SIGSTOP a local worker: it cannot finish while the test acts (SIGKILL still ends it)."""
    os.kill(pid, signal.SIGSTOP)
