"""The ``local`` backend: each run in its own ``python -m harness.worker`` subprocess on this host.

A subprocess per run isolates crashes, out-of-memory kills and TensorFlow's global state (dtype
policy, determinism, RSS that ``fit`` never returns), at the cost of one TF import per run.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from harness.errors import BackendError, RunInterrupted
from harness.orchestrate.backends.base import Backend, Execution, MachineryFailure
from harness.orchestrate.backends.signals import block_stop_signals, restore_mask
from harness.spec.run_spec import RunSpec
from harness.store.protocol import WORKER_MODULE, worker_args

log = logging.getLogger(__name__)

GPU_PROBE = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
TERMINATE_GRACE_S = 10.0
REPO_ROOT = Path(__file__).resolve().parents[3]


class LocalBackend(Backend):
    name = "local"

    def __init__(self, *, data_dir: str | os.PathLike[str] | None = None, python: str | None = None) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.python = python or sys.executable

    def prepare(self, specs: list[RunSpec]) -> None:
        """A ``gpu`` path needs a GPU visible to TensorFlow here; checked once, up front."""
        if any(s.path.device == "gpu" for s in specs):
            self._require_gpu()

    def _require_gpu(self) -> None:
        try:
            out = subprocess.run(
                [self.python, "-c", GPU_PROBE],
                capture_output=True,
                text=True,
                timeout=120,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BackendError(f"cannot probe for GPUs with {self.python!r}: {exc}") from None
        count = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
        if out.returncode != 0 or not count.isdigit():
            raise BackendError(f"cannot probe for GPUs: TensorFlow failed to import ({out.stderr.strip()[-200:]})")
        if int(count) == 0:
            raise BackendError(
                "--device gpu: TensorFlow sees no GPU on this host (CPU-only build or no CUDA device); "
                "use --device cpu, or --backend docker --device gpu on a host with the NVIDIA runtime"
            )

    def command(self, spec_path: Path, out_path: Path) -> list[str]:
        data_dir = str(self.data_dir) if self.data_dir is not None else None
        # --die-with-parent: a kill -9 of the harness must not leave an orphan worker training on.
        return [
            self.python,
            "-m",
            WORKER_MODULE,
            *worker_args(str(spec_path), str(out_path), data_dir),
            "--die-with-parent",
            str(os.getpid()),
        ]

    def execute(self, run: Execution, timeout_s: float | None) -> None:
        env = {**os.environ, "TFPARITY_BACKEND": "local", "PYTHONUNBUFFERED": "1"}
        # Make the harness importable by the child even when it runs from a source checkout.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        # SIGINT/SIGTERM stay pending until the try below knows the child: a Ctrl-C during Popen would
        # otherwise leave a worker running that nobody stops (the worker unblocks them first thing).
        saved_mask = block_stop_signals()
        try:
            # Own session: a terminal Ctrl-C reaches only us; we stop the child deliberately.
            proc = subprocess.Popen(
                self.command(run.spec_path, run.out_path),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                env=env,
                start_new_session=True,
            )
        except OSError as exc:  # the interpreter is gone or not executable: not the benchmark's failure
            restore_mask(saved_mask)
            raise MachineryFailure(
                f"cannot start the worker with {self.python!r}: {exc.strerror or exc}", "fix the Python environment"
            ) from None
        except BaseException:
            restore_mask(saved_mask)
            raise
        timed_out = threading.Event()
        timer = _kill_after(proc, timeout_s, timed_out)
        try:
            restore_mask(saved_mask)  # a signal that arrived meanwhile is raised here
            assert proc.stdout is not None
            for line in proc.stdout:
                run.tail.feed(line)
            run.returncode = proc.wait()
        except RunInterrupted:
            _stop(proc)
            run.returncode = proc.returncode
            raise
        finally:
            if timer:
                timer.cancel()
            if proc.poll() is None:  # any other exit path: never leave a worker behind
                _stop(proc)
        if timed_out.is_set():
            run.reason = f"timed out after {timeout_s:g} s (worker killed)"
        elif run.returncode == -signal.SIGTERM and not run.out_path.exists():
            # We stop workers only on our own interrupt (above) and our timeout (SIGKILL); the kernel
            # never sends SIGTERM. Someone stopped it: not the benchmark's failure. (A SIGKILL stays a
            # failure here: without a cgroup, the kernel's out-of-memory killer is a likely sender.)
            raise MachineryFailure("its worker was stopped from outside (SIGTERM)")


def _kill_after(proc: subprocess.Popen[str], timeout_s: float | None, flag: threading.Event) -> threading.Timer | None:
    """A daemon timer that SIGKILLs the worker's process group after ``timeout_s`` (and sets ``flag``)."""
    if not timeout_s:
        return None

    def on_timeout() -> None:
        flag.set()
        _kill_group(proc, signal.SIGKILL)

    timer = threading.Timer(timeout_s, on_timeout)
    timer.daemon = True
    timer.start()
    return timer


def _kill_group(proc: subprocess.Popen[str], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the worker's process group, then SIGKILL after a grace period."""
    _kill_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=TERMINATE_GRACE_S)
    except subprocess.TimeoutExpired:
        _kill_group(proc, signal.SIGKILL)
        proc.wait()
