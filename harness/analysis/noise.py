"""The A/A noise floor: how much one configuration's per-run values spread from one fresh process to the next.

Measured by repeating identical specs in fresh processes (``tfparity run ... --repeats R``, the
repeats of all specs interleaved: A B A B ..., never all A then all B, so that machine drift hits
both alike). At the end of such a suite ``noise.json`` is written into the suite directory::

    {"noise_version": 1, "kind": "tfparity noise floor", "measured_utc": "...",
     "method": "...", "host": {"hostname": ..., "cpu_model": ..., "cpu_count": ..., "git_commit": ...,
     "tensorflow_version": ..., "backend": ..., "load_avg_1m_5m_15m_at_end": [...]},
     "floors": [{"benchmark": ..., "dataset": ..., "path": ..., "execution": ..., "hyperparameters": {...},
                 "runs": 10, "configs": 1, "steady_steps_median": 100,
                 "sigma_ln": {"throughput": 0.125, "step_time_p50": ..., "peak_rss": ..., "tf_peak": ...,
                              "compile_time": ...},
                 "sets": [{"run_ids": [...], "values": {"throughput": [...], ...}}]}]}

``sigma_ln`` is, per metric, the robust SD (1.4826 MAD) of every run's ln value around the median
of its set of identical specs (the same spec but for ``repeat``), pooled over the sets and scaled
by sqrt(N / (N - k)) for the k medians; ``sets`` keeps the raw per-run values it came from.
``compare`` reads every ``noise.json`` under its RESULTS and ``--baseline`` directories (and
``--noise-floor FILE``); for a group it takes the largest floor of its configuration
(benchmark, dataset, path, execution settings, hyperparameters) as sigma_floor
(:mod:`harness.analysis.shift`). ``tfparity history --add`` archives the files with the results.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.analysis import per_run, stats
from harness.analysis.samples import steady_step_times_ms
from harness.errors import ResultError
from harness.spec.run_spec import RunSpec
from harness.store.jsonio import write_json
from harness.store.results import RunResult
from harness.timeutil import utc_now

NOISE_FILE = "noise.json"
NOISE_VERSION = 1
NOISE_KIND = "tfparity noise floor"
METHOD = (
    "per metric: robust SD (1.4826 x MAD) of each run's ln value around the median of its set of identical "
    "specs (differing only in repeat), pooled over sets, x sqrt(N/(N-k)); throughput per run = "
    "batch x 1000 / p25 of its steady step times"
)
METRICS = tuple(per_run.METRICS)
HOST_KEYS = ("hostname", "cpu_model", "cpu_count", "git_commit", "tensorflow_version", "backend")


@dataclass(frozen=True)
class Floor:
    """The measured A/A spread of one configuration."""

    benchmark: str
    dataset: str
    path: str
    execution: str
    hyperparameters: dict[str, Any]
    runs: int
    configs: int
    sigma_ln: dict[str, float | None]
    steady_steps_median: float | None = None
    sets: list[dict[str, Any]] = field(default_factory=list)

    def matches(self, spec: RunSpec) -> bool:
        return (self.benchmark, self.dataset, self.path, self.execution, self.hyperparameters) == (
            spec.benchmark,
            spec.dataset,
            spec.path.name,
            spec.execution,
            json.loads(json.dumps(spec.hyperparameters)),
        )


@dataclass(frozen=True)
class NoiseFloors:
    """Every floor found, with the file it came from."""

    floors: list[tuple[str, Floor]] = field(default_factory=list)

    def lookup(self, metric: str, spec: RunSpec) -> tuple[float | None, str]:
        """The largest stored floor of ``metric`` for ``spec``'s configuration, and its file ("default": none)."""
        found = [
            (f.sigma_ln[metric], source)
            for source, f in self.floors
            if f.matches(spec) and f.sigma_ln.get(metric) is not None
        ]
        if not found:
            return None, "default"
        sigma, source = max(found, key=lambda item: item[0] or 0.0)
        return sigma, source


def identity(spec: RunSpec) -> str:
    """What identical repeats share: the whole spec but ``repeat`` and the suite name."""
    data = spec.to_dict()
    data.pop("repeat", None)
    data.pop("suite", None)
    return json.dumps(data, sort_keys=True)


