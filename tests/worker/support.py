"""Test support for the GPU-facts tests: the recorded nvidia-smi fixtures and a fake NVML module.

The fake stands in for the ``pynvml`` *module* (an object with NVML's functions, constants and error
classes, values in NVML's raw units), never for tfparity's own code: the reader and the sampler run
unchanged on it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "nvidia"
XML = FIXTURES / "telegraf"
CAPTURES = FIXTURES / "nvidia_gpu_exporter"
H100 = CAPTURES / "linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt"
RTX_2080_SUPER = CAPTURES / "linux-x86_64__nvidia-geforce-rtx-2080-super__595.71.05.txt"


def capture_section(path: Path, title: str) -> str:
    """The body of one ``# <title>`` section of an nvidia_gpu_exporter capture (e.g. "load :: query-gpu")."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"# {title}"))
    body: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            if body:
                break
            continue
        body.append(line)
    return "\n".join(body).strip() + "\n"


class NVMLError(Exception):
    """As pynvml's: ``value`` is the NVML_ERROR_* code."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value


class NVMLError_NotSupported(NVMLError):  # noqa: N801 - pynvml's name
    def __init__(self) -> None:
        super().__init__(3)

    def __str__(self) -> str:
        return "Not Supported"


class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801 - pynvml's name
    def __init__(self) -> None:
        super().__init__(12)

    def __str__(self) -> str:
        return "NVML Shared Library Not Found"


A100 = {
    "name": "NVIDIA A100-SXM4-80GB", "uuid": "GPU-513536b6-7d19-9063-b049-1e69664bb298",
    "bus_id": "00000000:01:00.0", "cc": (8, 0), "total": 81920 * 2**20, "used": 2600 * 2**20,
    "persistence": 1, "ecc": [1, 1], "limit_mw": 400_000, "app_sm": 1275, "app_mem": 1593, "max_sm": 1410,
    "max_mem": 1593, "sm": 1410, "util": (97, 40), "temp": 61, "power_mw": 250_000, "energy_mj": 5_000_000,
}  # fmt: skip


class FakeNvml:
    """A pynvml-like module over ``gpus`` (dicts like :data:`A100`); a value that is an exception is raised.

    Each sample reads the clocks-event mask from ``reasons`` (the last one repeats) and advances the
    energy counter by ``joules_per_sample``; ``sampled`` is set once ``wait_samples`` samples were taken.
    """

    NVMLError = NVMLError
    NVMLError_NotSupported = NVMLError_NotSupported
    NVML_FEATURE_ENABLED = 1
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2
    NVML_TEMPERATURE_GPU = 0

    def __init__(
        self,
        gpus: list[dict[str, Any]],
        *,
        reasons: list[int] | None = None,
        joules_per_sample: float = 100.0,
        wait_samples: int = 3,
        old_reason_name: bool = False,
    ) -> None:
        self.gpus = gpus
        self.reasons = reasons or [0]
        self.joules = joules_per_sample
        self.samples = 0
        self.wait_samples = wait_samples
        self.sampled = threading.Event()
        self.initialised = False
        if old_reason_name:  # drivers before R535: the same mask under its older name
            self.nvmlDeviceGetCurrentClocksThrottleReasons = self._reasons
        else:
            self.nvmlDeviceGetCurrentClocksEventReasons = self._reasons

    def _get(self, h: int, key: str) -> Any:
        value = self.gpus[h][key]
        if isinstance(value, Exception):
            raise value
        return value

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names from here on
        self.initialised = True

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.initialised = False

    def nvmlSystemGetDriverVersion(self) -> str:  # noqa: N802
        return "535.54.03"

    def nvmlSystemGetCudaDriverVersion(self) -> int:  # noqa: N802
        return 12020

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:  # noqa: N802
        return i

    def nvmlDeviceGetName(self, h: int) -> str:  # noqa: N802
        return self._get(h, "name")

    def nvmlDeviceGetUUID(self, h: int) -> str:  # noqa: N802
        return self._get(h, "uuid")

    def nvmlDeviceGetPciInfo(self, h: int) -> Any:  # noqa: N802
        return SimpleNamespace(busId=self._get(h, "bus_id").encode())  # bytes, as older pynvml returns

    def nvmlDeviceGetCudaComputeCapability(self, h: int) -> tuple[int, int]:  # noqa: N802
        return self._get(h, "cc")

    def nvmlDeviceGetMemoryInfo(self, h: int) -> Any:  # noqa: N802
        return SimpleNamespace(total=self._get(h, "total"), used=self._get(h, "used"))

    def nvmlDeviceGetPersistenceMode(self, h: int) -> int:  # noqa: N802
        return self._get(h, "persistence")

    def nvmlDeviceGetEccMode(self, h: int) -> list[int]:  # noqa: N802
        return self._get(h, "ecc")

    def nvmlDeviceGetEnforcedPowerLimit(self, h: int) -> int:  # noqa: N802
        return self._get(h, "limit_mw")

    def nvmlDeviceGetApplicationsClock(self, h: int, clock: int) -> int:  # noqa: N802
        return self._get(h, "app_sm" if clock == self.NVML_CLOCK_SM else "app_mem")

    def nvmlDeviceGetMaxClockInfo(self, h: int, clock: int) -> int:  # noqa: N802
        return self._get(h, "max_sm" if clock == self.NVML_CLOCK_SM else "max_mem")

    def nvmlDeviceGetClockInfo(self, h: int, clock: int) -> int:  # noqa: N802
        return self._get(h, "sm")

    def nvmlDeviceGetUtilizationRates(self, h: int) -> Any:  # noqa: N802
        gpu, memory = self._get(h, "util")
        return SimpleNamespace(gpu=gpu, memory=memory)

    def nvmlDeviceGetTemperature(self, h: int, sensor: int) -> int:  # noqa: N802
        return self._get(h, "temp")

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:  # noqa: N802
        return self._get(h, "power_mw")

    def nvmlDeviceGetTotalEnergyConsumption(self, h: int) -> int:  # noqa: N802
        # The last getter of a sample: one sample of this GPU is complete.
        value = self._get(h, "energy_mj") + int(self.joules * 1000 * self.samples)
        if h == len(self.gpus) - 1:
            self.samples += 1
            if self.samples >= self.wait_samples:
                self.sampled.set()
        return value

    def _reasons(self, h: int) -> int:
        return self.reasons[min(self.samples, len(self.reasons) - 1)]


def missing_library() -> Any:
    """A pynvml-like module whose nvmlInit fails as it does on a host without the driver."""

    def init() -> None:
        raise NVMLError_LibraryNotFound()

    return SimpleNamespace(NVMLError=NVMLError, nvmlInit=init)
