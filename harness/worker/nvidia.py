"""GPU facts from NVIDIA's own tools: NVML through ``pynvml`` (package nvidia-ml-py), else ``nvidia-smi``.

Both readers give the same things: the driver, static facts per GPU (:class:`GpuInfo`) and, on
demand, one :class:`GpuSample` per GPU. Every field is read on its own: what the GPU, the driver or
the tool does not support is ``None``, never an exception and never a guess. Units: MB = 2**20
bytes, W, MHz, degrees C, percent; NVML's raw integers are converted with NVML's documented units
(memory bytes, power mW, energy mJ, clocks MHz).

``nvidia-smi``'s output drifted over driver releases (see tests/worker/fixtures/nvidia/SOURCES.md):
``<power_readings>`` became ``<gpu_power_readings>``, ``power_draw`` became
``instant_/average_power_draw``, ``clocks_throttle_reasons`` became ``clocks_event_reasons``, and
deprecated values read "Requested functionality has been deprecated"; the parsers accept all of them.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.store.telemetry import GpuInfo

SMI_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class GpuSample:
    """One reading of one GPU's dynamic state."""

    index: int
    sm_clock_mhz: float | None = None
    utilization_gpu_pct: float | None = None
    utilization_memory_pct: float | None = None
    memory_used_mb: float | None = None
    temperature_c: float | None = None
    power_w: float | None = None
    clocks_event_reasons: int | None = None
    energy_mj: float | None = None


class NvmlReader:
    """NVML through a ``pynvml`` module (the real one, or any object with its functions)."""

    source = "nvml"

    def __init__(self, nvml: Any) -> None:
        """``nvml`` must be initialised (``nvmlInit()`` succeeded); :meth:`close` shuts it down."""
        self._nvml = nvml
        self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
        self.driver_version = _text(self._read("nvmlSystemGetDriverVersion"))
        cuda = self._read("nvmlSystemGetCudaDriverVersion")  # 12050 -> "12.5" (nvidia-smi's "CUDA Version")
        self.cuda_driver_version = None if cuda is None else f"{int(cuda) // 1000}.{(int(cuda) % 1000) // 10}"

    def _read(self, function: str, *args: Any) -> Any:
        """One NVML call; NVML errors (NotSupported, NoPermission, FunctionNotFound, ...) become None."""
        fn = getattr(self._nvml, function, None)
        if fn is None:  # an older pynvml without this wrapper
            return None
        try:
            return fn(*args)
        except self._nvml.NVMLError:
            return None

    def gpus(self) -> list[GpuInfo]:
        return [self._info(i, h) for i, h in enumerate(self._handles)]

    def _info(self, index: int, h: Any) -> GpuInfo:
        n = self._nvml
        cc = self._read("nvmlDeviceGetCudaComputeCapability", h)
        memory = self._read("nvmlDeviceGetMemoryInfo", h)
        pci = self._read("nvmlDeviceGetPciInfo", h)
        persistence = self._read("nvmlDeviceGetPersistenceMode", h)
        ecc = self._read("nvmlDeviceGetEccMode", h)  # [current, pending]
        limit = self._read("nvmlDeviceGetEnforcedPowerLimit", h)
        return GpuInfo(
            index=index,
            name=_text(self._read("nvmlDeviceGetName", h)),
            uuid=_text(self._read("nvmlDeviceGetUUID", h)),
            pci_bus_id=None if pci is None else _text(pci.busId),
            compute_capability=None if cc is None else f"{cc[0]}.{cc[1]}",
            memory_total_mb=None if memory is None else memory.total / 2**20,
            persistence_mode=None if persistence is None else persistence == n.NVML_FEATURE_ENABLED,
            ecc_enabled=None if ecc is None else ecc[0] == n.NVML_FEATURE_ENABLED,
            power_limit_w=None if limit is None else limit / 1000.0,
            applications_clock_sm_mhz=_number(self._read("nvmlDeviceGetApplicationsClock", h, n.NVML_CLOCK_SM)),
            applications_clock_mem_mhz=_number(self._read("nvmlDeviceGetApplicationsClock", h, n.NVML_CLOCK_MEM)),
            max_clock_sm_mhz=_number(self._read("nvmlDeviceGetMaxClockInfo", h, n.NVML_CLOCK_SM)),
            max_clock_mem_mhz=_number(self._read("nvmlDeviceGetMaxClockInfo", h, n.NVML_CLOCK_MEM)),
        )

    def sample(self) -> list[GpuSample]:
        return [self._sample(i, h) for i, h in enumerate(self._handles)]

    def _sample(self, index: int, h: Any) -> GpuSample:
        n = self._nvml
        util = self._read("nvmlDeviceGetUtilizationRates", h)
        memory = self._read("nvmlDeviceGetMemoryInfo", h)
        power = self._read("nvmlDeviceGetPowerUsage", h)
        # "clocks event reasons" since R535; the same mask was called "throttle reasons" before.
        reasons = self._read("nvmlDeviceGetCurrentClocksEventReasons", h)
        if reasons is None:
            reasons = self._read("nvmlDeviceGetCurrentClocksThrottleReasons", h)
        return GpuSample(
            index=index,
            sm_clock_mhz=_number(self._read("nvmlDeviceGetClockInfo", h, n.NVML_CLOCK_SM)),
            utilization_gpu_pct=None if util is None else float(util.gpu),
            utilization_memory_pct=None if util is None else float(util.memory),
            memory_used_mb=None if memory is None else memory.used / 2**20,
            temperature_c=_number(self._read("nvmlDeviceGetTemperature", h, n.NVML_TEMPERATURE_GPU)),
            power_w=None if power is None else power / 1000.0,
            clocks_event_reasons=None if reasons is None else int(reasons),
            energy_mj=_number(self._read("nvmlDeviceGetTotalEnergyConsumption", h)),  # Volta or newer
        )

    def close(self) -> None:
        self._read("nvmlShutdown")


