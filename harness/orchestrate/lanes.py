"""Runs a suite over several lanes at once: ``--parallel N`` on one host, or a fleet of Docker hosts.

A lane is one backend pinned to what it may use alone (a GPU, or a CPU set); a host is a group of
lanes on one engine. The plan is static and written down before anything runs: runs are dealt to
hosts in turn (:func:`plan_hosts`), and within a host each free lane takes the next of that host's
runs, so no two runs ever share a lane (a GPU). Threads only wait on the backends (each drives its
own container); signals still arrive in the main thread, which asks every lane to stop and waits
for their cleanup before it re-raises.

Failure of the machinery: on one host (``--parallel``) it stops the suite as it does serially; in a
fleet it ends that host only: its runs are recorded ``failed`` with the reason and the other hosts
go on (:class:`~harness.orchestrate.backends.base.MachineryFailure` from a host backend whose
``machinery_status`` is ``failed``).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import BackendError, RunInterrupted, SuiteStoppedError
from harness.orchestrate.backends.base import Backend, MachineryFailure
from harness.orchestrate.backends.signals import deferred_stop_signals
from harness.orchestrate.runner import EventFn, RunEvent
from harness.spec.run_spec import RunSpec
from harness.store.layout import existing_result, remove_stale_temp_files, result_path, write_spec
from harness.store.protocol import Progress
from harness.store.results import RunResult, load_result, write_result
from harness.timeutil import utc_now

log = logging.getLogger(__name__)

JOIN_SLICE_S = 0.2  # the main thread waits in slices: a signal handler runs between them


@dataclass
class Host:
    """One engine and its lanes (one backend per GPU or CPU set); ``prepare`` readies the host."""

    name: str
    lanes: list[Backend]
    context: str | None = None
    prepare: Callable[[list[RunSpec]], None] | None = None
    lost: str | None = None  # why this host runs nothing more
    out_dir: Path | None = None  # its own suite directory (every_host: each host runs every spec)
    todo: queue.Queue[tuple[int, RunSpec]] = field(default_factory=queue.Queue)


def plan_hosts(n_specs: int, n_hosts: int) -> list[list[int]]:
    """Which spec indexes each host runs: dealt in turn, so every host gets a share of each path."""
    if n_hosts < 1:
        raise ValueError(f"a plan needs at least one host, got {n_hosts}")
    return [list(range(h, n_specs, n_hosts)) for h in range(n_hosts)]


def cpu_sets(cpus: Sequence[int], n: int) -> list[str]:
    """``cpus`` split into ``n`` disjoint contiguous sets in docker's ``cpuset`` form ("0", "2,3")."""
    cpus = sorted(cpus)
    if not 1 <= n <= len(cpus):
        raise BackendError(f"--parallel {n} needs {n} CPUs to pin one run to each, this host has {len(cpus)}")
    size, extra = divmod(len(cpus), n)
    sets, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        sets.append(",".join(str(c) for c in cpus[start:end]))
        start = end
    return sets


def run_lanes(
    specs: list[RunSpec],
    hosts: list[Host],
    out_dir: Path,
    *,
    on_event: EventFn | None = None,
    timeout_s: float | None = None,
    retry_failed: bool = False,
    every_host: bool = False,
) -> list[RunResult]:
    """Run every unfinished spec on the hosts' lanes; returns all results in spec order.

    ``every_host`` (``fleet check``): every host runs every spec, into ``out_dir/<host name>``;
    the results come host by host.
    """
    out_dir = Path(out_dir)
    if every_host:
        for host in hosts:
            host.out_dir = out_dir / host.name
            host.out_dir.mkdir(parents=True, exist_ok=True)
    for where in {host.out_dir or out_dir for host in hosts}:
        remove_stale_temp_files(where)
    lock = threading.Lock()
    total = len(specs)

    def emit(event: RunEvent) -> None:
        if on_event is not None:
            with lock:  # one printer, many lanes
                on_event(event)

    results: dict[tuple[int, int], RunResult] = {}
    plan = [list(range(total))] * len(hosts) if every_host else plan_hosts(total, len(hosts))
    for h, (host, indexes) in enumerate(zip(hosts, plan, strict=True)):
        for i in indexes:
            done = existing_result(host.out_dir or out_dir, specs[i], retry_failed=retry_failed)
            if done is not None:
                results[h, i] = done
                emit(RunEvent("skip", i + 1, total, specs[i], result=done))
            else:
                host.todo.put((i, specs[i]))
    suite = _Suite(out_dir, total, emit, timeout_s, results)
    _drive(suite, hosts)
    if suite.stopped is not None:
        raise suite.stopped
    return [results[key] for key in sorted(results)]


