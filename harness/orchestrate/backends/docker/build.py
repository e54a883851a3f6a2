"""``docker build`` with the classic builder, its progress shown as it goes.

A cold build of the CPU image takes minutes (pip installs TensorFlow, then the venv is copied to the
final stage); a first run on a fresh engine must not sit silent meanwhile. The builder's output is
read line by line: a ``Step N/M`` that lasts (not a cached one) becomes one notice, a long step a
reminder every :data:`REMIND_EVERY_S`, and the whole log is kept for the one-line error of a failed
build.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness.errors import BackendError
from harness.orchestrate.backends.docker.engine import call, client, explain_docker_error

log = logging.getLogger(__name__)

Notify = Callable[[str], None]
# A step is announced once it has lasted ANNOUNCE_AFTER_S (cached steps pass in milliseconds and
# stay silent), then reminded of every REMIND_EVERY_S while it lasts.
ANNOUNCE_AFTER_S = 3.0
REMIND_EVERY_S = 30.0
STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")


class BuildProgress:
    """Turns builder output into a few notices: each step that takes a while, and reminders while it lasts."""

    def __init__(self, tag: str, notify: Notify | None) -> None:
        self.tag = tag
        self.notify = notify or (lambda text: log.info("%s", text))
        self.started = self._step_started = self._last_notice = time.monotonic()
        self.step = "starting"
        self._announced = False

    def line(self, text: str) -> None:
        found = STEP.match(text.strip())
        if found:
            number, total, instruction = found.groups()
            instruction = " ".join(instruction.split())
            instruction = instruction if len(instruction) <= 60 else instruction[:57] + "..."
            self.step = f"step {number}/{total} ({instruction})"
            self._step_started, self._announced = time.monotonic(), False
        self.tick()

    def tick(self) -> None:
        now = time.monotonic()
        if not self._announced and now - self._step_started >= ANNOUNCE_AFTER_S:
            self._announced = True
            self._say("", now)
        elif self._announced and now - self._last_notice >= REMIND_EVERY_S:
            self._say(", still running", now)

    def _say(self, suffix: str, now: float) -> None:
        self._last_notice = now
        self.notify(f"building image {self.tag}: {self.step}{suffix} [{now - self.started:.0f} s]")


def legacy_build(
    what: str,
    context: Path,
    *,
    tag: str,
    build_args: dict[str, str],
    network: str | None,
    no_cache: bool,
    notify: Notify | None = None,
) -> None:
    """``docker build`` with the classic builder (python-on-whales' ``docker.build`` needs buildx).

    Like ``docker.legacy_build``, plus ``--force-rm``: a failed step must not leave its intermediate
    container behind. ``DOCKER_BUILDKIT=0`` stops a newer CLI from looking for buildx.
    """
    docker_cmd = [str(part) for part in call(what, lambda: client().client_config.docker_cmd)]
    cmd = [*docker_cmd, "build", "--force-rm", "--file", str(context / "Dockerfile"), "--tag", tag]
    for key, value in build_args.items():
        cmd += ["--build-arg", f"{key}={value}"]
    if network:
        cmd += ["--network", network]
    if no_cache:
        cmd.append("--no-cache")
    cmd.append(str(context))
    returncode, output = run_with_progress(what, cmd, BuildProgress(tag, notify))
    if returncode != 0:
        raise BackendError(explain_docker_error(what, cmd, returncode, output))


def run_with_progress(what: str, cmd: list[str], progress: BuildProgress) -> tuple[int, str]:
    """Run ``cmd`` (stdout and stderr merged), feeding each line to ``progress``; (exit code, output).

    Lines are read by a thread so that this (main) thread can remind and take signals; whatever ends
    this function early (Ctrl-C) kills the builder CLI first, which cancels the build.
    """
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    try:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", env=env
        )
    except OSError as exc:
        raise BackendError(f"{what}: cannot run {cmd[0]!r}: {exc.strerror or exc}") from None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(proc, lines), daemon=True, name="docker-build-output").start()
    output: list[str] = []
    try:
        while True:
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                progress.tick()
                continue
            if line is None:
                break
            output.append(line)
            progress.line(line)
        return proc.wait(), "".join(output)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)
    lines.put(None)