def open_nvml(nvml: Any | None = None) -> NvmlReader | str:
    """An NVML reader, or why there is none (e.g. "NVML: NVML Shared Library Not Found" on a CPU host)."""
    if nvml is None:
        try:
            import pynvml
        except ImportError:
            return "NVML: pynvml not installed (package nvidia-ml-py)"
        nvml = pynvml
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        return f"NVML: {exc}"
    try:
        return NvmlReader(nvml)
    except nvml.NVMLError as exc:  # e.g. a GPU lost between init and the first handle
        nvml.nvmlShutdown()
        return f"NVML: {exc}"


# --- nvidia-smi --------------------------------------------------------------------------------

_MISSING = {"n/a", "[n/a]", "not supported", "[not supported]", "unknown error", "[unknown error]", ""}
_NUMBER = re.compile(r"^([-+]?\d+(?:\.\d+)?)\s*([A-Za-z%]*)$")
_TO_MB = {"MiB": 1.0, "GiB": 1024.0, "KiB": 1.0 / 1024, "B": 1.0 / 2**20}
_PLAIN_UNITS = {"", "W", "MHz", "C", "%"}


def smi_value(text: str | None) -> float | str | None:
    """'81920 MiB' -> 81920.0 (MB); '67.03 W' -> 67.03; 'N/A', '[N/A]', '...deprecated...' -> None; else text."""
    if text is None:
        return None
    t = text.strip()
    if t.lower() in _MISSING or "deprecated" in t.lower():
        return None
    m = _NUMBER.match(t)
    if m is None:
        return t
    number, unit = float(m.group(1)), m.group(2)
    if unit in _TO_MB:
        return number * _TO_MB[unit]
    return number if unit in _PLAIN_UNITS else t


def _first(element: ET.Element, *paths: str) -> float | str | None:
    """The first of ``paths`` (direct children: MIG devices' nested copies are not matched) with a value."""
    for path in paths:
        found = element.find(path)
        if found is not None and smi_value(found.text) is not None:
            return smi_value(found.text)
    return None


def _text_at(element: ET.Element, path: str) -> str | None:
    """The text at ``path`` as written (versions like "595.84" must stay text), None when missing."""
    found = element.find(path)
    text = None if found is None or found.text is None else found.text.strip()
    return None if text is None or smi_value(text) is None else text


def parse_smi_xml(text: str) -> tuple[str | None, str | None, list[GpuInfo]]:
    """``nvidia-smi -q -x`` -> (driver version, the driver's CUDA version, static facts per GPU)."""
    root = ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", text, count=1))  # never fetch the DTD
    gpus = []
    for index, gpu in enumerate(root.findall("gpu")):
        gpus.append(
            GpuInfo(
                index=index,
                name=_text_at(gpu, "product_name"),
                uuid=_text_at(gpu, "uuid"),
                pci_bus_id=gpu.get("id"),
                compute_capability=None,  # not in the XML of the DTD versions seen (v10-v13)
                memory_total_mb=_number(_first(gpu, "fb_memory_usage/total")),
                persistence_mode=_enabled(_text_at(gpu, "persistence_mode")),
                ecc_enabled=_enabled(_text_at(gpu, "ecc_mode/current_ecc")),
                power_limit_w=_number(
                    _first(
                        gpu,
                        "gpu_power_readings/enforced_power_limit",
                        "gpu_power_readings/current_power_limit",
                        "power_readings/enforced_power_limit",
                        "power_readings/power_limit",
                    )
                ),
                applications_clock_sm_mhz=_number(_first(gpu, "applications_clocks/graphics_clock")),
                applications_clock_mem_mhz=_number(_first(gpu, "applications_clocks/mem_clock")),
                max_clock_sm_mhz=_number(_first(gpu, "max_clocks/sm_clock")),
                max_clock_mem_mhz=_number(_first(gpu, "max_clocks/mem_clock")),
            )
        )
    return _text_at(root, "driver_version"), _text_at(root, "cuda_version"), gpus


