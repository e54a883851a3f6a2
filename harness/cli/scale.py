"""``tfparity run`` over several lanes: ``--parallel N`` on one host, ``--docker-context``/``--hosts``
for a fleet. Turns the flags (validated here, one line) into :class:`~harness.orchestrate.lanes.Host`
lists for :func:`~harness.orchestrate.lanes.run_lanes`; the serial path never comes here."""

from __future__ import annotations

import argparse
import os
from typing import Any

from harness.cli import types
from harness.errors import ConfigError


def add_arguments(group: Any) -> None:
    group.add_argument(
        "--parallel",
        type=types.positive_int,
        metavar="N",
        help="docker: up to N runs at once on this host, each pinned to its own GPU (--gpus lists N or more) "
        "or its own CPU set (the container's cpuset); never two runs on one GPU",
    )
    group.add_argument(
        "--docker-context",
        action="append",
        metavar="NAME",
        help="docker: run on the host of this Docker context (repeat for a fleet; runs are dealt in turn, "
        "one at a time per host unless its hosts-file entry lists GPUs)",
    )
    group.add_argument("--hosts", metavar="FILE", help="docker: a fleet hosts file (TOML, [[host]] context/name/gpus)")


def wanted(args: argparse.Namespace) -> bool:
    return bool(args.parallel or args.docker_context or args.hosts)


def check(args: argparse.Namespace) -> None:
    """Refuse combinations that cannot mean what they say, before anything is written."""
    given = [f for f, v in (("--parallel", args.parallel), ("--docker-context", args.docker_context),
                            ("--hosts", args.hosts)) if v]  # fmt: skip
    if given and args.backend != "docker":
        raise ConfigError(f"{given[0]} runs containers: add --backend docker (got --backend {args.backend})")
    if args.docker_context and args.hosts:
        raise ConfigError("give the fleet either as --docker-context NAME ... or as --hosts FILE, not both")
    if args.parallel and (args.docker_context or args.hosts):
        raise ConfigError("--parallel is for one host; a fleet's lanes come from its hosts file (gpus = [...])")
    many = max(getattr(args, "workers", None) or [1])
    if given and many > 1:
        # A multi-worker run's containers share one engine's network namespace; lanes and fleet hosts
        # pin or place single containers. Not built: refused rather than half-done.
        raise ConfigError(f"--workers {many} runs on one engine as its own group of containers: drop {given[0]}")
    cpus = len(os.sched_getaffinity(0))
    if args.parallel and args.parallel > cpus and getattr(args, "device", None) != "gpu":
        raise ConfigError(
            f"--parallel {args.parallel} needs {args.parallel} CPUs to pin one run to each, this host has {cpus}"
        )
    if args.docker_context or args.hosts:
        from harness.orchestrate.backends.docker.fleet import hosts_from_contexts, load_hosts

        # Parsed now, before any engine or image is touched: a bad hosts file writes nothing.
        args.fleet = load_hosts(args.hosts) if args.hosts else hosts_from_contexts(args.docker_context)


def hosts(args: argparse.Namespace, backend: Any) -> list[Any]:
    """The hosts and their lanes; ``backend`` is the prepared local backend (``--parallel``) or a template."""
    from harness.orchestrate.lanes import Host, cpu_sets

    if args.parallel:
        return [Host(name="local", lanes=_local_lanes(args.parallel, backend, cpu_sets))]
    return fleet_hosts(args.fleet, backend)


def fleet_hosts(entries: list[Any], backend: Any) -> list[Any]:
    """One :class:`~harness.orchestrate.lanes.Host` per hosts-file entry, shaped like ``backend``."""
    from harness.orchestrate.backends.docker import DockerBackend
    from harness.orchestrate.lanes import Host

    out = []
    for entry in entries:
        template = DockerBackend(
            device=backend.device, data_dir=backend.data_dir, image=backend.image, base_image=backend.base_image,
            memory_limit=backend.memory_limit, notify=backend.notify, context=entry.context, host=entry.name,
        )  # fmt: skip
        lanes: list[Any] = [template.pinned(gpu=g) for g in entry.gpus] if entry.gpus else [template]
        out.append(Host(name=entry.name, lanes=lanes, context=entry.context, prepare=_preparer(template, lanes)))
    return out


def _local_lanes(n: int, backend: Any, cpu_sets: Any) -> list[Any]:
    if backend.device == "gpu":
        if len(backend.gpu_ids) < n:
            raise ConfigError(
                f"--parallel {n} on --device gpu needs --gpus naming {n} GPUs (one run per GPU), "
                f"got {','.join(backend.gpu_ids)!r}"
            )
        return [backend.pinned(gpu=g) for g in backend.gpu_ids[:n]]
    return [backend.pinned(cpuset=c) for c in cpu_sets(sorted(os.sched_getaffinity(0)), n)]


def _preparer(template: Any, lanes: list[Any]) -> Any:
    def prepare(specs: list[Any]) -> None:
        template.prepare(specs)
        for lane in lanes:  # the lanes were copied before: they share what prepare found
            lane.adopt(template)

    return prepare
