"""Where runs execute: ``local`` (a subprocess) or ``docker`` (a container via compose)."""

from __future__ import annotations

from harness.backends.base import Backend, BackendError
from harness.config import BACKENDS, ConfigError


def get_backend(name: str, **options: object) -> Backend:
    """Backend by name; imports the docker backend (python-on-whales) only when asked for."""
    if name == "local":
        from harness.backends.local import LocalBackend

        return LocalBackend(**options)
    if name == "docker":
        from harness.backends.docker import DockerBackend

        return DockerBackend(**options)
    raise ConfigError(f"backend must be one of {BACKENDS}, got {name!r}")


__all__ = ["Backend", "BackendError", "get_backend"]
