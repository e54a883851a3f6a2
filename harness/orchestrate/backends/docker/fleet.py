"""A fleet of Docker hosts, each reached through a Docker context: the hosts file, and readying one host.

A hosts file (TOML) names the hosts; it is validated whole before anything runs (one line, the bad
value quoted)::

    [[host]]
    name = "gpu-a"            # how results and reports name it (default: the context)
    context = "gpu-a"         # `docker context ls`
    gpus = ["0", "1"]         # one run at a time per listed GPU (default: one run at a time)
    labels = { rack = "r1" }  # free-form, recorded

Readying a host (:func:`prepare_host`) is the local engine's preparation plus what a remote engine
needs: the engine answers through its context, the image is shipped there by id, the data goes into
a named volume there (:mod:`.placement`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import data
from harness.errors import ConfigError
from harness.orchestrate.backends.docker import compose, placement
from harness.orchestrate.backends.docker.engine import check_compose, check_engine, client, engine_context
from harness.orchestrate.backends.docker.image import ensure_image
from harness.spec.run_spec import RunSpec

if TYPE_CHECKING:
    from harness.orchestrate.backends.docker.backend import DockerBackend

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
HOST_KEYS = {"name", "context", "gpus", "labels"}


@dataclass(frozen=True)
class HostEntry:
    """One fleet host: its name in results, its Docker context, its GPUs (one lane each), labels."""

    name: str
    context: str
    gpus: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)


def hosts_from_contexts(contexts: list[str]) -> list[HostEntry]:
    """``--docker-context A --docker-context B``: one host per context, named after it."""
    return _checked([HostEntry(name=_name(c, "--docker-context"), context=c) for c in contexts], "--docker-context")


def load_hosts(path: str | Path) -> list[HostEntry]:
    """Parse and validate a hosts file; any problem is one :class:`ConfigError` naming file and value."""
    where = f"hosts file {str(path)!r}"
    try:
        import tomllib
    except ImportError:  # Python 3.10
        raise ConfigError("a hosts file needs Python >= 3.11 (tomllib); use --docker-context NAME instead") from None
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {where}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where} is not valid TOML: {str(exc).splitlines()[0]}") from None
    extra = sorted(set(raw) - {"host"})
    if extra:
        raise ConfigError(f"{where}: unknown top-level key(s) {extra}; expected [[host]] tables")
    hosts = raw.get("host")
    if not isinstance(hosts, list) or not hosts:
        raise ConfigError(f"{where} names no hosts; add [[host]] tables with a context")
    return _checked([_entry(h, f"{where} host {n}") for n, h in enumerate(hosts, start=1)], where)


def _entry(table: Any, where: str) -> HostEntry:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a [[host]] table, got {table!r}")
    unknown = sorted(set(table) - HOST_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(HOST_KEYS)}")
    if "context" not in table:
        raise ConfigError(f"{where}: 'context' is required (a name from 'docker context ls')")
    context = _name(table["context"], f"{where} context")
    name = _name(table.get("name", context), f"{where} name")
    gpus = table.get("gpus", [])
    if not isinstance(gpus, list) or not all(isinstance(g, str) and g.isdigit() for g in gpus):
        raise ConfigError(f'{where}: gpus must be a list of device ids as strings like ["0", "1"], got {gpus!r}')
    if len(set(gpus)) != len(gpus):
        raise ConfigError(f"{where}: gpus lists a device twice: {gpus!r}")
    labels = table.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise ConfigError(f"{where}: labels must be a table of strings, got {labels!r}")
    return HostEntry(name=name, context=context, gpus=tuple(gpus), labels=dict(labels))


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise ConfigError(f"{where} must be a name of letters, digits, '.', '_' or '-', got {value!r}")
    return value


def _checked(hosts: list[HostEntry], where: str) -> list[HostEntry]:
    for key in ("context", "name"):
        values = [getattr(h, key) for h in hosts]
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise ConfigError(f"{where}: {key} {twice[0]!r} appears twice (one host, one engine, once)")
    return hosts


def prepare_host(backend: DockerBackend, specs: list[RunSpec]) -> tuple[dict[str, Any], str]:
    """Ready a fleet host: its engine answers, the image is there (shipped by id), the data is in a
    volume there. Returns (image info, data volume). Raises :class:`~harness.errors.BackendError`
    (the host's runs then fail with it)."""
    context = backend.context
    assert context is not None
    with engine_context(context):
        check_engine()
        check_compose()
        compose.sweep_stale_containers()
        placement.sweep_results_volumes()  # after the containers: a dead harness's volume is free now
    # The image is built (or checked) on the local engine and shipped: the same id everywhere.
    info = ensure_image(backend.device, tag=backend.image, base_image=backend.base_image, notify=backend.notify)
    local_cmd = [str(c) for c in client().client_config.docker_cmd]
    files = []
    for name in dict.fromkeys(s.dataset for s in specs):
        if not (backend.data_dir / f"{name}.npz").is_file():
            data.prepare(name, backend.data_dir)
        files.append(f"{name}.npz")
    with engine_context(context):
        placement.ship_image(context, info["id"], local_cmd)
        volume = placement.data_volume(info["id"], backend.data_dir, files)
    return info, volume
