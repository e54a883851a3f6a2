"""The hardware facts recorded with a run's numbers (schema, TF-free): GPU facts, raw GPU samples, host power.

The worker (:mod:`harness.worker.telemetry`) reads them through NVML or ``nvidia-smi`` and the
Linux sysfs; compare and report read them from the result. Raw samples are stored, one list entry
per sampler tick; energy, throttling and the hardware identity are derived here, so every reader
derives them the same way. Whatever could not be read is ``None`` (on a CPU host every GPU field),
never a guessed value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# NVML's clocks-event ("throttle") reason bits, nvmlClocksEventReason* (pynvml constants; the NVML API
# reference names them nvmlClocksThrottleReason* before driver R535). nvidia-smi prints the same mask.
CLOCK_EVENT_REASONS: dict[str, int] = {
    "gpu_idle": 0x1,
    "applications_clocks_setting": 0x2,
    "sw_power_cap": 0x4,
    "hw_slowdown": 0x8,
    "sync_boost": 0x10,
    "sw_thermal_slowdown": 0x20,
    "hw_thermal_slowdown": 0x40,
    "hw_power_brake_slowdown": 0x80,
    "display_clock_setting": 0x100,
}
# The reasons that mean "slower than configured because of power or heat". Idle, application clocks,
# sync boost and display clocks are settings or states, not throttling.
THROTTLE_REASONS = (
    "sw_power_cap",
    "hw_slowdown",
    "sw_thermal_slowdown",
    "hw_thermal_slowdown",
    "hw_power_brake_slowdown",
)


def reason_names(mask: int) -> list[str]:
    """The names of the clocks-event reason bits set in ``mask``, in bit order."""
    return [name for name, bit in CLOCK_EVENT_REASONS.items() if mask & bit]


@dataclass(frozen=True)
class GpuInfo:
    """Static facts of one GPU, read once when the run starts."""

    index: int  # NVML's index (PCI bus order), not CUDA's device order
    name: str | None = None
    uuid: str | None = None  # GPU-xxxxxxxx-...: the identity that survives renumbering by CUDA_VISIBLE_DEVICES
    pci_bus_id: str | None = None
    compute_capability: str | None = None  # "8.0"
    memory_total_mb: float | None = None
    persistence_mode: bool | None = None
    ecc_enabled: bool | None = None
    power_limit_w: float | None = None  # the enforced power limit
    applications_clock_sm_mhz: float | None = None  # deprecated in NVML; None on R580+ drivers
    applications_clock_mem_mhz: float | None = None
    max_clock_sm_mhz: float | None = None
    max_clock_mem_mhz: float | None = None


@dataclass(frozen=True)
class GpuSamples:
    """Raw samples of one GPU, one entry per sampler tick (``None``: not readable at that tick)."""

    index: int  # NVML index, as in GpuInfo
    t_s: list[float] = field(default_factory=list)  # seconds since the sampler started
    sm_clock_mhz: list[float | None] = field(default_factory=list)
    utilization_gpu_pct: list[float | None] = field(default_factory=list)  # over NVML's last sample period
    utilization_memory_pct: list[float | None] = field(default_factory=list)
    memory_used_mb: list[float | None] = field(default_factory=list)
    temperature_c: list[float | None] = field(default_factory=list)
    power_w: list[float | None] = field(default_factory=list)  # a 1 s average on Ampere+ (not GA100)
    clocks_event_reasons: list[int | None] = field(default_factory=list)  # NVML bit mask, CLOCK_EVENT_REASONS
    energy_mj: list[float | None] = field(default_factory=list)  # cumulative since driver load (Volta+)


@dataclass(frozen=True)
class Telemetry:
    """GPU facts and samples plus the host's CPU power settings; see the module docstring.

    The *window* is the measured part of the run (``model.fit`` or the compiled loop): the sampler
    takes one sample exactly when it starts and one when it ends, at ``window_start_sample`` and
    ``window_end_sample``; energy and throttling are judged over it.
    """

    source: str | None = None  # "nvml" | "nvidia-smi" | None (no GPU facts readable)
    unavailable: str | None = None  # why there are no GPU facts, e.g. "NVML: NVML Shared Library Not Found"
    driver_version: str | None = None
    cuda_driver_version: str | None = None  # the driver's CUDA version, e.g. "12.5"
    gpus: list[GpuInfo] = field(default_factory=list)
    samples: list[GpuSamples] = field(default_factory=list)
    sample_interval_s: float | None = None
    window_start_sample: int | None = None
    window_end_sample: int | None = None
    # CPU side, where the host exposes it (often not inside VMs and containers).
    cpu_governors: list[str] = field(default_factory=list)  # distinct cpufreq scaling governors
    cpu_boost: bool | None = None  # cpufreq boost / intel_pstate turbo
    rapl_domains: list[str] = field(default_factory=list)  # powercap RAPL zones, e.g. "package-0"
    rapl_start_uj: list[float] = field(default_factory=list)  # energy counters at the window start
    rapl_end_uj: list[float] = field(default_factory=list)
    rapl_max_uj: list[float] = field(default_factory=list)  # wrap-around range of each counter

    def window(self, gpu: GpuSamples) -> range:
        """The sample indices of ``gpu`` inside the window (all samples when no window was marked)."""
        start = 0 if self.window_start_sample is None else self.window_start_sample
        end = len(gpu.t_s) - 1 if self.window_end_sample is None else self.window_end_sample
        return range(max(start, 0), min(end, len(gpu.t_s) - 1) + 1)

    @property
    def gpu_energy_j(self) -> float | None:
        """Energy of all sampled GPUs over the window (NVML's counter); None when any counter is missing."""
        if not self.samples or self.window_start_sample is None or self.window_end_sample is None:
            return None
        total = 0.0
        for gpu in self.samples:
            idx = self.window(gpu)
            if not idx:
                return None
            start, end = gpu.energy_mj[idx[0]], gpu.energy_mj[idx[-1]]
            if start is None or end is None or end < start:
                return None
            total += (end - start) / 1000.0
        return total

    @property
    def rapl_energy_j(self) -> float | None:
        """CPU package energy over the window (RAPL, summed over zones, counter wrap-around handled)."""
        n = len(self.rapl_domains)
        if not n or not (len(self.rapl_start_uj) == len(self.rapl_end_uj) == len(self.rapl_max_uj) == n):
            return None
        total = 0.0
        for start, end, top in zip(self.rapl_start_uj, self.rapl_end_uj, self.rapl_max_uj, strict=True):
            total += (end - start if end >= start else end + top - start) / 1e6
        return total

    def samples_per_j(self, trained_samples: int) -> float | None:
        """Training samples per joule of GPU energy over the window."""
        energy = self.gpu_energy_j
        return None if energy is None or energy <= 0 else trained_samples / energy

    def throttle_counts(self) -> tuple[int, dict[str, int]]:
        """(samples in the window with a readable reason mask, samples per throttle reason), all GPUs."""
        readable = 0
        counts: dict[str, int] = {}
        for gpu in self.samples:
            for i in self.window(gpu):
                mask = gpu.clocks_event_reasons[i] if i < len(gpu.clocks_event_reasons) else None
                if mask is None:
                    continue
                readable += 1
                for name in reason_names(mask):
                    if name in THROTTLE_REASONS:
                        counts[name] = counts.get(name, 0) + 1
        return readable, counts

    @property
    def hardware(self) -> tuple[tuple[str, ...], str | None] | None:
        """What a speed or memory baseline depends on: (sorted GPU models, driver); None without GPU facts."""
        if not self.gpus:
            return None
        return tuple(sorted(g.name or "unknown GPU" for g in self.gpus)), self.driver_version
