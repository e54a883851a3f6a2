"""The telemetry schema's derived figures: energy over the window, samples per joule, throttling, identity."""

from __future__ import annotations

import dataclasses
from types import ModuleType

import pytest

from harness.store.telemetry import THROTTLE_REASONS, GpuSamples, Telemetry, reason_names


def test_reason_bits_decode_in_bit_order() -> None:
    assert reason_names(0) == []
    assert reason_names(0x4) == ["sw_power_cap"]
    # 0x1FF: every reason nvidia-smi lists as supported on the H100 capture (tests/worker/fixtures).
    assert len(reason_names(0x1FF)) == 9 and reason_names(0x61) == [
        "gpu_idle",
        "sw_thermal_slowdown",
        "hw_thermal_slowdown",
    ]
    assert "gpu_idle" not in THROTTLE_REASONS and "sw_power_cap" in THROTTLE_REASONS


def test_energy_and_samples_per_joule_over_the_window(factories: ModuleType) -> None:
    t = factories.gpu_telemetry(reasons=[0] * 5, watts=200.0, interval_s=0.5)
    # 4 intervals of 0.5 s at 200 W.
    assert t.gpu_energy_j == pytest.approx(400.0)
    assert t.samples_per_j(32_000) == pytest.approx(80.0)
    # The window, not the whole run: samples before and after it do not count.
    narrow = dataclasses.replace(t, window_start_sample=1, window_end_sample=3)
    assert narrow.gpu_energy_j == pytest.approx(200.0)


def test_energy_is_none_without_a_counter_or_window(factories: ModuleType) -> None:
    t = factories.gpu_telemetry()
    gpu = t.samples[0]
    no_counter = dataclasses.replace(t, samples=[dataclasses.replace(gpu, energy_mj=[None] * len(gpu.t_s))])
    assert no_counter.gpu_energy_j is None and no_counter.samples_per_j(1000) is None
    assert dataclasses.replace(t, window_end_sample=None).gpu_energy_j is None
    # A CPU host: nothing at all, never a made-up zero.
    empty = Telemetry(unavailable="NVML: NVML Shared Library Not Found; nvidia-smi: not found")
    assert empty.gpu_energy_j is None and empty.hardware is None and empty.throttle_counts() == (0, {})


def test_throttle_counts_only_power_and_thermal_reasons_inside_the_window(factories: ModuleType) -> None:
    # idle (0x1) and sync boost (0x10) are states, not throttling; sw power cap (0x4) and hw thermal (0x40) are.
    t = factories.gpu_telemetry(reasons=[0x1, 0x4, 0x44, 0x10, None, 0x40])
    assert t.throttle_counts() == (5, {"sw_power_cap": 2, "hw_thermal_slowdown": 2})
    inside = dataclasses.replace(t, window_start_sample=2, window_end_sample=3)
    assert inside.throttle_counts() == (2, {"sw_power_cap": 1, "hw_thermal_slowdown": 1})


def test_rapl_energy_handles_counter_wraparound() -> None:
    t = Telemetry(
        rapl_domains=["package-0", "package-1"],
        rapl_start_uj=[1_000_000.0, 262_143_000_000.0],
        rapl_end_uj=[3_500_000.0, 1_000_000.0],
        rapl_max_uj=[262_143_328_850.0, 262_143_328_850.0],
    )
    assert t.rapl_energy_j == pytest.approx(2.5 + (262_143_328_850 - 262_143_000_000 + 1_000_000) / 1e6)
    assert Telemetry().rapl_energy_j is None


def test_hardware_identity_is_models_and_driver(factories: ModuleType) -> None:
    assert factories.gpu_telemetry().hardware == (("NVIDIA A100-SXM4-80GB",), "535.54.03")
    two = factories.gpu_telemetry("NVIDIA L4")
    two = dataclasses.replace(two, gpus=[*two.gpus, dataclasses.replace(two.gpus[0], index=1, name="NVIDIA A10G")])
    assert two.hardware == (("NVIDIA A10G", "NVIDIA L4"), "535.54.03")


def test_window_clips_to_the_samples_present() -> None:
    gpu = GpuSamples(index=0, t_s=[0.0, 0.5], energy_mj=[0.0, 100.0])
    t = Telemetry(samples=[gpu], window_start_sample=0, window_end_sample=7)
    assert list(t.window(gpu)) == [0, 1] and t.gpu_energy_j == pytest.approx(0.1)
