"""The report's provenance table: per group, the environment its runs actually had."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

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


PROVENANCE: list[tuple[str, Any]] = [
    ("backend", lambda r: r.environment.get("backend")),
    (
        "TF / Keras",
        lambda r: f"{r.environment.get('tensorflow_version', '?')} / {r.environment.get('keras_version', '?')}",
    ),
    ("TF build", lambda r: _tf_build(r.environment)),
    ("devices", _devices),
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