def parse_query_csv(text: str) -> list[dict[str, float | str | None]]:
    """Rows of ``nvidia-smi --query-gpu=... --format=csv`` as {field: value}; the header's unit is dropped."""
    rows = list(csv.reader(io.StringIO("\n".join(ln for ln in text.splitlines() if ln.strip())), skipinitialspace=True))
    if not rows:
        return []
    header = [re.sub(r"\s*\[[^\]]*\]$", "", h.strip()) for h in rows[0]]
    return [{h: smi_value(v) for h, v in zip(header, row, strict=False)} for row in rows[1:]]


SAMPLE_FIELDS = (
    "index", "clocks.current.sm", "utilization.gpu", "utilization.memory", "memory.used", "temperature.gpu",
    "power.draw",
)  # fmt: skip
REASON_FIELDS = ("clocks_event_reasons.active", "clocks_throttle_reasons.active")  # new name, then the old


def sample_from_row(row: dict[str, float | str | None]) -> GpuSample:
    """One ``--query-gpu`` CSV row as a sample (energy is not among nvidia-smi's query fields: None)."""
    mask = next((row[f] for f in REASON_FIELDS if isinstance(row.get(f), str)), None)
    return GpuSample(
        index=int(_number(row.get("index")) or 0),
        sm_clock_mhz=_number(row.get("clocks.current.sm")),
        utilization_gpu_pct=_number(row.get("utilization.gpu")),
        utilization_memory_pct=_number(row.get("utilization.memory")),
        memory_used_mb=_number(row.get("memory.used")),
        temperature_c=_number(row.get("temperature.gpu")),
        power_w=_number(row.get("power.draw")),
        clocks_event_reasons=int(str(mask), 16) if mask is not None else None,
    )


class SmiReader:
    """``nvidia-smi`` as a fallback reader: ``-q -x`` once, ``--query-gpu`` per sample (a process each)."""

    source = "nvidia-smi"

    def __init__(self, run: Callable[[list[str]], str], xml: str) -> None:
        self._run = run
        self.driver_version, self.cuda_driver_version, self._gpus = parse_smi_xml(xml)
        self._reason_field: str | None = REASON_FIELDS[0]

    def gpus(self) -> list[GpuInfo]:
        return list(self._gpus)

    def sample(self) -> list[GpuSample]:
        fields = list(SAMPLE_FIELDS) + ([self._reason_field] if self._reason_field else [])
        try:
            out = self._run(["--query-gpu=" + ",".join(fields), "--format=csv"])
        except (OSError, subprocess.SubprocessError):
            if self._reason_field == REASON_FIELDS[0]:  # an older driver: "not a valid field to query"
                self._reason_field = REASON_FIELDS[1]
            elif self._reason_field is not None:
                self._reason_field = None
            else:
                return []
            return self.sample()
        return [sample_from_row(row) for row in parse_query_csv(out)]

    def close(self) -> None:
        pass


def run_smi(args: list[str]) -> str:
    """``nvidia-smi ARGS`` (stdout); raises OSError / SubprocessError when it is absent or fails."""
    return subprocess.run(
        ["nvidia-smi", *args], capture_output=True, text=True, timeout=SMI_TIMEOUT_S, check=True
    ).stdout


def open_smi(run: Callable[[list[str]], str] = run_smi) -> SmiReader | str:
    """An nvidia-smi reader, or why there is none."""
    if run is run_smi and shutil.which("nvidia-smi") is None:
        return "nvidia-smi: not found"
    try:
        return SmiReader(run, run(["-q", "-x"]))
    except (OSError, subprocess.SubprocessError) as exc:
        return f"nvidia-smi: {exc}"
    except ET.ParseError as exc:
        return f"nvidia-smi: unreadable XML ({exc})"


# --- value helpers -----------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _enabled(value: float | str | None) -> bool | None:
    return {"Enabled": True, "Disabled": False}.get(value) if isinstance(value, str) else None
