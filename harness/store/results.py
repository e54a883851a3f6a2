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
from harness.store.members import Member
from harness.store.strict import build
from harness.store.telemetry import GpuInfo, GpuSamples, Telemetry

log = logging.getLogger(__name__)

# 2 added telemetry, the benchmark's definition, replica/TF32 evidence, GPU allocator peaks; each with a
# default meaning "not recorded", so version 1 files load as written. A newer file is refused.
SCHEMA_VERSION = 2
READ_VERSIONS = (1, 2)
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
    # TF's allocator peak on every GPU the run could see ("GPU:0" -> MB); empty on CPU paths. On a GPU
    # run this is the memory figure that matters: host RSS is then mostly the CUDA context.
    tf_gpu_peak_mb: dict[str, float] = field(default_factory=dict)

    @property
    def gpu_peak_mb(self) -> float | None:
        """TF's allocator peak summed over the run's GPUs (None on CPU paths)."""
        return sum(self.tf_gpu_peak_mb.values()) if self.tf_gpu_peak_mb else None


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
    # tf.config.experimental.tensor_float_32_execution_enabled() after the run: on Ampere+ GPUs TF32
    # rounds float32 matmul/convolution inputs to a 10-bit mantissa (TF's default is on).
    tensor_float_32: bool | None = None
    # NVIDIA_TF32_OVERRIDE as the worker saw it: "0" turns TF32 off inside NVIDIA's libraries whatever TF says.
    nvidia_tf32_override: str | None = None
    # The compiled optimizer is a keras LossScaleOptimizer (Keras wraps it for mixed_float16), and its
    # dynamic loss scale at the end of the run.
    loss_scaling: bool | None = None
    loss_scale: float | None = None
    # tf.distribute as TF reports it: the model's strategy class ("_DefaultDistributionStrategy" on one
    # device, "MirroredStrategy" for replicas), the replicas in sync and their devices, and the first
    # trainable variable's class and the device of each of its copies (one per replica when mirrored;
    # variable_device above names only the primary copy).
    distribute_strategy: str | None = None
    num_replicas_in_sync: int | None = None
    replica_devices: list[str] = field(default_factory=list)
    variable_class: str | None = None
    variable_replica_devices: list[str] = field(default_factory=list)
    # BatchNormalization(synchronized=...) of the model's BN layers as built; None: no BN layer.
    sync_batchnorm: bool | None = None
    # Samples per training step over all replicas, and each replica's share (None: not a training run).
    global_batch_size: int | None = None
    per_replica_batch_size: int | None = None
    # Workers (MultiWorkerMirroredStrategy): the cluster TF resolved ({"chief": [...], "worker": [...]}),
    # its member count, and the task of the process that wrote this result (the chief's).
    cluster: dict[str, Any] = field(default_factory=dict)
    num_workers: int | None = None
    task_type: str | None = None
    task_index: int | None = None

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
        return problems + self._numerics_mismatches(spec) + self._replica_mismatches(spec)

    def _numerics_mismatches(self, spec: RunSpec) -> list[str]:
        """TensorFloat-32 and loss scaling: the float32 arithmetic and the float16 gradients that ran."""
        path = spec.path
        problems = []
        asked = _on_off(path.tensor_float_32)
        if self.tensor_float_32 is None:
            problems.append(f"TensorFloat-32 state was not recorded, asked for TF32 {asked}")
        elif self.tensor_float_32 != path.tensor_float_32:
            problems.append(
                f"TensorFloat-32 execution is {_on_off(self.tensor_float_32)}, asked for {asked} "
                f"(precision {path.precision!r})"
            )
        if path.tensor_float_32 and self.nvidia_tf32_override == "0":
            problems.append(
                "NVIDIA_TF32_OVERRIDE=0 turns TF32 off inside NVIDIA's libraries, asked for precision 'tf32'"
            )
        wants_scaling = path.policy == "mixed_float16"
        if wants_scaling and self.loss_scaling is not True:
            problems.append(f"policy mixed_float16 without loss scaling (loss_scaling {self.loss_scaling})")
        elif not wants_scaling and self.loss_scaling:
            problems.append(f"loss scaling on under policy {path.policy!r}")
        return problems

    def _replica_mismatches(self, spec: RunSpec) -> list[str]:
        """Replicas, their devices, the variables' copies, synchronised BN and the global batch.

        Results written before replicas existed record none of it: they are one-device runs, and only
        a run that asked for replicas must show them.
        """
        n, device, local = spec.path.replicas_in_sync, spec.path.device, spec.path.replicas
        if self.num_replicas_in_sync is None:
            return [f"replicas were not recorded, asked for {n}"] if n > 1 else []
        problems = []
        if self.num_replicas_in_sync != n:
            problems.append(f"TensorFlow trained {self.num_replicas_in_sync} replica(s) in sync, asked for {n}")
        if len(self.variable_replica_devices) != local:  # the copies in this process
            problems.append(
                f"the model variables have {len(self.variable_replica_devices)} copy(ies), asked for {local}"
            )
        if (self.num_workers or 1) != spec.path.workers:
            problems.append(
                f"TensorFlow's cluster has {self.num_workers or 1} worker(s), asked for {spec.path.workers}"
            )
        placed = self.replica_devices + self.variable_replica_devices
        wrong = [d for d in placed if device_kind(d) != device]
        if wrong:
            problems.append(f"replica device {wrong[0]!r} is not a {device!r} device")
        if self.sync_batchnorm is not None and self.sync_batchnorm != spec.sync_batchnorm:
            problems.append(
                f"BatchNormalization synchronized={self.sync_batchnorm}, asked for sync_batchnorm "
                f"{_on_off(spec.sync_batchnorm)}"
            )
        if self.global_batch_size is not None and self.global_batch_size != spec.global_batch_size:
            problems.append(f"global batch {self.global_batch_size}, asked for {spec.global_batch_size}")
        return problems


