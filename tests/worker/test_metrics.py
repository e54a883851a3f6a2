"""Step statistics derived from raw samples, warm-up resolution, the RSS sampler."""

from __future__ import annotations

import numpy as np
import pytest

from harness.worker.metrics import RssSampler, StepRecord, resolve_warmup_steps, ru_maxrss_mb, step_stats


def test_warmup_resolution() -> None:
    assert resolve_warmup_steps(None, 125, 10) == 125  # the first epoch
    assert resolve_warmup_steps(None, 125, 1) == 12  # one epoch: first 10 %
    assert resolve_warmup_steps(None, 5, 1) == 1
    assert resolve_warmup_steps(7, 125, 10) == 7


def test_step_stats_excludes_warmup_and_weights_by_steps() -> None:
    # 1 compile step of 1 s, 3 warm-up steps of 10 ms, then 4 steady steps of 2 ms.
    record = StepRecord(step_time_ms=[1000.0, 10.0, 10.0, 10.0, 2.0, 2.0, 2.0, 2.0], steps_covered=[1] * 8)
    stats = step_stats(record, warmup_steps=4, batch_size=32)
    assert stats.compile_time_s == pytest.approx(1.0)
    assert stats.warmup_time_s == pytest.approx(1.03)
    assert stats.warmup_steps == 4
    assert stats.steady_throughput_samples_per_s == pytest.approx(32 / 0.002)
    assert stats.step_time_ms_p50 == pytest.approx(2.0)


def test_step_stats_with_steps_per_execution() -> None:
    # Each sample covers 8 steps; the steady part is two samples of 1 ms/step.
    record = StepRecord(step_time_ms=[100.0, 1.0, 1.0], steps_covered=[8, 8, 8])
    stats = step_stats(record, warmup_steps=8, batch_size=32)
    assert stats.warmup_steps == 8
    assert stats.compile_time_s == pytest.approx(0.8)
    assert stats.steady_throughput_samples_per_s == pytest.approx(32 / 0.001)


def test_step_stats_percentiles_from_raw() -> None:
    rng = np.random.default_rng(0)
    times = list(rng.gamma(4.0, 0.5, size=1000) + 1.0)
    stats = step_stats(
        StepRecord(step_time_ms=[500.0, *times], steps_covered=[1] * 1001), warmup_steps=1, batch_size=32
    )
    assert stats.step_time_ms_p50 == pytest.approx(float(np.percentile(times, 50)))
    assert stats.step_time_ms_p99 == pytest.approx(float(np.percentile(times, 99)))
    assert stats.step_time_ms_p50 < stats.step_time_ms_p90 < stats.step_time_ms_p99


def test_no_steady_steps_gives_none() -> None:
    stats = step_stats(StepRecord(step_time_ms=[5.0, 5.0], steps_covered=[1, 1]), warmup_steps=10, batch_size=32)
    assert stats.steady_throughput_samples_per_s is None and stats.step_time_ms_p50 is None


def test_rss_sampler_sees_an_allocation() -> None:
    with RssSampler(interval_s=0.01) as sampler:
        before = sampler.peak_rss_mb
        block = np.ones(200 * 2**20, dtype=np.uint8)  # 200 MiB, touched
        block[::4096] = 2
        import time

        time.sleep(0.05)
        del block
    assert sampler.peak_rss_mb >= before + 150
    assert ru_maxrss_mb() >= sampler.peak_rss_mb * 0.9
