"""Before a suite starts: check each plugin benchmark's model once, in a worker process, without TensorFlow here.

Whether ``build`` returns a Keras model that fits the dataset can only be told by TensorFlow,
which the CLI never imports (its start-up chatter would break the one-line error contract, and it
costs seconds). So one ``python -m harness.worker.check`` process (:mod:`harness.worker.check`)
builds every distinct (plugin benchmark, sample shape, classes) once and answers in JSON; a
failure becomes one :class:`ConfigError` line before any suite directory exists. Built-in
benchmarks are not checked (tests/worker/test_models.py builds them). Where this Python has no
TensorFlow (a host that only drives containers), the check is skipped and said so at info level:
the run itself then fails as a ``failed`` result with the plugin's error.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from harness.errors import BackendError, ConfigError
from harness.orchestrate.backends.local import REPO_ROOT
from harness.spec.run_spec import RunSpec
from harness.store.protocol import CHECK_MODULE, CHECK_PREFIX

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 600.0  # one TensorFlow import plus a few model builds, on a machine that may be busy


@dataclass(frozen=True)
class CheckRequest:
    """One model to check: the first spec of a plugin benchmark on data of one shape."""

    spec: RunSpec
    input_shape: tuple[int, ...]
    n_classes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_dict(),
            "dataset": self.spec.dataset,
            "input_shape": list(self.input_shape),
            "n_classes": self.n_classes,
        }


def requests_for(
    specs: list[RunSpec], shapes: dict[tuple[str, str | None], tuple[tuple[int, ...], int]]
) -> list[CheckRequest]:
    """One request per distinct plugin benchmark x (sample shape, classes); built-ins need none."""
    seen: dict[tuple[str, tuple[int, ...], int], CheckRequest] = {}
    for spec in specs:
        if spec.benchmark_source is None:
            continue
        shape, classes = shapes[(spec.dataset, spec.dataset_file)]
        seen.setdefault((spec.benchmark, shape, classes), CheckRequest(spec, shape, classes))
    return list(seen.values())


def check_models(
    requests: list[CheckRequest], *, python: str | None = None, env: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Run the check process; ConfigError (one line) for the first model that cannot run."""
    if not requests:
        return []
    env = {**os.environ, **(env or {}), "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    try:
        proc = subprocess.run(
            [python or sys.executable, "-m", CHECK_MODULE],
            input=json.dumps([r.to_json() for r in requests]),
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT_S,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendError(f"the plugin check process ({CHECK_MODULE}) did not finish: {exc}") from None
    answers = [
        json.loads(line[len(CHECK_PREFIX) :]) for line in proc.stdout.splitlines() if line.startswith(CHECK_PREFIX)
    ]
    if len(answers) != len(requests):
        tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-1:] or ["no output"]
        raise BackendError(f"the plugin check process exited with code {proc.returncode}: {tail[0][:300]}")
    for request, answer in zip(requests, answers, strict=True):
        if answer["ok"] is None:
            log.info("not checking benchmark %s before the run: %s", request.spec.benchmark, answer["error"])
        elif not answer["ok"]:
            raise ConfigError(answer["error"])
        else:
            log.info("benchmark %s builds: %s parameters", request.spec.benchmark, f"{answer['params']:,}")
    return answers