def _drive(suite: _Suite, hosts: list[Host]) -> None:
    """One thread per host; this (main) thread waits in slices so that a signal can stop them all."""
    threads = [
        threading.Thread(target=suite.host_main, args=(h, n), name=f"host-{h.name}") for n, h in enumerate(hosts)
    ]
    for t in threads:
        t.start()
    try:
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=JOIN_SLICE_S)
    except RunInterrupted as exc:
        # Every lane stops its container and records its run; a second Ctrl-C waits for that too.
        with deferred_stop_signals():
            for host in hosts:
                for lane in host.lanes:
                    lane.request_stop(exc.signum)
            for t in threads:
                t.join()
        raise


class _Suite:
    """What the lane threads share: the results, the events, and the first suite-stopping failure."""

    def __init__(
        self,
        out_dir: Path,
        total: int,
        emit: EventFn,
        timeout_s: float | None,
        results: dict[tuple[int, int], RunResult],
    ) -> None:
        self.out_dir, self.total, self.emit, self.timeout_s = out_dir, total, emit, timeout_s
        self.results = results
        self.stopped: SuiteStoppedError | None = None

    def host_main(self, host: Host, h: int) -> None:
        """Prepare the host, then drive its lanes; a host that cannot be used fails its own runs."""
        if host.prepare is not None and not host.todo.empty():
            try:
                host.prepare([spec for _, spec in list(host.todo.queue)])
            except BackendError as exc:
                host.lost = f"host {host.name} is not usable: {exc}"
        threads = [
            threading.Thread(target=self.lane_main, args=(host, h, lane), name=f"lane-{host.name}-{n}")
            for n, lane in enumerate(host.lanes)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.fail_left(host, h)

    def lane_main(self, host: Host, h: int, lane: Backend) -> None:
        out_dir = host.out_dir or self.out_dir
        while host.lost is None and self.stopped is None and lane.stop_signum is None:
            try:
                i, spec = host.todo.get_nowait()
            except queue.Empty:
                return
            try:
                self.results[h, i] = self.run_one(lane, i, spec, out_dir)
            except RunInterrupted:
                return  # the backend recorded the run; the main thread re-raises
            except MachineryFailure as exc:  # a fleet host: this host is gone, the others go on
                host.lost = f"host {host.name} lost: {exc.cause}"
                self.results[h, i] = load_result(result_path(out_dir, spec))
                self.emit(RunEvent("finish", i + 1, self.total, spec, result=self.results[h, i]))
            except SuiteStoppedError as exc:  # one host: the machinery stops the suite, as serially
                # No lane starts another run; runs under way on other lanes finish and are kept.
                self.stopped = self.stopped or exc

    def run_one(self, lane: Backend, i: int, spec: RunSpec, out_dir: Path) -> RunResult:
        self.emit(RunEvent("start", i + 1, self.total, spec))

        def progress(p: Progress) -> None:
            self.emit(RunEvent("progress", i + 1, self.total, spec, progress=p))

        result = lane.run(spec, out_dir, progress=progress, timeout_s=self.timeout_s)
        self.emit(RunEvent("finish", i + 1, self.total, spec, result=result))
        return result

    def fail_left(self, host: Host, h: int) -> None:
        """The runs a lost host never started: ``failed`` with the reason (a resume runs them again)."""
        while host.lost is not None:
            try:
                i, spec = host.todo.get_nowait()
            except queue.Empty:
                return
            out_dir = host.out_dir or self.out_dir
            write_spec(out_dir, spec)
            now = utc_now()
            result = RunResult(
                run_id=spec.run_id,
                status="failed",
                spec=spec.to_dict(),
                started_utc=now,
                finished_utc=now,
                error=host.lost,
                environment={"backend": "docker", "fleet_host": host.name, "docker_context": host.context},
            )
            write_result(result, result_path(out_dir, spec))
            self.results[h, i] = result
            self.emit(RunEvent("finish", i + 1, self.total, spec, result=result))
