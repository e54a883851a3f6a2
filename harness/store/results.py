"""The result schema: one versioned JSON file per run, loaded strictly.

Raw samples (per-step times, per-epoch metrics) are stored; statistics are derived from them
(:mod:`harness.analysis`). Writing goes through :mod:`harness.store.jsonio` (atomic, never
overwritten). This module is TF-free: compare and report read results without TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, ResultError
from harness.spec.run_spec import RunSpec
from harness.store.jsonio import write_json

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "interrupted")


@dataclass(frozen=True)
class EpochMetrics:
    """Keras History values of one epoch (accuracy in 0-1)."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    epoch_time_s: float


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    source: str
    n_train: int  # before the validation split
    n_val: int
    n_test: int
    sha256: str  # fingerprint of the arrays (see data.fingerprint)
    synthetic: bool = False


@dataclass(frozen=True)
class BenchmarkInfo:
    """The benchmark definition that ran (harness.spec.benchmarks): compare refuses results whose
    definitions differ (``sha256`` of the defining source file, else ``version``)."""

    name: str
    origin: str  # "built-in" | "entry-point" | "module" | "file"
    ref: str  # "package.module:NAME" or "/abs/path.py:NAME"
    sha256: str | None  # of the source file that defines it
    version: str | None  # its distribution's version (tfparity's for built-ins), when known
    delivery: str  # "package" | "host" | "read-only mount" | "writable mount" (how the source reached the worker)
    claims: dict[str, Any] = field(default_factory=dict)  # the definition's claims, as data, by kind


@dataclass(frozen=True)
class Timing:
    """Raw step timings and the statistics derived from them (all times are wall clock)."""

    # One sample per Keras batch callback: the wall time between consecutive batch ends, divided
    # by the number of steps it covers (steps_per_execution), so every sample is "ms per step".
    step_time_ms: list[float]
    steps_per_sample: int
    warmup_steps: int  # steps excluded from steady state (first epoch or configured)
    compile_time_s: float  # the first training step: tracing (+ XLA compilation)
    warmup_time_s: float  # all warm-up steps, compile included
    steady_throughput_samples_per_s: float | None
    step_time_ms_p50: float | None
    step_time_ms_p90: float | None
    step_time_ms_p99: float | None
    train_time_s: float  # sum of fit() epoch times (training + validation)
    total_wall_time_s: float  # worker start to result, data loading and TF import included


@dataclass(frozen=True)
class Memory:
    peak_rss_mb: float  # psutil sampler maximum
    ru_maxrss_mb: float  # getrusage high-water mark of the worker process
    rss_sample_interval_s: float
    tf_device: str  # device whose allocator was queried, e.g. "CPU:0" or "GPU:0"
    tf_peak_mb: float | None  # TF allocator peak (counts TF tensors only)


@dataclass(frozen=True)
class Evidence:
    """What actually ran, read back from TensorFlow, not the flags that were asked for."""

    physical_devices: list[str]
    variable_device: str
    dtype_policy: str
    jit_compile: bool
    deterministic_ops: bool
    steps_per_execution: int
    training_loop: str = "fit"  # "fit" (keras Model.fit) or "compiled" (harness.worker.fastloop)

    def mismatches(self, spec: RunSpec) -> list[str]:
        """Every way the path that ran differs from the one ``spec`` asked for (empty: it is the same).

        The one evidence check: the worker refuses to record such a run as ``ok``, and compare
        fails a result that has one.
        """
        path = spec.path
        problems = []
        if self.jit_compile != path.xla:
            asked = "on" if path.xla else "off"
            problems.append(f"jit_compile resolved to {self.jit_compile}, asked for xla={asked}")
        if self.dtype_policy != path.policy:
            problems.append(f"dtype policy is {self.dtype_policy!r}, asked for {path.policy!r}")
        if device_kind(self.variable_device) != path.device:
            problems.append(f"model variables live on {self.variable_device!r}, asked for device {path.device!r}")
        if self.deterministic_ops != spec.deterministic_ops:
            problems.append(f"op determinism is {self.deterministic_ops}, expected {spec.deterministic_ops}")
        return problems


def device_kind(device: str) -> str | None:
    """'cpu' or 'gpu' from a TF device string (e.g. '/job:localhost/replica:0/task:0/device:GPU:0'), else None."""
    upper = device.upper()
    if "GPU" in upper:
        return "gpu"
    if "CPU" in upper:
        return "cpu"
    return None