def measure(results: Iterable[RunResult]) -> list[Floor]:
    """Floors of every configuration that has at least one set of 2+ identical successful training runs."""
    sets: dict[str, list[RunResult]] = {}
    for r in results:
        if r.ok and r.run_spec.mode == "train":
            sets.setdefault(identity(r.run_spec), []).append(r)
    configs: dict[str, list[list[RunResult]]] = {}
    for members in sets.values():
        if len(members) >= 2:
            spec = members[0].run_spec
            key = json.dumps([spec.benchmark, spec.dataset, spec.path.name, spec.execution, spec.hyperparameters])
            configs.setdefault(key, []).append(members)
    return [_floor(groups) for _, groups in sorted(configs.items())]


def _floor(groups: list[list[RunResult]]) -> Floor:
    spec = groups[0][0].run_spec
    sigma = {m: stats.pooled_robust_sd([per_run.log_values(g, m) for g in groups]) for m in METRICS}
    steady = stats.median(len(steady_step_times_ms(r)) for g in groups for r in g)
    raw = [
        {"run_ids": [r.run_id for r in g], "values": {m: [per_run.run_value(r, m) for r in g] for m in METRICS}}
        for g in groups
    ]
    return Floor(
        benchmark=spec.benchmark, dataset=spec.dataset, path=spec.path.name, execution=spec.execution,
        hyperparameters=json.loads(json.dumps(spec.hyperparameters)), runs=sum(len(g) for g in groups),
        configs=len(groups), sigma_ln=sigma, steady_steps_median=steady, sets=raw,
    )  # fmt: skip


def document(results: Sequence[RunResult]) -> dict[str, Any] | None:
    """The ``noise.json`` content for these results; None when no spec was repeated."""
    floors = measure(results)
    if not floors:
        return None
    env = next((r.environment for r in results if r.ok and isinstance(r.environment, dict)), {})
    host: dict[str, Any] = {k: env.get(k) for k in HOST_KEYS}
    host["load_avg_1m_5m_15m_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return {
        "noise_version": NOISE_VERSION,
        "kind": NOISE_KIND,
        "measured_utc": utc_now(),
        "method": METHOD,
        "host": host,
        "floors": [vars(f) for f in floors],
    }


def write_noise(out_dir: str | os.PathLike[str], results: Sequence[RunResult]) -> Path | None:
    """Write (or rewrite: it is derived from the results beside it) ``out_dir/noise.json``; None if nothing repeated."""
    doc = document(results)
    return None if doc is None else write_json(Path(out_dir) / NOISE_FILE, doc, overwrite=True)


def noise_files(target: str | os.PathLike[str]) -> list[Path]:
    """``noise.json`` files of a results file's directory or under a directory (recursively)."""
    path = Path(target)
    if path.is_file():
        return [path] if path.name == NOISE_FILE else []
    return sorted(p for p in path.rglob(NOISE_FILE) if p.is_file()) if path.is_dir() else []


def load_noise(paths: Iterable[str | os.PathLike[str]]) -> NoiseFloors:
    """Every floor of the given noise files (strict: a malformed or newer file is a ResultError naming it)."""
    floors: list[tuple[str, Floor]] = []
    for path in paths:
        floors += [(str(path), f) for f in _read(Path(path))]
    return NoiseFloors(floors)


def _read(path: Path) -> list[Floor]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResultError(f"cannot read noise floor {str(path)!r}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ResultError(f"noise floor {str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("kind") != NOISE_KIND:
        raise ResultError(f"{str(path)!r} is not a tfparity noise floor file")
    if data.get("noise_version") != NOISE_VERSION:
        raise ResultError(
            f"noise floor {str(path)!r} has noise_version {data.get('noise_version')!r}, this tfparity reads "
            f"version {NOISE_VERSION}; measure it again with tfparity run --repeats"
        )
    try:
        return [_parse_floor(f) for f in data["floors"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultError(f"noise floor {str(path)!r} is malformed: {exc!r:.200}") from None


def _parse_floor(raw: dict[str, Any]) -> Floor:
    sigma = {str(k): (None if v is None else float(v)) for k, v in dict(raw["sigma_ln"]).items()}
    if any(v is not None and not (math.isfinite(v) and v >= 0) for v in sigma.values()):
        raise ValueError(f"sigma_ln must be finite and >= 0: {sigma}")
    return Floor(
        benchmark=str(raw["benchmark"]), dataset=str(raw["dataset"]), path=str(raw["path"]),
        execution=str(raw["execution"]), hyperparameters=dict(raw["hyperparameters"]), runs=int(raw["runs"]),
        configs=int(raw["configs"]), sigma_ln=sigma, steady_steps_median=raw.get("steady_steps_median"),
        sets=list(raw.get("sets") or []),
    )  # fmt: skip
