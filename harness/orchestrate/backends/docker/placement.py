"""Where a run's container goes: pinned to a CPU set (``--parallel``), and on a fleet host (a Docker
context) with named volumes instead of bind mounts.

A remote engine resolves a bind mount's source on *its* file system (python-on-whales#719 is the
adjacent trap), so a context host never sees a local path: the image is shipped by id (``docker save
| docker load`` when the host lacks it; loading keeps the id), the prepared data goes into a named
volume once per host, each run gets its own results volume seeded with its spec, and the result is
copied back with ``docker cp``. Both mounts say ``nocopy``: an empty volume mounted over an image
directory would otherwise be filled from it, ownership included, undoing the chown that lets the
container's user write there. The local engine keeps its bind mounts, unchanged.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from harness.errors import BackendError
from harness.orchestrate.backends.docker.engine import call, client, last_error_line
from harness.orchestrate.backends.docker.owner import Owner
from harness.orchestrate.backends.docker.settings import CONTAINER_DATA, CONTAINER_RESULTS, CONTAINER_UID, SERVICES

log = logging.getLogger(__name__)

SHIP_TIMEOUT_S = 3600.0  # a 2 GB image over a slow link; measured 72 s between two local engines
LABEL_VOLUME = "org.tfparity.volume"


def cpuset_override(directory: Path, device: str, cpuset: str) -> Path:
    """A compose override pinning the run's container to ``cpuset`` (its affinity mask: TF sizes its
    thread pools from it, where a CFS quota (``--cpus``) would only throttle the same threads)."""
    path = directory / "compose.cpuset.yaml"
    path.write_text(f'services:\n  {SERVICES[device]}:\n    cpuset: "{cpuset}"\n', encoding="utf-8")
    return path


def volume_override(directory: Path, device: str, results_volume: str, data_volume: str) -> Path:
    """A compose override replacing both bind mounts with named volumes (``!override``: not appended)."""
    path = directory / "compose.volumes.yaml"
    path.write_text(
        f"services:\n  {SERVICES[device]}:\n    volumes: !override\n"
        f"      - {{type: volume, source: {results_volume}, target: {CONTAINER_RESULTS}, volume: {{nocopy: true}}}}\n"
        f"      - {{type: volume, source: {data_volume}, target: {CONTAINER_DATA}, read_only: true, "
        "volume: {nocopy: true}}\n"
        f"volumes:\n  {results_volume}:\n    external: true\n  {data_volume}:\n    external: true\n",
        encoding="utf-8",
    )
    return path


def ship_image(context: str, image_id: str, local_cmd: list[str]) -> bool:
    """Make ``image_id`` present on the host of ``context``; returns whether it had to be shipped."""
    remote = client()
    if call(f"image lookup on {context}", remote.image.exists, image_id):
        return False
    log.warning("shipping image %s to Docker context %s (docker save | docker load)", image_id[:19], context)
    remote_cmd = [str(c) for c in remote.client_config.docker_cmd]
    with tempfile.TemporaryFile() as err:
        save = subprocess.Popen([*local_cmd, "save", image_id], stdout=subprocess.PIPE, stderr=err)
        try:
            load = subprocess.run(
                [*remote_cmd, "load", "-q"], stdin=save.stdout, capture_output=True, text=True, timeout=SHIP_TIMEOUT_S
            )
        finally:
            if save.stdout is not None:
                save.stdout.close()
            saved = save.wait(timeout=SHIP_TIMEOUT_S)
    if saved != 0 or load.returncode != 0:
        lines = [ln for ln in (load.stderr or "").splitlines() if ln.strip()]
        said = (lines[-1] if lines else f"exit {load.returncode}") if load.returncode else "docker save failed"
        raise BackendError(f"cannot ship image {image_id[:19]} to Docker context {context!r}: {said}")
    return True


def data_volume(image_id: str, data_dir: Path, files: list[str]) -> str:
    """A named volume on the current engine holding ``files`` of ``data_dir``, made once per content."""
    digest = hashlib.sha256()  # by content: the same data reuses its volume across suites
    for name in sorted(files):
        digest.update(name.encode() + b"\0")
        with open(data_dir / name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    name = f"tfparity-data-{digest.hexdigest()[:16]}"
    dc = client()
    if call("volume lookup", dc.volume.exists, name):
        return name
    call("volume create", dc.volume.create, name, labels={LABEL_VOLUME: "data"})
    try:
        fill_volume(image_id, name, CONTAINER_DATA, [data_dir / f for f in files], mode="a+rX")
    except BaseException:
        remove_volume(name)
        raise
    return name


def results_volume(image_id: str, project: str, spec_path: Path) -> str:
    """The run's own results volume, seeded with its spec and writable by the container's user."""
    name = f"{project}-results"
    labels = {LABEL_VOLUME: "results", **Owner.me().labels()}
    call("volume create", client().volume.create, name, labels=labels)
    specs = Path(tempfile.mkdtemp(prefix="tfparity-spec-"))
    try:
        (specs / "specs").mkdir()
        (specs / "specs" / spec_path.name).write_bytes(spec_path.read_bytes())
        fill_volume(image_id, name, CONTAINER_RESULTS, [specs / "specs"], owner=f"{CONTAINER_UID}:{CONTAINER_UID}")
    finally:
        for path in sorted(specs.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        specs.rmdir()
    return name


def fill_volume(image_id: str, volume: str, target: str, paths: list[Path], *, owner: str = "", mode: str = "") -> None:
    """``docker cp`` ``paths`` into ``volume`` through a helper container of the run image (no network),
    which then sets ownership/permissions as root and exits. The helper is always removed."""
    dc = client()
    fix = "; ".join(
        part
        for part in (f"chown -R {owner} {target}" if owner else "", f"chmod -R {mode} {target}" if mode else "")
        if part
    )
    helper = call(
        "volume helper",
        dc.container.create,
        image_id,
        ["-c", fix or "true"],
        entrypoint="/bin/sh",
        user="0",
        networks=["none"],
        volumes=[(volume, target)],
        labels={LABEL_VOLUME: "helper"},
    )
    try:
        for path in paths:
            call(f"docker cp {path.name}", dc.copy, str(path), (helper, f"{target}/{path.name}"))
        call("volume helper start", dc.container.start, helper, attach=True)
        code = dc.container.inspect(helper).state.exit_code
        if code:
            raise BackendError(f"the volume helper for {volume} exited with {code}")
    finally:
        try:
            dc.container.remove(helper, force=True)
        except Exception as exc:
            log.warning("could not remove volume helper %s: %s", helper, last_error_line(exc))


def copy_result(dc: Any, container: str, container_path: str, out_path: Path) -> None:
    """The worker's result out of the (exited) container, renamed into place complete or not at all."""
    part = out_path.with_name(out_path.name + ".fetch")
    try:
        dc.copy((container, container_path), str(part))
    except Exception as exc:  # no result: the worker's exit code and log say why
        log.debug("no result to copy from %s: %s", container, last_error_line(exc))
        part.unlink(missing_ok=True)
        return
    os.replace(part, out_path)


def sweep_results_volumes(me: Owner | None = None) -> list[str]:
    """Remove the results volumes of harnesses that are gone (``kill -9`` mid-run); returns their names.

    The containers' rule (:func:`.compose.sweep_stale_containers`): an owner visible from here that
    is no longer alive. A volume still mounted by a container is refused by the engine and kept.
    """
    me = me or Owner.me()
    removed = []
    for volume in call("volume list", client().volume.list, filters=[("label", f"{LABEL_VOLUME}=results")]):
        owner = Owner.from_labels(dict(volume.labels or {}))
        if owner is None or not owner.visible_from(me) or owner.is_alive():
            continue
        try:
            client().volume.remove(volume.name)
            removed.append(volume.name)
            log.warning("removed results volume %s: the tfparity process that made it is gone", volume.name)
        except Exception as exc:
            log.debug("could not remove volume %s: %s", volume.name, last_error_line(exc))
    return removed


def remove_volume(name: str) -> None:
    try:
        client().volume.remove(name)
    except Exception as exc:  # cleanup must not hide the run's outcome
        log.warning("could not remove volume %s: %s", name, last_error_line(exc))
