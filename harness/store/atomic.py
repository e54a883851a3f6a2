"""The one way tfparity writes a file: atomically, never half-written, never overwritten by accident.

Every writer in the package (results, specs, manifests, prepared datasets, reports, plots) goes
through :func:`write_atomic`: the bytes go to a temporary file in the target's directory, are
fsynced, then linked (``overwrite=False``: fails if the target exists) or renamed into place.
A crash at any point leaves either no file or the complete file. The file mode follows the
process umask (like ``open()``), unless a caller that must share the file (e.g. with a container
user) asks for a mode.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def temp_glob(path: Path) -> str:
    """The glob matching the temporary files :func:`write_atomic` may leave for ``path`` when killed."""
    return f".{path.name}.*{TEMP_SUFFIX}"


def umask_mode() -> int:
    """The mode ``open(path, 'w')`` would give a new file: 0o666 minus the process umask.

    Read from /proc (Linux) where possible: ``os.umask`` can only be read by setting it, and a
    thread creating a file in that instant would get the temporary mask.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_atomic(
    path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False, mode: int | None = None
) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path.

    With ``overwrite=False`` an existing file is never replaced: the final step is ``os.link``,
    which fails atomically with :class:`FileExistsError` if the target exists. ``mode`` defaults to
    the umask's (mkstemp alone would give 0600, unreadable to anyone else).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, umask_mode() if mode is None else mode)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise FileExistsError(f"refusing to overwrite existing file {str(path)!r}") from None
            os.unlink(tmp)
        tmp = ""
        _fsync_dir(path.parent)
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (best effort: not every file system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
