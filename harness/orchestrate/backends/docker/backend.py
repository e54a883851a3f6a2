"""The ``docker`` backend: each run in its own container, started through ``docker compose``.

One run = one ``docker compose run`` of the ``bench-cpu``/``bench-gpu`` service (docker/compose.yaml)
under a unique compose project name. The host writes the spec into the results directory, which is
mounted read-write at ``/results``; the prepared data directory is mounted read-only at ``/data``;
the container's entry point is the worker, which writes ``/results/<run_id>.json``. The container's
output is streamed into the log with a ``[docker <run_id>]`` prefix; a timeout, an out-of-memory
kill or Ctrl-C becomes a ``failed``/``interrupted`` result, and the container and compose project
are removed on every exit path (:class:`~harness.orchestrate.backends.base.Backend` owns the rest
of the run skeleton). The engine check is bounded (``TFPARITY_DOCKER_TIMEOUT_S``, default 20 s).

A failure of the machinery is not the benchmark's: a container that cannot start, vanishes or is
stopped from outside, an engine that goes away, an image deleted under the suite raise
:class:`~harness.orchestrate.backends.base.MachineryFailure` (the run is recorded ``interrupted``,
the suite stops in one line; the engine and image are probed to name the cause). Every container is
labelled with its owner (:mod:`.owner`) and renews a heartbeat its worker watches: a harness that is
killed or stuck leaves no container running, and the next start removes what a dead harness left.
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import data
from harness.errors import ConfigError, RunInterrupted
from harness.orchestrate.backends.base import Backend, Execution, MachineryFailure, ProgressFn
from harness.orchestrate.backends.docker import compose, placement, plugins
from harness.orchestrate.backends.docker.build import Notify
from harness.orchestrate.backends.docker.engine import (
    DockerCallError,
    call,
    check_compose,
    check_engine,
    engine_context,
)
from harness.orchestrate.backends.docker.gpu import check_toolkit, device_override, parse_gpu_ids
from harness.orchestrate.backends.docker.heartbeat import Heartbeat
from harness.orchestrate.backends.docker.image import ensure_image
from harness.orchestrate.backends.docker.limits import parse_memory_limit
from harness.orchestrate.backends.docker.outcome import EngineGone, machinery_failure
from harness.orchestrate.backends.docker.outcome import outcome as container_outcome
from harness.orchestrate.backends.docker.owner import Owner
from harness.orchestrate.backends.docker.ownership import arrange_ownership, check_data_readable, nothing
from harness.orchestrate.backends.docker.settings import (
    CONTAINER_DATA,
    CONTAINER_RESULTS,
    CONTAINER_UID,
    DEFAULT_BASE_IMAGES,
    DEFAULT_GPU_IDS,
    DEFAULT_IMAGES,
    LABEL_BASE_IMAGE,
    LABEL_RUN_ID,
    LABEL_SUITE,
    SERVICES,
)
from harness.orchestrate.backends.docker.workers import Group, member_override
from harness.orchestrate.backends.signals import (
    deferred_stop_signals,
    install_signal_handlers,
    restore_signal_handlers,
)
from harness.spec.names import DEVICES
from harness.spec.run_spec import RunSpec
from harness.store.layout import heartbeat_path, result_path
from harness.store.protocol import (
    DEADLINE_GRACE_S,
    HEARTBEAT_STALE_S,
    ExitCode,
    worker_args,
)
from harness.store.results import RunResult

log = logging.getLogger(__name__)

LOG_POLL_S = 0.5  # how often the main thread looks at the container while its log streams


class DockerBackend(Backend):
    """Runs each spec in a fresh container of docker/compose.yaml's ``bench-<device>`` service."""

    name = "docker"

    def __init__(
        self,
        *,
        device: str = "cpu",
        rebuild: bool = False,
        data_dir: str | os.PathLike[str] | None = None,
        image: str | None = None,
        base_image: str | None = None,
        memory_limit: str | int | None = None,
        gpus: str | None = None,
        notify: Notify | None = None,
        heartbeat_stale_s: float = HEARTBEAT_STALE_S,
        context: str | None = None,
        host: str | None = None,
    ) -> None:
        if device not in DEVICES:
            raise ConfigError(f"device must be one of {DEVICES}, got {device!r}")
        if gpus is not None and device != "gpu":
            raise ConfigError(
                f"--gpus selects the GPUs of --device gpu containers, got --gpus {gpus!r} with --device {device}"
            )
        # Explicit device ids in the compose device request (one GPU unless more are named).
        self.gpu_ids = parse_gpu_ids(gpus) if gpus is not None else DEFAULT_GPU_IDS
        self.device = device
        self.rebuild = rebuild
        self.data_dir = Path(data_dir if data_dir is not None else data.default_data_dir()).resolve()
        self.image = image or DEFAULT_IMAGES[device]
        self.base_image = base_image or DEFAULT_BASE_IMAGES[device]
        self.memory_limit = parse_memory_limit(memory_limit)
        self.notify = notify  # user-facing progress (the image build); None: the log
        self.heartbeat_stale_s = heartbeat_stale_s
        self.owner = Owner.me()
        self.cpuset: str | None = None  # set per lane by pinned()
        # A fleet host: its engine through a Docker context, volumes instead of bind mounts, and a
        # failure of its machinery fails its runs instead of stopping the suite.
        self.context, self.host = context, host or context
        self.machinery_status = "failed" if context is not None else "interrupted"
        self._data_volume = ""
        self._image_info: dict[str, Any] | None = None
        self._prepared = False

    # -- prepare --

    def pinned(self, *, cpuset: str | None = None, gpu: str | None = None) -> DockerBackend:
        """A lane of this (prepared) backend whose runs use only ``cpuset`` or the one GPU ``gpu``."""
        lane = copy.copy(self)
        lane.stop_signum = None
        lane.cpuset = cpuset if cpuset is not None else self.cpuset
        lane.gpu_ids = (gpu,) if gpu is not None else self.gpu_ids
        return lane

    def adopt(self, other: DockerBackend) -> None:
        """Take what ``other`` (this lane's prepared original) found: image, data volume."""
        self._image_info, self._data_volume, self._prepared = other._image_info, other._data_volume, other._prepared

    def prepare(self, specs: list[RunSpec]) -> None:
        """Engine reachable, compose present, GPU runtime (for gpu), image built, data prepared."""
        if self.context is not None:
            from harness.orchestrate.backends.docker.fleet import prepare_host

            self._image_info, self._data_volume = prepare_host(self, specs)
            self._prepared = True
            return
        wrong = sorted({s.path.device for s in specs} - {self.device})
        if wrong:
            raise ConfigError(
                f"this docker backend runs --device {self.device} containers, but the plan has {wrong} runs; "
                "run each device separately"
            )
        check_engine()
        check_compose()
        compose.sweep_stale_containers()
        if self.device == "gpu":
            check_toolkit(self.gpu_ids, self.image)
        self._image_info = ensure_image(
            self.device, tag=self.image, base_image=self.base_image, rebuild=self.rebuild, notify=self.notify
        )
        self._prepare_data(specs)
        check_data_readable(self.data_dir, [data.container_file(s.dataset, s.dataset_file) for s in specs])
        plugins.check_readable(specs)
        self._prepared = True

    def _prepare_data(self, specs: list[RunSpec]) -> None:
        """The container sees only /data: write each dataset's canonical arrays there (users' datasets afresh)."""
        for name, file in dict.fromkeys((s.dataset, s.dataset_file) for s in specs):
            log.info("preparing dataset %s in %s for the container", name, self.data_dir)
            data.prepare_for_container(name, self.data_dir, file=file)

    # -- run --

    def environment(self) -> dict[str, Any]:
        """What the backend knows about the container, for results the worker did not write."""
        info = self._image_info or {}
        base = (info.get("labels") or {}).get(LABEL_BASE_IMAGE) or self.base_image
        env = {"backend": "docker", "container_image": self.image, "image_id": info.get("id"), "base_image": base}
        env.update(fleet_host=self.host, docker_context=self.context, cpuset=self.cpuset)
        return {**env, "gpu_device_ids": list(self.gpu_ids)} if self.device == "gpu" else env

    def log_prefix(self, spec: RunSpec) -> str:
        return f"[docker {spec.run_id}] "

    def run(
        self, spec: RunSpec, out_dir: Path, *, progress: ProgressFn | None = None, timeout_s: float | None = None
    ) -> RunResult:
        """Run ``spec`` in one container; always returns the (written) result."""
        if not self._prepared:
            self.prepare([spec])
        out_dir = Path(out_dir).resolve()  # bind mounts need absolute paths
        out_dir.mkdir(parents=True, exist_ok=True)
        return super().run(spec, out_dir, progress=progress, timeout_s=timeout_s)

    def execute(self, run: Execution, timeout_s: float | None) -> None:
        with engine_context(self.context):
            self._execute(run, timeout_s)

    def _execute(self, run: Execution, timeout_s: float | None) -> None:
        run.environment = self.environment()
        out_dir = run.out_path.parent
        project = compose.project_name(run.spec.run_id)
        container_result = result_path(Path(CONTAINER_RESULTS), run.spec).as_posix()
        beat = Heartbeat(heartbeat_path(out_dir, run.spec))
        tmp = tempfile.TemporaryDirectory(prefix="tfparity-run-")
        own_handlers = install_signal_handlers()
        restore: Callable[[], None] = nothing
        dc: Any = None
        engine_gone = False
        group = Group.plan(project, run, self.log_prefix(run.spec)) if run.spec.path.workers > 1 else None
        try:
            user, restore, overrides = self._mounts(Path(tmp.name), out_dir, run, project)
            env_file = self._env_file(Path(tmp.name), out_dir, user)
            dc = compose.compose_client(project, env_file, overrides)
            self.data_dir.mkdir(parents=True, exist_ok=True)
            beat.renew()  # before the container starts: its worker checks it from its first second
            if group is None:
                self.start_container(dc, project, run, self._command(run, container_result, timeout_s))
                run.returncode, run.reason = self._follow(dc, project, run, timeout_s, beat)
                if self.context is not None:
                    placement.copy_result(dc, project, container_result, run.out_path)
            else:
                member_dc = compose.compose_client(
                    project, env_file, [*overrides, member_override(Path(tmp.name), SERVICES[self.device], project)]
                )
                self._run_group(group, dc, member_dc, timeout_s, beat)
        except RunInterrupted:
            with deferred_stop_signals():
                if group is not None and dc is not None:
                    group.stop_all(dc)
                elif dc is not None:
                    compose.stop_container(dc, project)
            run.stop_note = " (container stopped)"
            raise
        except EngineGone:
            engine_gone = True  # nothing to clean up there now: the next start sweeps what is left
            raise
        finally:
            # A signal now must not cut the cleanup short (a container left behind): it is held
            # until the container is gone, then raised as usual.
            try:
                with deferred_stop_signals():
                    if group is not None and dc is not None and not engine_gone:
                        group.finish(dc, out_dir)
                    if dc is not None and not engine_gone:
                        compose.cleanup_project(dc, project)
                        if self.context is not None:
                            placement.remove_volume(f"{project}-results")
                    beat.remove()
                    restore()
                    tmp.cleanup()
            finally:
                restore_signal_handlers(own_handlers)
        if run.returncode == ExitCode.CANNOT_WRITE and not run.out_path.exists():
            _rewrite_paths(run, container_result)

    def _run_group(self, group: Group, dc: Any, member_dc: Any, timeout_s: float | None, beat: Heartbeat) -> None:
        """The containers of a multi-worker run (:mod:`.workers`): the run fails when any member does."""
        run = group.run
        group.start(dc, member_dc, self.start_container, lambda result: self._command(run, result, timeout_s))
        run.reason = group.follow(dc, timeout_s, beat.renew, self.diagnose)
        group.finish(dc, run.out_path.parent)
        if run.reason is None:
            run.returncode, run.reason = self.outcome(group.chief.state or {}, run)

    def _mounts(self, tmp: Path, out_dir: Path, run: Execution, project: str) -> tuple[str, Any, list[Path]]:
        """(container user, what restores the results directory, compose overrides) for this run."""
        overrides = [device_override(tmp, self.gpu_ids)] if self.device == "gpu" else []
        if self.cpuset is not None:
            overrides.append(placement.cpuset_override(tmp, self.device, self.cpuset))
        if self.context is None:  # the local engine: bind mounts, as always
            return (*arrange_ownership(out_dir, run.spec_path), overrides)
        image_id = (self._image_info or {})["id"]
        volume = placement.results_volume(image_id, project, run.spec_path)
        overrides.append(placement.volume_override(tmp, self.device, volume, self._data_volume))
        return f"{CONTAINER_UID}:{CONTAINER_UID}", nothing, overrides

    def _command(self, run: Execution, container_result: str, timeout_s: float | None) -> list[str]:
        """The worker's arguments in the container: its own deadline and the heartbeat it watches."""
        return worker_args(
            f"{CONTAINER_RESULTS}/specs/{run.spec_path.name}",
            container_result,
            CONTAINER_DATA,
            # A fleet host's volume cannot be touched from here: its runs rely on their deadline.
            heartbeat=None if self.context else heartbeat_path(Path(CONTAINER_RESULTS), run.spec).as_posix(),
            heartbeat_stale_s=self.heartbeat_stale_s,
            deadline_s=timeout_s + DEADLINE_GRACE_S if timeout_s else None,
        )

    def start_container(
        self,
        dc: Any,
        name: str,
        run: Execution,
        command: list[str],
        envs: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        """Start one container of ``run`` (detached) named ``name``, labelled with its run, suite and owner."""
        log.info("run %s: container %s (image %s)", run.spec.run_id, name, self.image)
        own = {LABEL_RUN_ID: run.spec.run_id, LABEL_SUITE: run.spec.suite, **self.owner.labels(), **(labels or {})}
        mounts, plugin_envs = plugins.run_options(run.spec)  # a plugin's source, read-only
        try:
            call(
                f"container start for {run.spec.run_id}",
                dc.compose.run,
                SERVICES[self.device],
                command,
                detach=True,
                tty=False,
                name=name,
                dependencies=False,
                labels=own,
                volumes=mounts,
                envs={**plugin_envs, **(envs or {})},
            )
        except DockerCallError as exc:
            # Every run uses the same service, image and mounts: what stops one container from
            # starting stops them all. Not the benchmark's failure.
            raise self.diagnose(f"its container could not start: {exc.docker_said}") from None

    def _env_file(self, directory: Path, out_dir: Path, user: str) -> Path:
        return compose.write_env_file(
            directory,
            {
                "TFPARITY_IMAGE": self.image,
                "TFPARITY_IMAGE_ID": (self._image_info or {}).get("id", ""),
                "TFPARITY_RESULTS_DIR": str(out_dir),
                "TFPARITY_DATA_DIR": str(self.data_dir),
                "TFPARITY_USER": user,
                "TFPARITY_MEMORY_LIMIT": self.memory_limit or "0",
                "TFPARITY_GPUS": ",".join(self.gpu_ids) if self.device == "gpu" else "",
                "TFPARITY_FLEET_HOST": self.host or "",
                "TFPARITY_DOCKER_CONTEXT": self.context or "",
            },
        )

    def _follow(
        self, dc: Any, name: str, run: Execution, timeout_s: float | None, beat: Heartbeat
    ) -> tuple[int | None, str | None]:
        """Stream the container's output until it exits or times out; returns (exit code, reason).

        Raises :class:`MachineryFailure` when the container vanished or was stopped from outside.
        """
        reader = threading.Thread(
            target=compose.stream_logs, args=(dc, name, run.tail), daemon=True, name=f"docker-logs-{name}"
        )
        reader.start()
        deadline = time.monotonic() + timeout_s if timeout_s else None
        while True:
            beat.renew()  # from this thread: a stuck harness stops renewing, its worker stops
            if self.stop_signum is not None:  # a lane: the signal reached the main thread
                raise RunInterrupted(self.stop_signum)
            # join() in short slices: a signal handler can raise in this (main) thread meanwhile.
            reader.join(timeout=LOG_POLL_S)
            state = None
            if not reader.is_alive():  # the log stream ends when the container does (or the engine hiccups)
                state = compose.container_state(dc, name)
                if state is None:
                    raise self.diagnose("its container vanished: removed from outside?")
                if not state["running"]:
                    break
                time.sleep(LOG_POLL_S)  # stream ended early but the container runs: keep polling its state
            if deadline is not None and time.monotonic() > deadline:
                compose.stop_container(dc, name, grace_s=0)
                return None, f"timed out after {timeout_s:g} s (container killed)"
        reader.join(timeout=5)
        return self.outcome(state, run)

    def outcome(self, state: dict[str, Any], run: Execution) -> tuple[int | None, str | None]:
        """The exit code and, when the code alone says too little, the reason (see :func:`.outcome.outcome`)."""
        return container_outcome(state, run, self.memory_limit, self.diagnose)

    def diagnose(self, what: str) -> MachineryFailure:
        """Name the failure of the machinery behind ``what``: engine gone, image gone, or ``what`` itself."""
        return machinery_failure(what, self.image, (self._image_info or {}).get("id"))


def _rewrite_paths(run: Execution, container_result: str) -> None:
    """The worker's one-line error names the result path inside the container; show the host's."""
    host = str(run.out_path)
    lines = [line.replace(repr(container_result), repr(host)) for line in run.tail.lines]
    run.tail.lines.clear()
    run.tail.lines.extend(lines)
