"""What a container needs of a plugin benchmark: its source, bind-mounted read-only.

The image holds the harness and its built-in benchmarks; a plugin's source stays on the host and
reaches the container through a read-only bind mount made for that one run. A file plugin
(``file:/abs/path.py:NAME``) is mounted at the same absolute path, so the spec the worker reads
names it unchanged; a module or entry-point plugin's top-level package (or single-file module) is
mounted under :data:`PLUGIN_ROOT`, which goes on the container's ``PYTHONPATH``. The worker records
how the source arrived (``benchmark.delivery``: ``read-only mount``, read from the mount's flags).
Its other dependencies must be in the image.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from harness.errors import BackendError
from harness.orchestrate.backends.docker.ownership import container_ids
from harness.spec.benchmarks.sources import parse_source
from harness.spec.run_spec import RunSpec

PLUGIN_ROOT = "/opt/tfparity/plugins"
Mount = tuple[str, str, str]  # (host path, container path, "ro"): python-on-whales' volume definition


def plugin_location(spec: RunSpec) -> tuple[Path, str] | None:
    """The host path of a spec's plugin source and where the container sees it (None: a built-in)."""
    if spec.benchmark_source is None:
        return None
    ref = parse_source(spec.benchmark_source)
    if ref.kind == "file":
        return Path(ref.target), ref.target
    top = ref.target.split(".")[0]
    found = importlib.util.find_spec(top)
    if found is None:
        raise BackendError(f"benchmark {spec.benchmark!r}: module {top!r} is not importable here, cannot mount it")
    if found.submodule_search_locations:
        location = Path(next(iter(found.submodule_search_locations)))
    elif found.origin:
        location = Path(found.origin)
    else:
        raise BackendError(f"benchmark {spec.benchmark!r}: module {top!r} has no files to mount")
    return location, f"{PLUGIN_ROOT}/{location.name}"


def run_options(spec: RunSpec) -> tuple[list[Mount], dict[str, str]]:
    """The extra read-only mount and environment of one run's container (none for built-ins)."""
    where = plugin_location(spec)
    if where is None:
        return [], {}
    host, inside = where
    env = {} if inside == str(host) else {"PYTHONPATH": PLUGIN_ROOT}
    return [(str(host), inside, "ro")], env


def check_readable(specs: list[RunSpec]) -> None:
    """The container user (not root) must be able to read each plugin's source: say so before any run."""
    uid, _gid = container_ids()
    for spec in specs:
        where = plugin_location(spec)
        if where is None:
            continue
        host = where[0]
        files = [host] if host.is_file() else [p for p in host.rglob("*.py") if "__pycache__" not in p.parts]
        for path in files:
            st = path.stat()
            readable = st.st_mode & 0o004 or (st.st_uid == uid and st.st_mode & 0o400)
            if not readable:
                raise BackendError(
                    f"plugin source {str(path)!r} (mode {st.st_mode & 0o777:04o}) is not readable by the container "
                    f"user (uid {uid}); chmod o+r it"
                )
        if not os.path.exists(host):
            raise BackendError(f"plugin source {str(host)!r} does not exist")
