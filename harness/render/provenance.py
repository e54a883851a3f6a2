"""The report's provenance table: per group, the environment its runs actually had (GPU facts and what the
GPU did during training included)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from harness.analysis.hardware import gpu_summary
from harness.analysis.samples import Run
from harness.render.table import Cell, Table
from harness.store.results import RunResult


def _distinct(values: Iterable[Any]) -> str:
    """Distinct non-empty values in first-seen order ("n/a" only when there is none)."""
    seen: list[str] = []
    for v in values:
        if v in (None, "", "n/a", [], {}):
            continue
        if str(v) not in seen:
            seen.append(str(v))
    return "; ".join(seen) if seen else "n/a"


def _tf_build(env: dict[str, Any]) -> str:
    info = env.get("tf_build_info") or {}
    if not isinstance(info, dict) or not info:
        return "n/a"
    if info.get("is_cuda_build"):
        return f"CUDA {info.get('cuda_version', '?')}, cuDNN {info.get('cudnn_version', '?')}"
    return "CPU build (no CUDA)"


def _devices(r: RunResult) -> str:
    parts = []
    if r.evidence is not None and r.evidence.physical_devices:
        parts.append(", ".join(r.evidence.physical_devices))
    for g in r.environment.get("gpus") or []:
        if isinstance(g, dict):
            parts.append(f"{g.get('name', '?')} (driver {g.get('driver', '?')})")
    if r.environment.get("cpu_model"):
        parts.append(f"{r.environment['cpu_model']} × {r.environment.get('cpu_count', '?')}")
    return " · ".join(parts) if parts else "n/a"


def _short(value: Any, n: int) -> Any:
    return value[:n] if isinstance(value, str) else value


def _dataset_text(r: RunResult) -> str | None:
    if r.dataset is None:
        return None
    return f"{r.dataset.name} {r.dataset.sha256[:12]}" + (" [synthetic]" if r.dataset.synthetic else "")


def _on_off(flag: bool | None) -> str:
    return "?" if flag is None else ("on" if flag else "off")


def _mhz(a: float | None, b: float | None) -> str:
    """``SM/memory MHz``; "n/a" when neither is known (application clocks are deprecated on R580+)."""
    if a is None and b is None:
        return "n/a"
    return "/".join("?" if v is None else f"{v:.0f}" for v in (a, b)) + " MHz"


def _gpus(r: RunResult) -> str | None:
    t = r.telemetry
    if t is None or not t.gpus:
        return f"not recorded: {t.unavailable}" if t is not None and r.run_spec.path.device == "gpu" else None
    return ", ".join(
        f"{g.name} ({(g.uuid or '?')[:12]}…, cc {g.compute_capability or '?'}, {_fmt(g.memory_total_mb, 'MB')})"
        for g in t.gpus
    )


def _gpu_driver(r: RunResult) -> str | None:
    t = r.telemetry
    if t is None or t.source is None:
        return None
    return f"{t.driver_version or '?'} (CUDA {t.cuda_driver_version or '?'}; read through {t.source})"


def _gpu_settings(r: RunResult) -> str | None:
    if r.telemetry is None or not r.telemetry.gpus:
        return None
    settings = []
    for g in r.telemetry.gpus:
        apps, top = (
            _mhz(g.applications_clock_sm_mhz, g.applications_clock_mem_mhz),
            _mhz(g.max_clock_sm_mhz, g.max_clock_mem_mhz),
        )
        settings.append(
            f"power limit {_fmt(g.power_limit_w, 'W')}, persistence {_on_off(g.persistence_mode)}, "
            f"ECC {_on_off(g.ecc_enabled)}, application clocks {apps}, max clocks {top}"
        )
    return ", ".join(settings)


def _fmt(value: float | None, unit: str, digits: int = 0) -> str:
    return "?" if value is None else f"{value:.{digits}f} {unit}"


def _gpu_run(r: RunResult) -> str | None:
    """Per run: SM clock and utilisation medians, peak memory and temperature, mean power, energy."""
    s = gpu_summary(r)
    if s is None:
        return None
    energy = "" if s.energy_j is None else f", {s.energy_j:.0f} J ({_fmt(s.samples_per_j, 'samples/J', 1)})"
    return (
        f"SM {_fmt(s.sm_clock_mhz_p50, 'MHz')}, util {_fmt(s.utilization_gpu_pct_p50, '%')}, "
        f"mem {_fmt(s.memory_used_mb_max, 'MB')}, {_fmt(s.temperature_c_max, '°C')} max, "
        f"{_fmt(s.power_w_mean, 'W')} mean{energy}"
    )


def _throttling(r: RunResult) -> str | None:
    s = gpu_summary(r)
    if s is None:
        return None
    return ", ".join(f"{k} {v:.0%}" for k, v in s.throttle_share.items()) or "none"


def _cpu_power(r: RunResult) -> str | None:
    t = r.telemetry
    if t is None:
        return None
    parts = [f"governor {'/'.join(t.cpu_governors)}"] if t.cpu_governors else []
    parts += [f"boost {_on_off(t.cpu_boost)}"] if t.cpu_boost is not None else []
    parts += [f"RAPL {t.rapl_energy_j:.0f} J"] if t.rapl_energy_j is not None else []
    return ", ".join(parts) or None


PROVENANCE: list[tuple[str, Any]] = [
    ("backend", lambda r: r.environment.get("backend")),
    (
        "TF / Keras",
        lambda r: f"{r.environment.get('tensorflow_version', '?')} / {r.environment.get('keras_version', '?')}",
    ),
    ("TF build", lambda r: _tf_build(r.environment)),
    ("devices", _devices),
    ("GPU (NVML / nvidia-smi)", _gpus),
    ("GPU driver", _gpu_driver),
    ("GPU settings", _gpu_settings),
    ("GPU during training (per run)", _gpu_run),
    ("GPU throttling (share of samples)", _throttling),
    ("CPU power", _cpu_power),
    ("container image", lambda r: r.environment.get("container_image")),
    ("image id", lambda r: _short(r.environment.get("image_id"), 19)),
    ("dataset (sha256)", _dataset_text),
    ("git commit", lambda r: _short(r.environment.get("git_commit"), 12)),
    ("host", lambda r: r.environment.get("hostname")),
    (
        "Python / platform",
        lambda r: f"{r.environment.get('python_version', '?')} / {r.environment.get('platform', '?')}",
    ),
]


def provenance_table(runs: Sequence[Run]) -> Table | None:
    """Per group: the environment its runs actually had (distinct values joined)."""
    by_group: dict[str, list[RunResult]] = {}
    for run in runs:
        by_group.setdefault(run.group, []).append(run.result)
    if not by_group:
        return None
    groups = sorted(by_group)
    # Failed runs often lack evidence/dataset; they describe the group only if nothing succeeded.
    chosen = {g: [r for r in by_group[g] if r.ok] or by_group[g] for g in groups}
    rows: list[list[Cell | str]] = [
        [name, *(_distinct(get(r) for r in chosen[g]) for g in groups)] for name, get in PROVENANCE
    ]

    def started(g: str) -> str:
        starts = sorted(r.started_utc for r in chosen[g])
        return starts[0] if starts[0] == starts[-1] else f"{starts[0]} … {starts[-1]}"

    rows.append(["started (UTC)", *(started(g) for g in groups)])
    return Table(["", *groups], rows)
