"""The members of a multi-worker run as the backend saw them: provenance the chief's result carries.

A run with N workers is N containers (:mod:`harness.spec.cluster`); the chief writes the result and the
backend adds one :class:`Member` per container to it: which task it was, its address, its container,
and how it ended. TF-free.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Member:
    """One container of a multi-worker run."""

    task: str  # "chief" or "worker-1", "worker-2", ... (member 0 is the chief)
    task_type: str  # TF_CONFIG's task type: "chief" | "worker"
    task_index: int  # TF_CONFIG's task index within its type
    address: str  # host:port in the cluster spec
    container: str  # the container's name
    container_id: str
    exit_code: int | None  # None: it never ended by itself (stopped by the harness)
    # How it ended: "exited", "stopped by the harness" (another member failed, the run timed out or was
    # interrupted), or "not started".
    outcome: str = "exited"
    error: str | None = None  # its worker's last one-line error, when it failed
