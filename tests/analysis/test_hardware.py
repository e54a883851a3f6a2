"""What the GPU did during a run, derived from the raw samples over the training window."""

from __future__ import annotations

import dataclasses

import pytest

from harness.analysis.hardware import gpu_summary
from tests.factories import CPU, GPU, gpu_telemetry, result


def test_window_statistics_from_raw_samples() -> None:
    t = gpu_telemetry(reasons=[0x1, 0x4, 0x0, 0x0, 0x0], watts=100.0, interval_s=1.0)
    gpu = t.samples[0]
    # Sample 0 is before the window (idle, hot): it must not count.
    gpu = dataclasses.replace(gpu, temperature_c=[90.0, 60.0, 61.0, None, 62.0], sm_clock_mhz=[210.0, *[1410.0] * 4])
    t = dataclasses.replace(t, samples=[gpu], window_start_sample=1)
    s = gpu_summary(dataclasses.replace(result(path=GPU, telemetry=t), n_train_used=1000))
    assert s is not None and s.n_samples == 5
    assert (s.sm_clock_mhz_p50, s.temperature_c_max, s.power_w_mean) == (1410.0, 62.0, 100.0)
    assert s.energy_j == pytest.approx(300.0) and s.samples_per_j == pytest.approx(1000 * 3 / 300.0)
    assert s.throttle_share == {"sw_power_cap": 0.25}


def test_no_samples_no_summary() -> None:
    assert gpu_summary(result(path=CPU)) is None
    assert gpu_summary(result(path=GPU, with_telemetry=False)) is None
    unread = gpu_summary(result(path=GPU))  # the factory's run has no n_train_used: no samples per joule
    assert unread is not None and unread.samples_per_j is None and unread.energy_j is not None
