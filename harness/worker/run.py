"""One run, start to result file: dispatch to train or probe, and turn any failure into a result.

"One failure is a result, not a crash": an exception, a MemoryError or a divergence becomes a
``failed`` result with the error and the traceback tail; only a result that cannot be *written*
escapes (an OSError for :mod:`harness.worker.main` to turn into exit 3).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.spec.run_spec import RunSpec
from harness.store import provenance
from harness.store.results import RunResult, Timing, write_result
from harness.timeutil import utc_now
from harness.worker.metrics import RssSampler
from harness.worker.models import benchmark_info

log = logging.getLogger(__name__)
LOG_TAIL_LINES = 30


def run(spec: RunSpec, result_path: Path, data_dir: Path | None) -> RunResult:
    """Run ``spec`` and write its result (ok or failed) to ``result_path``; never raises for run failures."""
    started_utc = utc_now()
    started = time.perf_counter()
    benchmark = None
    with RssSampler() as sampler:
        try:
            # First: a plugin's import (and the datasets it provides) happens before any data is loaded.
            benchmark = benchmark_info(spec)
            fields = _dispatch(spec, data_dir, started, sampler)
            status, error, tail = "ok", None, []
        except (Exception, MemoryError) as exc:  # one failure is a result, not a crash
            log.error("run %s failed: %s", spec.run_id, exc)
            status, error = "failed", describe_failure(exc)
            tail = traceback.format_exc().splitlines()[-LOG_TAIL_LINES:]
            fields = {"environment": _environment_after_failure()}
    fields["benchmark"] = benchmark
    if isinstance(fields.get("timing"), Timing):
        fields["timing"] = dataclasses.replace(fields["timing"], total_wall_time_s=time.perf_counter() - started)
    result = RunResult(
        run_id=spec.run_id,
        status=status,
        spec=spec.to_dict(),
        started_utc=started_utc,
        finished_utc=utc_now(),
        error=error,
        log_tail=tail,
        **fields,
    )
    write_result(result, result_path)
    return result


def _dispatch(spec: RunSpec, data_dir: Path | None, started: float, sampler: RssSampler) -> dict[str, Any]:
    if spec.mode == "probe":
        from harness.worker.probe import probe

        return probe(spec, data_dir)
    from harness.worker.train import train

    return train(spec, data_dir, started, sampler)


def describe_failure(exc: BaseException) -> str:
    """The one-line error of a failed run."""
    if isinstance(exc, MemoryError):
        return f"out of memory: MemoryError {exc}".strip()
    if isinstance(exc, UserError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _environment_after_failure() -> dict[str, Any]:
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return provenance.without_tensorflow()
    from harness.worker import environment

    return environment.collect(tf)
