"""What the hardware did during a run, derived from its raw telemetry samples (for show and report).

:func:`hardware_check`: whether a GPU baseline ran on the same GPU models and driver.

One :class:`GpuSummary` per result: statistics over the measured window (the training loop) of
every sampled GPU together, the energy and samples per joule, and the throttle reasons with their
share of samples. TF-free; the raw samples stay in the result.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from harness.analysis.checks import Check, Verdict
from harness.errors import CompareError
from harness.store.results import RunResult


@dataclass(frozen=True)
class GpuSummary:
    """Window statistics of a GPU run (None where nothing was readable)."""

    n_samples: int
    sm_clock_mhz_p50: float | None
    utilization_gpu_pct_p50: float | None
    memory_used_mb_max: float | None
    temperature_c_max: float | None
    power_w_mean: float | None
    energy_j: float | None
    samples_per_j: float | None
    throttle_share: dict[str, float]  # throttle reason -> share of window samples with it


def _values(result: RunResult, column: str) -> list[float]:
    telemetry = result.telemetry
    if telemetry is None:
        return []
    out: list[float] = []
    for gpu in telemetry.samples:
        series = getattr(gpu, column)
        out += [v for i in telemetry.window(gpu) if i < len(series) and (v := series[i]) is not None]
    return out


def gpu_summary(result: RunResult) -> GpuSummary | None:
    """The window statistics of ``result``'s GPU samples; None when it has none."""
    telemetry = result.telemetry
    if telemetry is None or not telemetry.samples:
        return None
    clocks, util = _values(result, "sm_clock_mhz"), _values(result, "utilization_gpu_pct")
    memory, temps, power = (
        _values(result, "memory_used_mb"),
        _values(result, "temperature_c"),
        _values(result, "power_w"),
    )
    readable, counts = telemetry.throttle_counts()
    trained = (result.n_train_used or 0) * result.run_spec.epochs
    return GpuSummary(
        n_samples=len(telemetry.samples[0].t_s),
        sm_clock_mhz_p50=statistics.median(clocks) if clocks else None,
        utilization_gpu_pct_p50=statistics.median(util) if util else None,
        memory_used_mb_max=max(memory) if memory else None,
        temperature_c_max=max(temps) if temps else None,
        power_w_mean=statistics.fmean(power) if power else None,
        energy_j=telemetry.gpu_energy_j,
        samples_per_j=telemetry.samples_per_j(trained) if trained else None,
        throttle_share={reason: n / readable for reason, n in sorted(counts.items())} if readable else {},
    )


Hardware = tuple[tuple[str, ...], str | None]  # (GPU models, driver), as Telemetry.hardware


def _describe(hardware: set[Hardware]) -> str:
    return "; ".join(f"{' + '.join(models)} (driver {driver or 'unknown'})" for models, driver in sorted(hardware))


def hardware_check(subject: str, cur: list[RunResult], base: list[RunResult], allow_change: bool) -> Check | None:
    """None when current and baseline GPU runs ran on the same GPU models and driver; a WARN when either
    side did not record them or the change is allowed; CompareError (one line) for a change not allowed."""
    now = {h for r in cur if r.telemetry is not None and (h := r.telemetry.hardware) is not None}
    then = {h for r in base if r.telemetry is not None and (h := r.telemetry.hardware) is not None}
    details: dict[str, Any] = {
        "current": [list(models) + [driver] for models, driver in sorted(now)],
        "baseline": [list(models) + [driver] for models, driver in sorted(then)],
        "allowed": allow_change,
    }
    if not now or not then:
        side = "the current runs" if not now else "the baseline"
        why = f"GPU models and driver not recorded for {side}: cannot tell whether the hardware changed"
        return Check("hardware", Verdict.WARN, subject, why, details)
    if now == then:
        return None
    change = f"GPU hardware differs from the baseline's: {_describe(then)} (baseline) vs {_describe(now)}"
    if not allow_change:
        raise CompareError(
            f"{subject}: {change}; speed and memory baselines do not carry across GPUs or drivers "
            "(--allow-hardware-change compares anyway)"
        )
    return Check("hardware", Verdict.WARN, subject, f"{change} (allowed by --allow-hardware-change)", details)
