"""Who the container runs as (never root) and how it may write into the host's results directory."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from harness.errors import BackendError
from harness.orchestrate.backends.docker.settings import CONTAINER_UID

log = logging.getLogger(__name__)


def container_ids() -> tuple[int, int]:
    """The uid:gid the containers will run as (see :func:`_arrange_ownership`): never root."""
    if os.geteuid() == 0:
        return CONTAINER_UID, CONTAINER_UID
    return os.geteuid(), os.getegid()


def check_data_readable(data_dir: Path, files: list[str]) -> None:
    """The non-root container user must be able to read the data mount: say so up front, not mid-run."""
    uid, gid = container_ids()

    def allowed(path: Path, need: int) -> bool:
        st = path.stat()
        if st.st_uid == uid:
            bits = (st.st_mode >> 6) & 7
        elif st.st_gid == gid:
            bits = (st.st_mode >> 3) & 7
        else:
            bits = st.st_mode & 7
        return bits & need == need

    if not allowed(data_dir, 5):
        raise BackendError(
            f"data dir {str(data_dir)!r} (mode {data_dir.stat().st_mode & 0o777:04o}) is not readable by the "
            f"container user (uid {uid}); make it readable (chmod o+rx {data_dir}) or pass another --data-dir"
        )
    for name in dict.fromkeys(files):
        path = data_dir / name
        if path.exists() and not allowed(path, 4):
            raise BackendError(
                f"{str(path)!r} (mode {path.stat().st_mode & 0o777:04o}) is not readable by the container user "
                f"(uid {uid}); chmod o+r it"
            )


def arrange_ownership(out_dir: Path, spec_path: Path) -> tuple[str, Callable[[], None]]:
    """The container user (never root) and a function that undoes any ownership change.

    A non-root container user cannot write into a directory owned by another user. If the results
    directory belongs to a non-root user, the container runs as that uid:gid; if it belongs to root
    (we run as root), the directory and the spec are lent to the image's user for the run and given
    back afterwards, results included. A directory still lent by a harness that was killed (kill -9)
    is taken back first, so a resumed suite behaves like a fresh one.
    """
    # mkstemp's 0600 would hide the spec from a container user other than its owner; it holds no secret.
    os.chmod(spec_path, 0o644)
    st = out_dir.stat()
    owner = (st.st_uid, st.st_gid)
    if os.geteuid() == 0 and st.st_uid == CONTAINER_UID:
        parent = out_dir.parent.stat()
        owner = (parent.st_uid, parent.st_gid)
        log.warning(
            "results directory %s is still lent to uid %d by an interrupted harness; taking it back",
            out_dir,
            CONTAINER_UID,
        )
        give_back(out_dir, *owner)
    if owner[0] != 0:
        if os.geteuid() == 0:
            os.chown(spec_path, *owner)
        return f"{owner[0]}:{owner[1]}", nothing
    if os.geteuid() != 0:
        raise BackendError(
            f"results directory {str(out_dir)!r} is owned by root: the container (a non-root user) could not "
            "write there; use a results directory you own"
        )
    for path in (out_dir, spec_path.parent, spec_path):
        os.chown(path, CONTAINER_UID, CONTAINER_UID)
    return f"{CONTAINER_UID}:{CONTAINER_UID}", lambda: give_back(out_dir, *owner)


def nothing() -> None:
    """Nothing to undo."""


def give_back(out_dir: Path, uid: int, gid: int) -> None:
    """Return everything the container user owns in a results directory to ``uid:gid``; never raises."""
    paths = [out_dir, out_dir / "specs", *out_dir.glob("*"), *out_dir.glob("specs/*")]
    for path in paths:
        try:
            if path.stat().st_uid == CONTAINER_UID:
                os.chown(path, uid, gid)
        except OSError:
            pass
