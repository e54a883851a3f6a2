"""The worker process: ``python -m harness.worker SPEC.json RESULT.json [--data-dir DIR]``.

Runs in a fresh process (local backend) or container (docker backend), so every run pays its own
TensorFlow import and gets a clean memory figure. It always tries to leave a result file: ``ok``
(exit 0) or ``failed`` with the error and traceback tail (exit 1). A spec that cannot be read is a
user error (exit 2, one line, nothing written). A result that cannot be written (disk full,
directory gone) is exit 3, one line, no file: the run is not finished and a resumed suite runs it
again. A container worker also watches its own deadline and its harness's heartbeat
(:mod:`harness.worker.watchdog`) and stops itself (exit 4) when nobody waits for it any more. Exit
codes, progress lines and the error prefix are the protocol of :mod:`harness.store.protocol`.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from harness.errors import ConfigError, UserError
from harness.spec.run_spec import RunSpec, load_spec
from harness.store.protocol import HEARTBEAT_STALE_S, WORKER_ERROR_PREFIX, ExitCode
from harness.worker import watchdog
from harness.worker.tf_setup import set_tf_environment

log = logging.getLogger(__name__)


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when the harness that started it dies (Linux).

    Without it a ``kill -9`` of ``tfparity`` leaves the worker training on as an orphan; it then
    records a bogus ``failed`` result (its progress pipe is gone) that a resumed suite would skip.
    Killed, it leaves no result (writes are atomic) and the resumed suite runs it again.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError) as exc:  # no prctl: best effort
        log.debug("prctl(PR_SET_PDEATHSIG) unavailable: %s", exc)
        return
    if os.getppid() != parent_pid:  # the harness died before the request took effect
        raise SystemExit(1)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m harness.worker", description="Run one tfparity spec.")
    parser.add_argument("spec", help="run spec JSON")
    parser.add_argument("result", help="where to write the result JSON (must not exist)")
    parser.add_argument("--data-dir", default=None, help="dataset directory (default: $TFPARITY_DATA_DIR or ./data)")
    parser.add_argument("--die-with-parent", type=int, metavar="PID", help=argparse.SUPPRESS)
    parser.add_argument("--heartbeat", help="stop (exit 4) when this file is not renewed for --heartbeat-stale-s")
    parser.add_argument("--heartbeat-stale-s", type=float, default=HEARTBEAT_STALE_S, help=argparse.SUPPRESS)
    parser.add_argument("--deadline-s", type=float, help="stop (exit 4) after this many seconds, whatever happens")
    return parser.parse_args(argv)


def _read_spec(args: argparse.Namespace) -> tuple[RunSpec, Path]:
    spec = load_spec(args.spec)
    result_path = Path(args.result)
    if result_path.exists():
        raise ConfigError(f"result {args.result!r} already exists; results are never overwritten")
    if not result_path.parent.is_dir():
        raise ConfigError(f"result directory {str(result_path.parent)!r} does not exist")
    return spec, result_path


def main(argv: list[str] | None = None) -> int:
    set_tf_environment()  # before anything can import TensorFlow
    args = _parse(argv)
    # First thing after the arguments: a worker whose harness is already gone must not import TF.
    watchdog.start(
        watchdog.Watch(
            heartbeat=Path(args.heartbeat) if args.heartbeat else None,
            stale_s=args.heartbeat_stale_s,
            deadline_s=args.deadline_s,
        )
    )
    if args.die_with_parent:
        die_with_parent(args.die_with_parent)
        # The local backend starts us with SIGINT/SIGTERM blocked (inherited mask): take them again
        # so that its SIGTERM stops us.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        spec, result_path = _read_spec(args)
    except UserError as exc:
        print(f"{WORKER_ERROR_PREFIX}error: {exc}", file=sys.stderr)
        return ExitCode.USER_ERROR
    from harness.worker.run import run

    try:
        result = run(spec, result_path, Path(args.data_dir) if args.data_dir else None)
    except OSError as exc:  # e.g. disk full while writing: the atomic write left no partial file
        print(f"{WORKER_ERROR_PREFIX}cannot write result {args.result!r}: {exc.strerror or exc}", file=sys.stderr)
        return ExitCode.CANNOT_WRITE
    if result.ok:
        return ExitCode.OK
    print(f"{WORKER_ERROR_PREFIX}run {spec.run_id} failed: {result.error}", file=sys.stderr)
    return ExitCode.RUN_FAILED
