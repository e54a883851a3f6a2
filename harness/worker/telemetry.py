"""The hardware facts recorded with a run: GPU facts and samples during training, CPU power settings.

A :class:`TelemetrySampler` reads the GPUs through NVML, else ``nvidia-smi``
(:mod:`harness.worker.nvidia`), once for the static facts and then on a daemon thread every
``interval_s`` (like :class:`harness.worker.metrics.RssSampler`); :meth:`~TelemetrySampler.mark_start`
and :meth:`~TelemetrySampler.mark_end` take one sample exactly at the start and the end of the
measured window (the training loop) so energy and throttling are judged over it. The CPU side
(cpufreq governor, boost, RAPL energy counters) comes from sysfs where it is readable. A CPU path
samples no GPU: its GPU fields are null, with the reason in ``Telemetry.unavailable``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from harness.store.telemetry import GpuInfo, GpuSamples, Telemetry
from harness.worker.nvidia import GpuSample, open_nvml, open_smi

log = logging.getLogger(__name__)

NVML_INTERVAL_S = 0.5  # NVML reads cost microseconds; power is a 1 s average on Ampere+ anyway
SMI_INTERVAL_S = 2.0  # every nvidia-smi sample is a process start
SYSFS = Path("/sys")
CPU_PATH_REASON = "CPU path: GPUs are not sampled"


class Reader(Protocol):
    """What the sampler needs of a GPU reader (:class:`~harness.worker.nvidia.NvmlReader` or ``SmiReader``)."""

    source: str
    driver_version: str | None
    cuda_driver_version: str | None

    def gpus(self) -> list[GpuInfo]: ...

    def sample(self) -> list[GpuSample]: ...

    def close(self) -> None: ...


def open_reader(nvml: Any | None = None) -> tuple[Reader | None, str | None]:
    """NVML, else nvidia-smi: (a reader, None) or (None, why neither works)."""
    reader = open_nvml(nvml)
    if not isinstance(reader, str):
        return reader, None
    fallback = open_smi()
    if not isinstance(fallback, str):
        log.info("GPU facts through nvidia-smi (%s)", reader)
        return fallback, None
    return None, f"{reader}; {fallback}"


@dataclass(frozen=True)
class Rapl:
    """The host's top-level RAPL zones (sub-zones are parts of a package: summing them would count twice)."""

    names: list[str]
    counters: list[Path]
    max_uj: list[float]

    def read_uj(self) -> list[float] | None:
        try:
            return [float(p.read_text()) for p in self.counters]
        except (OSError, ValueError):  # energy_uj is root-only on kernels since 5.10 (CVE-2020-8694)
            return None


def find_rapl(sysfs: Path = SYSFS) -> Rapl | None:
    """The readable RAPL zones under ``sysfs``/class/powercap, or None."""
    zones = sorted((sysfs / "class" / "powercap").glob("intel-rapl:[0-9]"))
    names, counters, tops = [], [], []
    for zone in zones:
        try:
            names.append((zone / "name").read_text().strip())
            tops.append(float((zone / "max_energy_range_uj").read_text()))
            float((zone / "energy_uj").read_text())
        except (OSError, ValueError):
            return None
        counters.append(zone / "energy_uj")
    return Rapl(names, counters, tops) if zones else None


def cpu_governors(sysfs: Path = SYSFS) -> list[str]:
    """Distinct cpufreq scaling governors of the CPUs (empty when cpufreq is not exposed, e.g. most VMs)."""
    found: list[str] = []
    for path in sorted((sysfs / "devices" / "system" / "cpu").glob("cpu[0-9]*/cpufreq/scaling_governor")):
        try:
            governor = path.read_text().strip()
        except OSError:
            continue
        if governor and governor not in found:
            found.append(governor)
    return found


def cpu_boost(sysfs: Path = SYSFS) -> bool | None:
    """Whether CPU boost/turbo is allowed: cpufreq's ``boost`` (acpi-cpufreq, amd-pstate), else intel_pstate."""
    cpu = sysfs / "devices" / "system" / "cpu"
    for path, on in ((cpu / "cpufreq" / "boost", "1"), (cpu / "intel_pstate" / "no_turbo", "0")):
        try:
            return path.read_text().strip() == on
        except OSError:
            continue
    return None