@dataclass(frozen=True)
class RunResult:
    run_id: str
    status: str
    spec: dict[str, Any]
    started_utc: str
    finished_utc: str
    dataset: DatasetInfo | None = None
    epochs: list[EpochMetrics] = field(default_factory=list)
    test_loss: float | None = None
    test_accuracy: float | None = None
    generalization_gap: float | None = None  # train acc - val acc, last epoch
    params: int | None = None
    # Samples this run actually trained/validated on (differs from dataset counts with max_train_samples).
    n_train_used: int | None = None
    n_val_used: int | None = None
    timing: Timing | None = None
    memory: Memory | None = None
    evidence: Evidence | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    log_tail: list[str] = field(default_factory=list)
    # Mode-specific payload (e.g. the numerics probe's per-layer values).
    extra: dict[str, Any] = field(default_factory=dict)
    benchmark: BenchmarkInfo | None = None  # None in results written before benchmarks were plugins
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ResultError(f"status must be one of {STATUSES}, got {self.status!r}")

    @property
    def run_spec(self) -> RunSpec:
        return RunSpec.from_dict(self.spec)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> RunResult:
        """Strict load: schema version checked first, then every field's type."""
        if not isinstance(data, dict):
            raise ResultError(f"a result must be a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
                raise ResultError(
                    f"result has schema_version {version}, newer than this tfparity reads ({SCHEMA_VERSION}); "
                    "upgrade tfparity to read it"
                )
            raise ResultError(
                f"result has schema_version {version!r}, this tfparity reads version {SCHEMA_VERSION}; "
                "re-run the benchmark with this version (older results are not migrated)"
            )
        result: RunResult = _build(cls, data, "result")
        try:
            result.run_spec  # noqa: B018 - validates the embedded spec
        except ConfigError as exc:
            raise ResultError(f"result spec is invalid: {exc}") from None
        return result


# --- strict construction from JSON -------------------------------------------------------------

_NESTED = {
    "dataset": DatasetInfo,
    "timing": Timing,
    "memory": Memory,
    "evidence": Evidence,
    "benchmark": BenchmarkInfo,
}


def _check_type(value: Any, annotation: str, where: str) -> Any:
    """Check a JSON value against the (string) annotation of a field; ints are accepted as floats."""
    optional = annotation.endswith(" | None")
    base = annotation.removesuffix(" | None")
    if value is None:
        if optional:
            return None
        raise ResultError(f"{where} must not be null")
    if base == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ResultError(f"{where} must be a number, got {value!r:.80}")
        return float(value)
    if base == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ResultError(f"{where} must be an integer, got {value!r:.80}")
        return value
    if base == "str":
        if not isinstance(value, str):
            raise ResultError(f"{where} must be a string, got {value!r:.80}")
        return value
    if base == "bool":
        if not isinstance(value, bool):
            raise ResultError(f"{where} must be true or false, got {value!r:.80}")
        return value
    if base in ("list[float]", "list[str]"):
        item = base[5:-1]
        if not isinstance(value, list):
            raise ResultError(f"{where} must be a list, got {type(value).__name__}")
        return [_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if base == "dict[str, Any]":
        if not isinstance(value, dict):
            raise ResultError(f"{where} must be an object, got {type(value).__name__}")
        return value
    raise AssertionError(f"unhandled annotation {annotation!r}")  # a bug in this module, not input


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ResultError(f"{where} must be an object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields), key=str)
    if unknown:
        raise ResultError(f"{where} has unknown key(s) {unknown!r:.200}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        sub = f"{where}.{name}"
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ResultError(f"{sub} is missing")
            continue
        value = data[name]
        annotation = str(f.type)
        if name in _NESTED and cls is RunResult:
            kwargs[name] = None if value is None else _build(_NESTED[name], value, sub)
        elif name == "epochs" and cls is RunResult:
            if not isinstance(value, list):
                raise ResultError(f"{sub} must be a list")
            kwargs[name] = [_build(EpochMetrics, v, f"{sub}[{i}]") for i, v in enumerate(value)]
        else:
            kwargs[name] = _check_type(value, annotation, sub)
    try:
        return cls(**kwargs)
    except ResultError as exc:
        raise ResultError(f"{where}: {exc}") from None


# --- files ------------------------------------------------------------------------------------


def write_result(result: RunResult, path: str | os.PathLike[str]) -> Path:
    """Write a result file atomically; refuses to overwrite an existing one."""
    return write_json(path, result.to_dict())


def load_result(path: str | os.PathLike[str]) -> RunResult:
    """Strictly load one result file; every problem is a :class:`ResultError` naming the file."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise ResultError(f"cannot read result {str(path)!r}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ResultError(f"result {str(path)!r} is not valid JSON: {exc}") from None
    try:
        return RunResult.from_dict(data)
    except (ResultError, RecursionError) as exc:
        raise ResultError(f"result {str(path)!r}: {exc}") from None


def result_files(target: str | os.PathLike[str]) -> list[Path]:
    """Result JSON files under a file or directory (recursively), excluding specs and manifests."""
    target = Path(target)
    if target.is_file():
        return [target]
    if not target.is_dir():
        raise ResultError(f"no such results file or directory: {str(target)!r}")
    return sorted(
        p
        for p in target.rglob("*.json")
        if not p.name.startswith(".") and p.parent.name not in ("specs", "attempts") and p.name not in MANIFEST_NAMES
    )


MANIFEST_NAMES = ("suite.json", "compare.json", "summary.json")


def load_results(targets: list[str | os.PathLike[str]]) -> list[RunResult]:
    """Load every result under the given files/directories; any bad file is an error naming it."""
    results: list[RunResult] = []
    for target in targets:
        files = result_files(target)
        if not files:
            raise ResultError(f"no result files found in {str(target)!r}")
        results.extend(load_result(p) for p in files)
    return results