def _on_off(flag: bool) -> str:
    return "on" if flag else "off"


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
    # GPU facts and samples, CPU power settings (harness.store.telemetry); None when not collected.
    telemetry: Telemetry | None = None
    error: str | None = None
    log_tail: list[str] = field(default_factory=list)
    # Mode-specific payload (e.g. the numerics probe's per-layer values).
    extra: dict[str, Any] = field(default_factory=dict)
    benchmark: BenchmarkInfo | None = None  # None in results written before benchmarks were plugins
    # A multi-worker run's containers (the chief's first), recorded by the backend; empty for one worker.
    workers: list[Member] = field(default_factory=list)
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
        if version not in READ_VERSIONS or isinstance(version, bool):
            if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
                raise ResultError(
                    f"result has schema_version {version}, newer than this tfparity reads ({SCHEMA_VERSION}); "
                    "upgrade tfparity to read it"
                )
            raise ResultError(
                f"result has schema_version {version!r}, this tfparity reads versions {list(READ_VERSIONS)}; "
                "re-run the benchmark with this version (older results are not migrated)"
            )
        result: RunResult = build(cls, data, "result", _SCHEMA)
        try:
            result.run_spec  # noqa: B018 - validates the embedded spec
        except ConfigError as exc:
            raise ResultError(f"result spec is invalid: {exc}") from None
        return result


# Every dataclass a result nests, by the name its annotations use (harness.store.strict builds them).
_SCHEMA: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        EpochMetrics,
        DatasetInfo,
        Timing,
        Memory,
        Evidence,
        Telemetry,
        GpuInfo,
        GpuSamples,
        BenchmarkInfo,
        Member,
    )
}


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


MANIFEST_NAMES = ("suite.json", "compare.json", "summary.json", "noise.json")


def load_results(targets: list[str | os.PathLike[str]]) -> list[RunResult]:
    """Load every result under the given files/directories; any bad file is an error naming it."""
    results: list[RunResult] = []
    for target in targets:
        files = result_files(target)
        if not files:
            raise ResultError(f"no result files found in {str(target)!r}")
        results.extend(load_result(p) for p in files)
    return results
