"""The cluster of a multi-worker run: its members' addresses and the ``TF_CONFIG`` each one gets (TF-free).

A run with N workers (``tf.distribute.MultiWorkerMirroredStrategy``) is N processes that find each other
through ``TF_CONFIG``: one ``chief`` (task 0, the one that writes the result) and N-1 ``worker`` tasks,
each listening on its own ``host:port``. On one host the docker backend puts the containers of a run in
one network namespace (the chief's, loopback only), so the addresses are ``127.0.0.1`` with distinct
ports (:func:`loopback`). Workers on different hosts get their addresses from a hosts file
(:func:`parse_hosts`: one ``host:port`` per line, the chief first); the same :func:`tf_config` builds
every member's ``TF_CONFIG`` from either.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from harness.errors import ConfigError

CHIEF = "chief"
WORKER = "worker"
# In a run's own network namespace nothing else listens: fixed ports are safe (and readable in logs).
LOOPBACK_BASE_PORT = 23456
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\])$")


@dataclass(frozen=True)
class Task:
    """One member of the cluster: ``chief`` 0, or ``worker`` i (counted from 0 among the workers)."""

    type: str
    index: int

    @property
    def label(self) -> str:
        """``chief`` or ``worker-1`` (1-based over all members: the chief is member 0)."""
        return CHIEF if self.type == CHIEF else f"worker-{self.index + 1}"


@dataclass(frozen=True)
class Cluster:
    """The members' addresses in task order: the chief's first, then worker 0, 1, ..."""

    addresses: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.addresses:
            raise ConfigError("a cluster needs at least one address (the chief's)")
        for address in self.addresses:
            parse_address(address)
        seen = [a for i, a in enumerate(self.addresses) if a in self.addresses[:i]]
        if seen:
            raise ConfigError(f"cluster address {seen[0]!r} is given twice; every member needs its own host:port")

    @property
    def tasks(self) -> list[Task]:
        return [Task(CHIEF, 0)] + [Task(WORKER, i) for i in range(len(self.addresses) - 1)]

    def spec(self) -> dict[str, list[str]]:
        """TensorFlow's cluster spec: ``{"chief": [a0], "worker": [a1, ...]}`` (no empty ``worker`` job)."""
        out = {CHIEF: [self.addresses[0]]}
        if len(self.addresses) > 1:
            out[WORKER] = list(self.addresses[1:])
        return out

    def tf_config(self, task: Task) -> str:
        """The ``TF_CONFIG`` JSON of one member (set in its environment before the strategy is created)."""
        if task not in self.tasks:
            raise ConfigError(
                f"task {task.type} {task.index} is not a member of a {len(self.addresses)}-member cluster"
            )
        return json.dumps({"cluster": self.spec(), "task": {"type": task.type, "index": task.index}}, sort_keys=True)


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` -> (host, port); the host a name, an IPv4 address or a bracketed IPv6 one."""
    host, sep, port = str(text).rpartition(":")
    if not sep or not _HOST.match(host) or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"a cluster address must be host:port with a port in 1-65535, got {text!r}")
    return host, int(port)


def loopback(workers: int, base_port: int = LOOPBACK_BASE_PORT) -> Cluster:
    """``workers`` members on 127.0.0.1 with consecutive ports: one host, one shared network namespace."""
    if workers < 1:
        raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")
    return Cluster(tuple(f"127.0.0.1:{base_port + i}" for i in range(workers)))


def parse_hosts(text: str, workers: int) -> Cluster:
    """A hosts file: one ``host:port`` per line, the chief first; blank lines and ``#`` comments ignored.

    It must name exactly ``workers`` members (a run of N workers waits for all N: one more or fewer
    would hang its chief at start-up, so the count is checked here).
    """
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    addresses = tuple(line for line in lines if line)
    if len(addresses) != workers:
        raise ConfigError(f"the hosts file names {len(addresses)} member(s) {list(addresses)!r}, the run has {workers}")
    return Cluster(addresses)