class TelemetrySampler:
    """Samples the GPUs of a reader on a daemon thread and assembles a :class:`Telemetry`."""

    def __init__(
        self,
        reader: Reader | None,
        unavailable: str | None = None,
        *,
        interval_s: float | None = None,
        sysfs: Path = SYSFS,
    ) -> None:
        self._reader = reader
        self.unavailable = unavailable
        default = SMI_INTERVAL_S if reader is not None and reader.source == "nvidia-smi" else NVML_INTERVAL_S
        self.interval_s = default if interval_s is None else interval_s
        self._gpus = reader.gpus() if reader is not None else []
        self._rows: list[tuple[float, list[GpuSample]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="gpu-sampler", daemon=True)
        self._started = time.perf_counter()
        self._window: list[int | None] = [None, None]
        self._sysfs = sysfs
        self._rapl = find_rapl(sysfs)
        self._rapl_reads: list[list[float] | None] = [None, None]

    def __enter__(self) -> TelemetrySampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._started = time.perf_counter()
        if self._reader is not None:
            self.sample_now()
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample_now()

    def sample_now(self) -> int | None:
        """Take one sample of every GPU now; its index (None without a reader)."""
        if self._reader is None:
            return None
        with self._lock:  # one reading at a time: the marks and the thread never interleave
            t = time.perf_counter() - self._started
            try:
                row = self._reader.sample()
            except Exception as exc:  # noqa: BLE001 - a sampler must never take the run down
                log.warning("GPU sample failed: %s", exc)
                return None
            self._rows.append((t, row))
            return len(self._rows) - 1

    def mark_start(self) -> None:
        """The measured window starts now (one sample and one RAPL read exactly here)."""
        self._window[0] = self.sample_now()
        self._rapl_reads[0] = self._rapl.read_uj() if self._rapl else None

    def mark_end(self) -> None:
        """The measured window ends now."""
        self._window[1] = self.sample_now()
        self._rapl_reads[1] = self._rapl.read_uj() if self._rapl else None

    def stop(self) -> None:
        """Stop sampling (idempotent) and release the reader."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2 * self.interval_s + 5)
        if self._reader is not None:
            self._reader.close()

    def telemetry(self) -> Telemetry:
        """Everything read so far, raw samples column by column per GPU."""
        with self._lock:
            rows = list(self._rows)
        reader = self._reader
        start, end = self._rapl_reads
        rapl_ok = self._rapl is not None and start is not None and end is not None
        return Telemetry(
            source=None if reader is None else reader.source,
            unavailable=self.unavailable,
            driver_version=None if reader is None else reader.driver_version,
            cuda_driver_version=None if reader is None else reader.cuda_driver_version,
            gpus=list(self._gpus),
            samples=[_columns(gpu.index, rows) for gpu in self._gpus],
            sample_interval_s=None if reader is None else self.interval_s,
            window_start_sample=self._window[0],
            window_end_sample=self._window[1],
            cpu_governors=cpu_governors(self._sysfs),
            cpu_boost=cpu_boost(self._sysfs),
            rapl_domains=list(self._rapl.names) if self._rapl is not None and rapl_ok else [],
            rapl_start_uj=list(start) if rapl_ok and start is not None else [],
            rapl_end_uj=list(end) if rapl_ok and end is not None else [],
            rapl_max_uj=list(self._rapl.max_uj) if self._rapl is not None and rapl_ok else [],
        )


def _columns(index: int, rows: list[tuple[float, list[GpuSample]]]) -> GpuSamples:
    """One GPU's samples as columns; a tick where the GPU was missing from a reading holds None."""
    ticks = [(t, next((s for s in row if s.index == index), GpuSample(index))) for t, row in rows]
    return GpuSamples(
        index=index,
        t_s=[round(t, 4) for t, _ in ticks],
        sm_clock_mhz=[s.sm_clock_mhz for _, s in ticks],
        utilization_gpu_pct=[s.utilization_gpu_pct for _, s in ticks],
        utilization_memory_pct=[s.utilization_memory_pct for _, s in ticks],
        memory_used_mb=[s.memory_used_mb for _, s in ticks],
        temperature_c=[s.temperature_c for _, s in ticks],
        power_w=[s.power_w for _, s in ticks],
        clocks_event_reasons=[s.clocks_event_reasons for _, s in ticks],
        energy_mj=[s.energy_mj for _, s in ticks],
    )


def sampler_for(device: str, *, nvml: Any | None = None, sysfs: Path = SYSFS) -> TelemetrySampler:
    """The sampler of a run on ``device``: GPUs through NVML or nvidia-smi on GPU paths, none on CPU paths."""
    if device != "gpu":
        return TelemetrySampler(None, CPU_PATH_REASON, sysfs=sysfs)
    reader, unavailable = open_reader(nvml)
    if reader is None:
        log.warning("no GPU facts: %s", unavailable)
    return TelemetrySampler(reader, unavailable, sysfs=sysfs)
