"""What a finished run container says happened: the benchmark's exit, an out-of-memory kill, or a
failure of the machinery (engine gone, image gone, stopped from outside), named by probing the engine."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from harness.errors import BackendError
from harness.orchestrate.backends.base import Execution, MachineryFailure
from harness.orchestrate.backends.docker.engine import engine_address, engine_answers, image_exists
from harness.orchestrate.backends.docker.limits import human_bytes
from harness.orchestrate.backends.docker.settings import HEALTH_TIMEOUT_S
from harness.store.protocol import ExitCode, describe_exit, last_worker_error

START = "start the engine"


class EngineGone(MachineryFailure):
    """The engine stopped answering: nothing can be cleaned up there until it is back."""


def outcome(
    state: dict[str, Any], run: Execution, memory_limit: str | None, diagnose: Callable[[str], MachineryFailure]
) -> tuple[int | None, str | None]:
    """The exit code and, when the code alone says too little, the reason.

    Raises :class:`MachineryFailure` when the container ended for a reason outside the benchmark.
    """
    code = state.get("exit_code")
    if state.get("oom_killed"):
        limit = f" (memory limit {human_bytes(memory_limit)})" if memory_limit else ""
        return code, f"container killed by the out-of-memory killer{limit} (exit {code})"
    why = None if run.out_path.exists() else not_the_benchmark(state, run.tail.lines, "its")
    if why is None:
        return code, None
    raise diagnose(why)


def not_the_benchmark(state: dict[str, Any], log_lines: Iterable[str], whose: str) -> str | None:
    """Why a container that ended without its result ended for a reason outside the benchmark, or None
    when its exit is the benchmark's own. ``whose`` names it in the sentence ("its", "its worker-1").

    The chief of a multi-worker run and its other members are judged by this one rule.
    """
    code = state.get("exit_code")
    if state.get("oom_killed") or code not in (ExitCode.KILLED, ExitCode.TERMINATED, ExitCode.ABANDONED):
        return None
    if code == ExitCode.ABANDONED:  # we were silent for longer than it waits: suspended or stuck
        says = last_worker_error(log_lines) or describe_exit(code)
        return f"{whose} worker stopped itself: {says}"
    # Neither signal comes from the benchmark: SIGTERM never comes from the kernel, and the
    # kernel's out-of-memory kills are recorded (oom_killed). Someone stopped or removed the
    # container (docker stop/kill/rm -f), or the engine did on its way down.
    name = "SIGTERM" if code == ExitCode.TERMINATED else "SIGKILL without an out-of-memory record"
    return f"{whose} container was stopped from outside (exit {code}: {name})"


def machinery_failure(what: str, image: str, image_id: str | None) -> MachineryFailure:
    """Name the failure of the machinery behind ``what``: engine gone, image gone, or ``what`` itself."""
    if not engine_answers(HEALTH_TIMEOUT_S):  # what was seen is only a consequence
        return EngineGone(f"the Docker engine at {engine_address()} stopped answering", START)
    try:
        present = not image_id or image_exists(image_id)
    except BackendError:
        present = True  # cannot tell: say what was seen
    if not present:
        return MachineryFailure(f"image {image} ({str(image_id)[:19]}) is no longer in the engine; {what}")
    return MachineryFailure(what)
