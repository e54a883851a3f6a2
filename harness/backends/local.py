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

from harness.backends.base import (
    EXIT_CANNOT_WRITE,
    BackendError,
    LogTail,
    ProgressFn,
    RunInterrupted,
    cannot_write_error,
    finish_run,
    remove_partial_writes,
    result_path,
    worker_says,
    write_spec,
)
from harness.config import RunSpec
from harness.results import RunResult
from harness.timeutil import utc_now

log = logging.getLogger(__name__)

GPU_PROBE = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
TERMINATE_GRACE_S = 10.0


class LocalBackend:
    name = "local"

    def __init__(self, *, data_dir: str | os.PathLike[str] | None = None, python: str | None = None) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.python = python or sys.executable

    def prepare(self, specs: list[RunSpec]) -> None:
        """A ``gpu`` path needs a GPU visible to TensorFlow here; checked once, up front."""
        if any(s.path.device == "gpu" for s in specs):
            try:
                out = subprocess.run([self.python, "-c", GPU_PROBE], capture_output=True, text=True, timeout=120,
                                     env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise BackendError(f"cannot probe for GPUs with {self.python!r}: {exc}") from None
            count = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
            if out.returncode != 0 or not count.isdigit():
                raise BackendError(f"cannot probe for GPUs: TensorFlow failed to import ({out.stderr.strip()[-200:]})")
            if int(count) == 0:
                raise BackendError(
                    "--device gpu: TensorFlow sees no GPU on this host (CPU-only build or no CUDA device); "
                    "use --device cpu, or --backend docker --device gpu on a host with the NVIDIA runtime")

    def command(self, spec_path: Path, out_path: Path) -> list[str]:
        # --die-with-parent: a kill -9 of the harness must not leave an orphan worker training on.
        cmd = [self.python, "-m", "harness.worker", str(spec_path), str(out_path), "--die-with-parent",
               str(os.getpid())]
        if self.data_dir is not None:
            cmd += ["--data-dir", str(self.data_dir)]
        return cmd

    def run(self, spec: RunSpec, out_dir: Path, *, progress: ProgressFn | None = None,
            timeout_s: float | None = None) -> RunResult:
        out_dir = Path(out_dir)
        spec_path = write_spec(out_dir, spec)
        out_path = result_path(out_dir, spec)
        started_utc = utc_now()
        tail = LogTail(spec.run_id, progress, prefix=f"[{spec.run_id}] ")
        env = {**os.environ, "TFPARITY_BACKEND": "local", "PYTHONUNBUFFERED": "1"}
        # Make the harness importable by the child even when it runs from a source checkout.
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        # SIGINT/SIGTERM stay pending until the try below knows the child: a Ctrl-C during Popen would
        # otherwise leave a worker running that nobody stops (the worker unblocks them first thing).
        saved_mask = _block_stop_signals()
        try:
            # Own session: a terminal Ctrl-C reaches only us; we stop the child deliberately.
            proc = subprocess.Popen(self.command(spec_path, out_path), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace", env=env,
                                    start_new_session=True)
        except BaseException:
            _restore_mask(saved_mask)
            raise
        timed_out = threading.Event()

        def on_timeout() -> None:
            timed_out.set()
            _kill_group(proc, signal.SIGKILL)

        timer = threading.Timer(timeout_s, on_timeout) if timeout_s else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            _restore_mask(saved_mask)  # a signal that arrived meanwhile is raised here
            assert proc.stdout is not None
            for line in proc.stdout:
                tail.feed(line)
            returncode = proc.wait()
        except RunInterrupted as exc:
            _stop(proc)
            remove_partial_writes(out_path)
            finish_run(spec, out_dir, started_utc=started_utc, returncode=proc.returncode, tail=list(tail.lines),
                       reason=f"interrupted by {_signame(exc.signum)}", status="interrupted")
            raise
        finally:
            if timer:
                timer.cancel()
            if proc.poll() is None:  # any other exit path: never leave a worker behind
                _stop(proc)
            remove_partial_writes(out_path)
        reason = f"timed out after {timeout_s:g} s (worker killed)" if timed_out.is_set() else None
        says = worker_says(tail.lines)
        if returncode == EXIT_CANNOT_WRITE and not out_path.exists():
            raise cannot_write_error(says, out_dir)
        if reason is None and returncode and says and not out_path.exists():
            reason = f"worker exited with code {returncode}: {says}"
        return finish_run(spec, out_dir, started_utc=started_utc, returncode=returncode, tail=list(tail.lines),
                          reason=reason)


def _block_stop_signals() -> set[int] | None:
    """Block SIGINT/SIGTERM (main thread only, where Python runs handlers); returns the old mask."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def _restore_mask(saved: set[int] | None) -> None:
    if saved is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, saved)


def _signame(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the worker's process group, then SIGKILL after a grace period."""
    _kill_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=TERMINATE_GRACE_S)
    except subprocess.TimeoutExpired:
        _kill_group(proc, signal.SIGKILL)
        proc.wait()
