"""Where runs execute: ``local`` (a subprocess) or ``docker`` (a container via compose)."""

from __future__ import annotations

from typing import Any

from harness.errors import ConfigError
from harness.orchestrate.backends.base import Backend
from harness.spec.names import BACKENDS


def get_backend(name: str, **options: Any) -> Backend:
    """Backend by name; imports the docker backend (python-on-whales) only when asked for."""
    if name == "local":
        from harness.orchestrate.backends.local import LocalBackend

        return LocalBackend(**options)
    if name == "docker":
        from harness.orchestrate.backends.docker import DockerBackend

        return DockerBackend(**options)
    raise ConfigError(f"backend must be one of {BACKENDS}, got {name!r}")


__all__ = ["Backend", "get_backend"]
