"""The telemetry sampler: raw GPU samples on a thread (a fake NVML module stands in for pynvml), the
measured window, CPU power settings from a sysfs tree of real files, and nulls on a host without GPUs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.store.telemetry import reason_names
from harness.worker import telemetry
from harness.worker.nvidia import NvmlReader
from tests.worker.support import A100, FakeNvml, missing_library

TIMEOUT_S = 60.0  # a busy CI machine is slow; the sampler ticks every 10 ms here


def _sysfs(root: Path, *, energy_readable: bool = True) -> Path:
    """A sysfs tree like a two-CPU host with cpufreq, boost and one RAPL package (+ a sub-zone)."""
    for cpu, governor in (("cpu0", "performance"), ("cpu1", "powersave")):
        (root / "devices/system/cpu" / cpu / "cpufreq").mkdir(parents=True)
        (root / "devices/system/cpu" / cpu / "cpufreq/scaling_governor").write_text(governor + "\n")
    (root / "devices/system/cpu/cpufreq").mkdir(parents=True)
    (root / "devices/system/cpu/cpufreq/boost").write_text("1\n")
    for zone, name, energy in (("intel-rapl:0", "package-0", "1000000"), ("intel-rapl:0:0", "core", "5")):
        path = root / "class/powercap" / zone
        path.mkdir(parents=True)
        (path / "name").write_text(name + "\n")
        (path / "max_energy_range_uj").write_text("262143328850\n")
        if energy_readable:
            (path / "energy_uj").write_text(energy + "\n")
        else:  # reading it fails like a root-only counter does (EACCES), for root too
            (path / "energy_uj").mkdir()
    return root


def test_sampler_keeps_raw_samples_and_the_window(tmp_path: Path) -> None:
    fake = FakeNvml([A100], reasons=[0x1, 0x4, 0x4, 0x0], joules_per_sample=50.0, wait_samples=4)
    fake.nvmlInit()
    sampler = telemetry.TelemetrySampler(NvmlReader(fake), interval_s=0.01, sysfs=_sysfs(tmp_path))
    with sampler:
        sampler.mark_start()
        assert fake.sampled.wait(TIMEOUT_S), "the sampler thread took no samples"
        (tmp_path / "class/powercap/intel-rapl:0/energy_uj").write_text("3500000\n")
        sampler.mark_end()
    t = sampler.telemetry()
    assert not fake.initialised  # stop() shut NVML down
    assert (t.source, t.driver_version, t.cuda_driver_version, t.sample_interval_s) == (
        "nvml",
        "535.54.03",
        "12.2",
        0.01,
    )
    (gpu,) = t.samples
    n = len(gpu.t_s)
    assert n >= 5 and all(len(column) == n for column in (gpu.sm_clock_mhz, gpu.power_w, gpu.energy_mj))
    assert gpu.t_s == sorted(gpu.t_s) and gpu.power_w == [250.0] * n
    # Index 0 is the start sample, 1 the window's start; the end mark is the last sample.
    assert t.window_start_sample == 1 and t.window_end_sample == n - 1
    assert t.gpu_energy_j == pytest.approx(50.0 * (n - 2))
    assert reason_names(gpu.clocks_event_reasons[0]) == ["gpu_idle"]
    readable, counts = t.throttle_counts()
    assert readable == n - 1 and counts == {"sw_power_cap": 2}
    # CPU side from the sysfs tree: the sub-zone is not counted twice.
    assert t.cpu_governors == ["performance", "powersave"] and t.cpu_boost is True
    assert t.rapl_domains == ["package-0"] and t.rapl_energy_j == pytest.approx(2.5)


def test_a_failing_reader_does_not_stop_the_run(tmp_path: Path) -> None:
    fake = FakeNvml([A100], wait_samples=2)
    reader = NvmlReader(fake)
    calls = {"n": 0}
    real_sample = reader.sample

    def flaky() -> list:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("GPU has fallen off the bus")
        return real_sample()

    reader.sample = flaky  # type: ignore[method-assign]
    with telemetry.TelemetrySampler(reader, interval_s=0.01, sysfs=tmp_path) as sampler:
        assert fake.sampled.wait(TIMEOUT_S)
    assert len(sampler.telemetry().samples[0].t_s) >= 2  # the failed tick is missing, nothing else


def test_cpu_path_samples_no_gpu(tmp_path: Path) -> None:
    sampler = telemetry.sampler_for("cpu", nvml=FakeNvml([A100]), sysfs=tmp_path)
    with sampler:
        sampler.mark_start()
        sampler.mark_end()
    t = sampler.telemetry()
    assert t.unavailable == telemetry.CPU_PATH_REASON
    assert (t.source, t.driver_version, t.gpus, t.samples, t.window_start_sample) == (None, None, [], [], None)
    assert (t.cpu_governors, t.cpu_boost, t.rapl_domains, t.gpu_energy_j) == ([], None, [], None)


def test_gpu_path_without_nvml_or_nvidia_smi_records_nulls_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    sampler = telemetry.sampler_for("gpu", nvml=missing_library(), sysfs=tmp_path)
    with sampler:
        sampler.mark_start()
        sampler.mark_end()
    t = sampler.telemetry()
    assert t.unavailable == "NVML: NVML Shared Library Not Found; nvidia-smi: not found"
    assert t.source is None and t.gpus == [] and t.samples == [] and t.hardware is None


def test_unreadable_rapl_counters_are_left_out(tmp_path: Path) -> None:
    assert telemetry.find_rapl(_sysfs(tmp_path, energy_readable=False)) is None


def test_intel_pstate_no_turbo_means_boost_off(tmp_path: Path) -> None:
    (tmp_path / "devices/system/cpu/intel_pstate").mkdir(parents=True)
    (tmp_path / "devices/system/cpu/intel_pstate/no_turbo").write_text("1\n")
    assert telemetry.cpu_boost(tmp_path) is False
