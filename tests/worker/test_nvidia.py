"""GPU facts from NVML and nvidia-smi: real recorded nvidia-smi outputs (A100, A10G, RTX 4000 Ada, T4,
GTX 1070 Ti, H100, RTX 2080 SUPER; tests/worker/fixtures/nvidia/SOURCES.md), a fake NVML module, a fake
``nvidia-smi`` executable, and the real pynvml on this GPU-less host."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from harness.store.telemetry import reason_names
from harness.worker import nvidia
from tests.worker.support import A100, H100, RTX_2080_SUPER, XML, FakeNvml, NVMLError_NotSupported, capture_section


@pytest.mark.parametrize(
    ("fixture", "driver", "cuda", "expected"),
    [
        # MIG enabled: the GPU's 81920 MiB, not a MIG device's 19968 MiB; GPU utilisation is N/A under MIG.
        ("a100-sxm4-v12.xml", "535.54.03", "12.2",
         dict(name="NVIDIA A100-SXM4-80GB", memory_total_mb=81920.0, persistence_mode=False, ecc_enabled=True,
              power_limit_w=500.0, applications_clock_sm_mhz=1275.0, max_clock_sm_mhz=1410.0)),
        ("a10g.xml", "515.105.01", "11.7",
         dict(name="NVIDIA A10G", memory_total_mb=23028.0, power_limit_w=300.0, max_clock_mem_mhz=6251.0)),
        # v11 <power_readings><power_limit>; application clocks still reported.
        ("tesla-t4.xml", "515.105.01", "11.7",
         dict(name="Tesla T4", power_limit_w=70.0, applications_clock_sm_mhz=585.0, max_clock_sm_mhz=1590.0)),
        # v13: <gpu_power_readings>, application clocks "Requested functionality has been deprecated",
        # and a driver version that looks like a number ("595.84") stays text.
        ("rtx-4000-sff-ada-v13.xml", "595.84", "13.2",
         dict(name="NVIDIA RTX 4000 SFF Ada Generation", persistence_mode=True, ecc_enabled=False,
              power_limit_w=70.0, applications_clock_sm_mhz=None, applications_clock_mem_mhz=None,
              max_clock_sm_mhz=3105.0)),
        # v10, a partial document: what is absent is None, never a guess.
        ("gtx-1070-ti.xml", None, None,
         dict(name="GeForce GTX 1070 Ti", memory_total_mb=4096.0, persistence_mode=None, ecc_enabled=None,
              power_limit_w=None, max_clock_sm_mhz=None)),
    ],
)  # fmt: skip
def test_nvidia_smi_xml_across_schema_versions(fixture: str, driver: str, cuda: str, expected: dict) -> None:
    got_driver, got_cuda, gpus = nvidia.parse_smi_xml((XML / fixture).read_text())
    assert (got_driver, got_cuda) == (driver, cuda)
    (gpu,) = gpus
    assert gpu.index == 0 and gpu.uuid.startswith("GPU-") and gpu.pci_bus_id.startswith("0000")
    assert {k: getattr(gpu, k) for k in expected} == expected


@pytest.mark.parametrize(
    ("capture", "state", "expected"),
    [
        (H100, "load", dict(sm_clock_mhz=1980.0, utilization_gpu_pct=100.0, memory_used_mb=19818.0,
                            temperature_c=59.0, power_w=631.95, clocks_event_reasons=0)),
        (H100, "idle", dict(sm_clock_mhz=345.0, utilization_gpu_pct=0.0, clocks_event_reasons=0x1)),
        # The idle Turing card sits at its software power cap (0x4).
        (RTX_2080_SUPER, "idle", dict(power_w=39.32, temperature_c=40.0, clocks_event_reasons=0x4)),
    ],
)  # fmt: skip
def test_query_gpu_csv_rows_become_samples(capture: Path, state: str, expected: dict) -> None:
    rows = nvidia.parse_query_csv(capture_section(capture, f"{state} :: query-gpu"))
    (row,) = rows
    sample = nvidia.sample_from_row(row)
    assert {k: getattr(sample, k) for k in expected} == pytest.approx(expected)
    assert sample.energy_mj is None  # not among nvidia-smi's query fields: null, not zero
    assert row["clocks.applications.graphics"] is None  # "[Requested functionality has been deprecated]"


def test_smi_values() -> None:
    assert nvidia.smi_value("81920 MiB") == 81920.0 and nvidia.smi_value("2 GiB") == 2048.0
    assert nvidia.smi_value("67.03 W") == 67.03 and nvidia.smi_value("27 C") == 27.0
    assert nvidia.smi_value("N/A") is None and nvidia.smi_value("[N/A]") is None
    assert nvidia.smi_value("[Requested functionality has been deprecated]") is None
    assert nvidia.smi_value("Enabled") == "Enabled" and nvidia.smi_value("0x0000000000000004") == "0x0000000000000004"


def test_nvml_reader_converts_nvml_units() -> None:
    fake = FakeNvml([A100], reasons=[0x4])
    fake.nvmlInit()
    reader = nvidia.NvmlReader(fake)
    assert (reader.source, reader.driver_version, reader.cuda_driver_version) == ("nvml", "535.54.03", "12.2")
    (info,) = reader.gpus()
    assert (info.name, info.pci_bus_id, info.compute_capability) == ("NVIDIA A100-SXM4-80GB", "00000000:01:00.0", "8.0")
    assert (info.memory_total_mb, info.power_limit_w, info.persistence_mode, info.ecc_enabled) == (
        81920,
        400,
        True,
        True,
    )
    assert (info.applications_clock_sm_mhz, info.max_clock_mem_mhz) == (1275.0, 1593.0)
    (sample,) = reader.sample()
    assert (sample.sm_clock_mhz, sample.utilization_gpu_pct, sample.memory_used_mb) == (1410.0, 97.0, 2600.0)
    assert (sample.power_w, sample.temperature_c, sample.energy_mj) == (250.0, 61.0, 5_000_000.0)
    assert reason_names(sample.clocks_event_reasons) == ["sw_power_cap"]
    reader.close()
    assert not fake.initialised


def test_unsupported_fields_are_none_not_errors() -> None:
    # A pre-Volta GPU without an energy counter, ECC or application clocks; an old driver's reason name.
    old = {**A100, "energy_mj": NVMLError_NotSupported(), "ecc": NVMLError_NotSupported(),
           "app_sm": NVMLError_NotSupported(), "cc": NVMLError_NotSupported()}  # fmt: skip
    reader = nvidia.NvmlReader(FakeNvml([old], reasons=[0x40], old_reason_name=True))
    (info,) = reader.gpus()
    assert info.ecc_enabled is None and info.applications_clock_sm_mhz is None and info.compute_capability is None
    assert info.applications_clock_mem_mhz == 1593.0  # the rest is still read
    (sample,) = reader.sample()
    assert sample.energy_mj is None and sample.power_w == 250.0
    assert reason_names(sample.clocks_event_reasons) == ["hw_thermal_slowdown"]


def test_real_pynvml_on_this_host_says_why() -> None:
    pytest.importorskip("pynvml")
    if Path("/proc/driver/nvidia/version").exists():
        pytest.skip("an NVIDIA driver is loaded here")
    reason = nvidia.open_nvml()
    assert reason == "NVML: NVML Shared Library Not Found"


def _fake_smi(directory: Path, *, old_driver: bool) -> None:
    """An ``nvidia-smi`` executable that answers from the recorded H100 capture and the A100 XML (an older
    driver rejects the field name clocks_event_reasons.active, as nvidia-smi does for an unknown field)."""
    csv_text = capture_section(H100, "load :: query-gpu")
    script = directory / "nvidia-smi"
    script.write_text(
        f"#!{sys.executable}\n"
        "import csv, io, sys\n"
        f"XML = {str(XML / 'a100-sxm4-v12.xml')!r}\n"
        f"CSV = {csv_text!r}\n"
        f"OLD = {old_driver!r}\n"
        "args = sys.argv[1:]\n"
        "if args == ['-q', '-x']:\n"
        "    print(open(XML).read()); sys.exit(0)\n"
        "fields = args[0].split('=', 1)[1].split(',')\n"
        "if OLD and 'clocks_event_reasons.active' in fields:\n"
        "    print('Field \"clocks_event_reasons.active\" is not a valid field to query.'); sys.exit(2)\n"
        "rows = list(csv.reader(io.StringIO(CSV), skipinitialspace=True))\n"
        "names = [h.split(' [')[0].replace('clocks_event_', 'clocks_throttle_' if OLD else 'clocks_event_')\n"
        "         for h in rows[0]]\n"
        "keep = [names.index(f) for f in fields]\n"
        "for row in rows:\n"
        "    print(', '.join(row[i] for i in keep))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


@pytest.mark.parametrize("old_driver", [False, True])
def test_smi_reader_through_a_real_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old_driver: bool) -> None:
    _fake_smi(tmp_path, old_driver=old_driver)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    reader = nvidia.open_smi()
    assert not isinstance(reader, str), reader
    assert (reader.source, reader.driver_version, reader.cuda_driver_version) == ("nvidia-smi", "535.54.03", "12.2")
    assert [g.name for g in reader.gpus()] == ["NVIDIA A100-SXM4-80GB"]
    (sample,) = reader.sample()
    assert (sample.sm_clock_mhz, sample.power_w, sample.clocks_event_reasons) == (1980.0, 631.95, 0)
    assert reader.sample()[0].memory_used_mb == 19818.0  # the field that works is kept


def test_no_nvidia_smi_is_a_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert nvidia.open_smi() == "nvidia-smi: not found"
