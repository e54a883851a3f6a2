"""Workers across containers: the N containers of one multi-worker run, started, followed and ended together.

A run with ``workers`` N >= 2 is N ``docker compose run`` containers of the run's service under the run's
compose project (so the cleanup, the owner labels and the sweep of the next start cover every one of
them). Each gets its member's ``TF_CONFIG`` (:mod:`harness.spec.cluster`). They share the **chief's
network namespace**: the chief keeps the service's ``network_mode: none`` (loopback only, no bridge,
nothing off the host), every other member joins it (``network_mode: container:<chief>``, an override
file) and reaches the others on 127.0.0.1 with distinct ports.

The chief writes its result to a staging file (``specs/<run_id>.chief.json``); the backend adds every
member's provenance (:class:`~harness.store.members.Member`) and writes the run's result from it, so a
result is still written once. The other members write theirs inside their container (discarded).

Ending together: a member that exits non-zero fails the run at once (the others are killed: their
collectives would wait for it, or fail within 0-10 s: a reset connection at once, TensorFlow's
coordination service's heartbeat later); once the harness has stopped a running chief, a result the chief
still wrote (the failure its collectives saw) is not the run's: the harness's reason stands;
the run's timeout kills all; a member still running when the chief has ended is stopped after
:data:`AFTER_CHIEF_S`. Any member, the chief or another, that vanished, was stopped from outside
(SIGKILL without an out-of-memory record, SIGTERM) or stopped itself for a silent harness is the
machinery's failure, as for one container (:func:`.outcome.not_the_benchmark`): the run is recorded
``interrupted`` and a resume runs it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import ResultError
from harness.orchestrate.backends.base import Execution, LogTail
from harness.orchestrate.backends.docker import compose
from harness.orchestrate.backends.docker.outcome import not_the_benchmark
from harness.orchestrate.backends.docker.settings import CONTAINER_RESULTS, LABEL_TASK
from harness.spec.cluster import Cluster, Task, loopback
from harness.store.layout import SPECS_DIR, remove_partial_writes
from harness.store.members import Member
from harness.store.protocol import last_worker_error, signal_name
from harness.store.results import load_result, write_result

log = logging.getLogger(__name__)

POLL_S = 0.5
AFTER_CHIEF_S = 60.0  # members end with the chief (TF's shutdown barrier); a member still up after this is stuck
MEMBER_RESULT = "/tmp/member-result.json"  # non-chief members' results stay in their container's tmpfs


def staged_result(out_dir: Path, run_id: str) -> Path:
    """Where the chief writes (the specs directory: never read as a result)."""
    return out_dir / SPECS_DIR / f"{run_id}.chief.json"


@dataclass
class Container:
    """One member being followed."""

    task: Task
    address: str
    name: str
    tail: LogTail
    reader: threading.Thread | None = None
    state: dict[str, Any] | None = None  # the final state once it ended
    container_id: str = ""
    outcome: str = "not started"

    @property
    def ended(self) -> bool:
        return self.state is not None


@dataclass
class Group:
    """The containers of one multi-worker run (the chief first)."""

    project: str
    run: Execution
    cluster: Cluster
    members: list[Container] = field(default_factory=list)
    # The harness stopped the chief while it ran (a member failed, timeout, Ctrl-C): whatever the chief
    # wrote from then on is a consequence (its collectives fail as soon as a peer is gone), not the run's word.
    stopped_chief: bool = False

    @classmethod
    def plan(cls, project: str, run: Execution, prefix: str) -> Group:
        cluster = loopback(run.spec.path.workers)
        members = []
        for task, address in zip(cluster.tasks, cluster.addresses, strict=True):
            name = project if task.type == "chief" else f"{project}-{task.label}"
            tail = run.tail if task.type == "chief" else LogTail(run.spec.run_id, None, f"{prefix}{task.label}: ")
            members.append(Container(task, address, name, tail))
        return cls(project, run, cluster, members)

    @property
    def chief(self) -> Container:
        return self.members[0]

    def start(self, dc: Any, member_dc: Any, start: Callable[..., None], command: Callable[[str], list[str]]) -> None:
        """Start the chief, then every member in its namespace; each with its TF_CONFIG and task label."""
        chief_result = f"{CONTAINER_RESULTS}/{SPECS_DIR}/{self.run.spec.run_id}.chief.json"
        for box in self.members:
            is_chief = box.task.type == "chief"
            start(
                dc if is_chief else member_dc,
                box.name,
                self.run,
                command(chief_result if is_chief else MEMBER_RESULT),
                envs={"TF_CONFIG": self.cluster.tf_config(box.task)},
                labels={LABEL_TASK: box.task.label},
            )
            box.outcome = "running"
            box.reader = threading.Thread(
                target=compose.stream_logs, args=(dc, box.name, box.tail), daemon=True, name=f"docker-logs-{box.name}"
            )
            box.reader.start()

    def follow(
        self, dc: Any, timeout_s: float | None, renew: Callable[[], None], machinery: Callable[[str], Exception]
    ) -> str | None:
        """Until the chief has ended and the members with it; returns why the run failed (None: the
        chief's exit and result say it). Raises ``machinery(what)`` for a container removed or stopped
        from outside: a member as the chief (:func:`.outcome.not_the_benchmark`)."""
        deadline = time.monotonic() + timeout_s if timeout_s else None
        chief_ended_at: float | None = None
        while True:
            renew()
            time.sleep(POLL_S)  # the main thread stays interruptible: a signal handler raises here
            for box in self.members:
                self._check(dc, box, machinery)
            failed = self.first_failure()
            if failed is not None and not self.chief.ended:
                self.stop_all(dc)
                self._judge(failed, machinery)
                return self.member_failed(failed)
            if self.chief.ended and chief_ended_at is None:
                chief_ended_at = time.monotonic()
            if all(b.ended for b in self.members):
                if failed is None:
                    return None
                # A member failed before the chief did: the chief's failure is its consequence.
                self.stopped_chief = True
                self._judge(failed, machinery)
                return self.member_failed(failed)
            if chief_ended_at is not None and time.monotonic() - chief_ended_at > AFTER_CHIEF_S:
                self.stop_all(dc)
                return None
            if deadline is not None and time.monotonic() > deadline:
                self.stop_all(dc)
                return f"timed out after {timeout_s:g} s ({len(self.members)} worker containers killed)"

    def first_failure(self) -> Container | None:
        """The member (not the chief) that failed first, when it failed before the chief did (by the
        engine's finish times); None when no member failed or the chief failed first."""
        failed = [b for b in self.members if b.ended and (b.state or {}).get("exit_code")]
        if not failed:
            return None
        first = min(
            failed, key=lambda b: ((b.state or {}).get("finished_at") is None, (b.state or {}).get("finished_at"))
        )
        return None if first is self.chief else first

    def _check(self, dc: Any, box: Container, machinery: Callable[[str], Exception]) -> None:
        if box.ended or box.reader is None or box.reader.is_alive():
            return  # the log stream ends when the container does
        state = compose.container_state(dc, box.name)
        if state is None:
            raise machinery(f"its {box.task.label} container vanished: removed from outside?")
        if not state["running"]:
            box.state, box.outcome = state, "exited"

    def _judge(self, box: Container, machinery: Callable[[str], Exception]) -> None:
        """Raise ``machinery(why)`` when the member that failed first was stopped from outside (docker
        kill/stop, an engine going down) or stopped itself for a silent harness: not the benchmark's failure."""
        why = not_the_benchmark(box.state or {}, box.tail.lines, f"its {box.task.label}")
        if why is not None:
            raise machinery(why)

    def member_failed(self, box: Container) -> str:
        state = box.state or {}
        code = state.get("exit_code")
        says = last_worker_error(box.tail.lines)
        if state.get("oom_killed"):
            why = " (killed by the out-of-memory killer)"
        elif isinstance(code, int) and code > 128:  # a signal, as the runtime reports it: 128 + signum
            why = f" ({signal_name(code - 128)}, not the out-of-memory killer)"
        else:
            why = ""
        for line in list(box.tail.lines)[-5:]:  # the failing member's last words, in the run's log tail
            self.run.tail.lines.append(f"[{box.task.label}] {line}")
        trail = f": {says}" if says else ""
        return (
            f"{box.task.label} (task {box.task.type} {box.task.index}, container {box.name}) exited with code "
            f"{code}{why}{trail}; the other workers were stopped"
        )

    def stop_all(self, dc: Any) -> None:
        """Kill every member still running (members first: they live in the chief's namespace)."""
        self.stopped_chief = self.stopped_chief or not self.chief.ended
        for box in reversed(self.members):
            if box.outcome == "running" and not box.ended:
                compose.stop_container(dc, box.name, grace_s=0)
                box.outcome = "stopped by the harness"

    def finish(self, dc: Any, out_dir: Path) -> None:
        """Record every member (ids read before the project is removed) and write the run's result from
        the chief's staged one, when it wrote one."""
        for box in self.members:
            if box.outcome != "not started":
                box.container_id = compose.container_id(dc, box.name)
        self.run.workers = [self._record(box) for box in self.members]
        staged = staged_result(out_dir, self.run.spec.run_id)
        remove_partial_writes(staged)
        if not staged.exists() or self.run.out_path.exists():
            return
        try:
            result = load_result(staged)
        except ResultError:  # the skeleton keeps an invalid result for inspection
            staged.rename(self.run.out_path)
            return
        if self.stopped_chief:  # the harness's reason stands; the chief's last word goes to the log tail
            self.run.tail.lines.append(f"[chief] its result after the workers were stopped: {result.error}")
            staged.unlink()
            return
        write_result(replace(result, workers=self.run.workers), self.run.out_path)
        staged.unlink()

    def _record(self, box: Container) -> Member:
        state = box.state or {}
        code = state.get("exit_code")
        error = last_worker_error(box.tail.lines) if code else None
        return Member(
            task=box.task.label,
            task_type=box.task.type,
            task_index=box.task.index,
            address=box.address,
            container=box.name,
            container_id=box.container_id,
            exit_code=code if box.outcome == "exited" else None,
            outcome=box.outcome,
            error=error,
        )


def member_override(directory: Path, service: str, chief: str) -> Path:
    """A compose override putting ``service``'s container into the chief container's network namespace."""
    path = directory / "member-network.yaml"
    path.write_text(f'services:\n  {service}:\n    network_mode: "container:{chief}"\n', encoding="utf-8")
    return path
