"""One value per run: what speed and memory verdicts are computed from (the run is the unit, never the step).

Steps inside one process are correlated and the variation that matters is between processes
(stats.md §1-2), so every speed or memory decision takes exactly one number per run:

=============  =========================================================  =======  ===========
metric         per-run value                                              unit     worse when
=============  =========================================================  =======  ===========
throughput     batch x 1000 / p25 of the run's steady step times          samp/s   lower
step_time_p50  median of the run's steady step times                      ms       higher
peak_rss       the run's peak RSS (its own process)                       MB       higher
tf_peak        TensorFlow's allocator peak on the run's device            MB       higher
gpu_peak_mem   TF's GPU allocator peaks, summed over the run's GPUs       MB       higher
compile_time   the run's first step (tracing, XLA compilation)            s        higher
=============  =========================================================  =======  ===========

The lower quartile is the throughput summary because contention only ever adds time to a step:
measured, it halves the between-run spread of short steady windows against the median (0.125 vs
0.25 in ln units) and equals it for long ones. Raw step times stay in the results; this derives.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from harness.analysis.samples import steady_step_times_ms
from harness.store.results import RunResult

SPEED_QUANTILE = 25  # the per-run throughput summary: the lower quartile of the steady step times

METRICS: dict[str, tuple[str, str]] = {  # metric -> (unit, direction in which it gets worse)
    "throughput": ("samples/s", "lower"),
    "step_time_p50": ("ms", "higher"),
    "peak_rss": ("MB", "higher"),
    "tf_peak": ("MB", "higher"),
    "gpu_peak_mem": ("MB", "higher"),
    "compile_time": ("s", "higher"),
}


def steady_quantile_ms(result: RunResult, q: float) -> float | None:
    """The q-th percentile of a run's steady step times (ms); None without steady steps."""
    steps = steady_step_times_ms(result)
    return float(np.percentile(steps, q)) if steps else None


def throughput(result: RunResult) -> float | None:
    """The run's steady throughput in samples/s: batch size x 1000 / the p25 of its steady step times."""
    q = steady_quantile_ms(result, SPEED_QUANTILE)
    return result.run_spec.batch_size * 1000.0 / q if q else None


def run_value(result: RunResult, metric: str) -> float | None:
    """The one value of ``metric`` for this run, in the metric's natural unit (None when not measured)."""
    if metric == "throughput":
        return throughput(result)
    if metric == "step_time_p50":
        return steady_quantile_ms(result, 50)
    if metric in ("peak_rss", "tf_peak", "gpu_peak_mem"):
        if result.memory is None:
            return None
        if metric == "gpu_peak_mem":
            return result.memory.gpu_peak_mb
        return result.memory.peak_rss_mb if metric == "peak_rss" else result.memory.tf_peak_mb
    if metric == "compile_time":
        return result.timing.compile_time_s if result.timing is not None else None
    raise ValueError(f"unknown per-run metric {metric!r}; known: {sorted(METRICS)}")


def values(results: Iterable[RunResult], metric: str) -> list[float]:
    """Per-run values of the runs that measured ``metric`` (positive and finite), in the given order."""
    out = []
    for result in results:
        v = run_value(result, metric)
        if v is not None and math.isfinite(v) and v > 0:
            out.append(float(v))
    return out


def log_values(results: Iterable[RunResult], metric: str) -> list[float]:
    """ln of :func:`values`: ratios become differences, and the run-to-run spread is relative."""
    return [math.log(v) for v in values(results, metric)]
