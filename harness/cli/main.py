"""The ``tfparity`` entry point: one parser, one module per subcommand, one rule for user errors.

User errors (any :class:`harness.errors.UserError`, and argparse's own) are printed as exactly one
line on stderr with exit code 2, no traceback. SIGINT/SIGTERM stop the current run, record it as
``interrupted`` and exit 130/143; finished results are untouched. A reader of stderr that goes away
(``tfparity run 2>&1 | head``, a parent script that died) is the same kind of stop: the broken pipe
that Python reports instead of SIGPIPE stops the run as interrupted by SIGPIPE (exit 141), never a
suite that vanishes without recording the run it was in.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from types import FrameType, ModuleType
from typing import Any, NoReturn, TextIO

from harness import __version__
from harness.errors import RunInterrupted, UserError

log = logging.getLogger(__name__)

EXIT_USER_ERROR = 2
# Subcommand -> module (harness.cli.<module>): each has HELP, add_arguments(parser), run(args) -> int.
# Their heavy imports (TensorFlow never; scipy, matplotlib, python-on-whales) happen inside run().
COMMANDS = {
    "run": "run",
    "list": "list",
    "show": "show",
    "data": "data",
    "compare": "compare",
    "report": "report",
    "history": "history",
    "docker": "docker",
    "fleet": "fleet",
}


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse prints usage + error on two lines; the house rule is one line, exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"tfparity: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_USER_ERROR)


def command_module(name: str) -> ModuleType:
    return importlib.import_module(f"harness.cli.{COMMANDS[name]}")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="tfparity", description="Do TensorFlow's hardware paths agree, and how fast is each?"
    )
    parser.add_argument("--version", action="version", version=f"tfparity {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: worker output)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineArgumentParser)
    sub.required = True
    for name in COMMANDS:
        module = command_module(name)
        p = sub.add_parser(name, help=module.HELP, description=getattr(module, "DESCRIPTION", None))
        module.add_arguments(p)
    return parser


_interrupted: list[int] = []


class _StderrReaderGuard:
    """sys.stderr whose first broken pipe becomes RunInterrupted(SIGPIPE): the backend that is
    following a run catches it like a Ctrl-C (stops the worker, records the run interrupted). The
    descriptor then points at /dev/null so that the cleanup's own messages cannot fail again."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._reader_gone()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._reader_gone()

    def _reader_gone(self) -> None:
        os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())
        if not _interrupted:
            _interrupted.append(signal.SIGPIPE)
            raise RunInterrupted(signal.SIGPIPE)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    if _interrupted:
        # Already stopping: the cleanup under way (stop the worker/container, record the run as
        # interrupted; bounded by the backend's grace period) must not be cut short by a second
        # Ctrl-C or by make forwarding the signal again. os.write: safe inside a signal handler.
        os.write(2, b"tfparity: still stopping the current run, please wait\n")
        return
    _interrupted.append(signum)
    raise RunInterrupted(signum)


def main(argv: list[str] | None = None) -> int:
    # First thing: building the parser imports modules that take a moment on a busy machine; a Ctrl-C
    # or SIGTERM in that window must give the same one-line exit 130/143, not a traceback.
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    stderr = sys.stderr
    sys.stderr = _StderrReaderGuard(stderr)
    try:
        # TensorFlow's C++ start-up chatter would break the one-line error contract of this process;
        # workers inherit this unless the user set it.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        args = build_parser().parse_args(argv)
        level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
        return int(command_module(args.command).run(args))
    except RunInterrupted as exc:  # outside a run (start-up, data check, compare/report)
        print(f"tfparity: interrupted by {signal.Signals(exc.signum).name}", file=sys.stderr)
        return exc.exit_code
    except UserError as exc:
        print(f"tfparity: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # e.g. `tfparity show x.json | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        sys.stderr = stderr
        if _interrupted:
            # Stopping for a signal: on its way out Python restores the default handlers, so one more
            # Ctrl-C/SIGTERM there would kill the process and replace the exit code 130/143; ignore it.
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)
