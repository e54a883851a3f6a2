"""Run configuration as frozen, validated dataclasses: :class:`PathSpec` and :class:`RunSpec`.

Everything a run needs crosses the process/container boundary as the JSON form of a
:class:`RunSpec`; :meth:`RunSpec.from_dict` is therefore strict (unknown keys, wrong types and
out-of-range values are refused with the bad value quoted). TensorFlow is never imported here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError
from harness.spec import names
from harness.spec.benchmarks.registry import BUILTIN
from harness.spec.benchmarks.sources import parse_source
from harness.spec.validate import boolean, float_in, int_at_least, one_of, safe_name

SPEC_VERSION = 1
# Where a plugin benchmark or a user's npz file comes from: recorded only when set, so that the specs
# (and run ids) of built-in benchmarks on built-in data are what they always were.
LOCATION_FIELDS = ("benchmark_source", "dataset_file")
# Fields added after spec version 1, with the default that means "as before they existed": left out
# of to_dict() at that default (see RunSpec.to_dict), so old specs keep their run ids.
SPEC_FIELDS_ADDED: dict[str, Any] = {"batch_per_replica": False, "sync_batchnorm": False, "repeat": 0}
SPEC_FIELDS_ADDED.update(dict.fromkeys(LOCATION_FIELDS))
PATH_FIELDS_ADDED: dict[str, Any] = {"replicas": 1, "workers": 1}


@dataclass(frozen=True)
class PathSpec:
    """One hardware/numerics configuration: device x precision x XLA x replicas."""

    device: str = "cpu"
    precision: str = "fp32"
    xla: bool = False
    # Override for the mixed policy; None = mixed_float16 on GPU, mixed_bfloat16 on CPU.
    mixed_policy: str | None = None
    # Replicas on one host (tf.distribute.MirroredStrategy): N GPUs on a GPU path, N logical CPU
    # devices on a CPU path. 1 = one device and no strategy, the path as it always ran.
    replicas: int = 1
    # Workers across processes (tf.distribute.MultiWorkerMirroredStrategy): N containers of one run,
    # one replica each; 1 = one process, the path as it always ran.
    workers: int = 1

    def __post_init__(self) -> None:
        one_of("device", self.device, names.DEVICES)
        one_of("precision", self.precision, names.PRECISIONS)
        boolean("xla", self.xla)
        int_at_least("replicas", self.replicas, 1)
        int_at_least("workers", self.workers, 1)
        if self.workers > 1 and self.replicas > 1:
            # Each worker process trains one replica: MultiWorkerMirroredStrategy over logical CPU devices
            # per worker is untested here, and a GPU worker's local devices are not configured by the harness.
            raise ConfigError(
                f"workers {self.workers} with replicas {self.replicas}: each worker runs one replica; "
                "use either --workers or --replicas"
            )
        if self.xla and self.replicas_in_sync > 1:
            # Keras compiles the replicated step (which contains strategy.run) as one XLA cluster on one
            # device; the first step then fails reading a variable copy on another device (measured with
            # TF 2.21: "Trying to access resource ... located in device CPU:1 from device CPU:0").
            raise ConfigError(
                f"xla=on cannot run with {self.replicas_in_sync} replicas: TensorFlow fails on the first step (one "
                "XLA cluster cannot reach the other replicas' variables); use xla=off, replicas 1 and workers 1"
            )
        if self.mixed_policy is not None:
            one_of("mixed_policy", self.mixed_policy, names.MIXED_POLICIES)
            if self.precision != "mixed":
                raise ConfigError(
                    f"mixed_policy {self.mixed_policy!r} needs precision 'mixed', got precision {self.precision!r}"
                )
        if self.precision == "tf32" and self.device != "gpu":
            # TensorFloat-32 is a GPU tensor-core format: on a CPU the flag changes nothing, so a
            # "cpu-tf32" path would be fp32 under another name.
            raise ConfigError(
                f"precision 'tf32' (TensorFloat-32 matmuls) runs only on device 'gpu', got device {self.device!r}; "
                "use precision 'fp32' on CPU"
            )

    @property
    def policy(self) -> str:
        """The Keras dtype policy this path asks for."""
        if self.precision in ("fp32", "tf32"):
            return "float32"
        if self.mixed_policy is not None:
            return self.mixed_policy
        return "mixed_float16" if self.device == "gpu" else "mixed_bfloat16"

    @property
    def replicas_in_sync(self) -> int:
        """Replicas over all workers: what the global batch is split over."""
        return self.replicas * self.workers

    @property
    def tensor_float_32(self) -> bool:
        """Whether TensorFloat-32 execution is on: only for precision ``tf32`` (fp32 means fp32)."""
        return self.precision == "tf32"

    @property
    def name(self) -> str:
        """Stable, human-readable path id, e.g. ``cpu-fp32``, ``gpu-tf32``, ``gpu-mixed_float16-xla`` or
        ``cpu-fp32-x2`` or ``cpu-fp32-w2`` (one replica on one worker keeps the name it always had, so groups
        and histories keep theirs)."""
        prec = self.precision if self.precision in ("fp32", "tf32") else self.policy
        replicas = f"-x{self.replicas}" if self.replicas > 1 else ""
        workers = f"-w{self.workers}" if self.workers > 1 else ""
        return f"{self.device}-{prec}" + ("-xla" if self.xla else "") + replicas + workers

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key, default in PATH_FIELDS_ADDED.items():
            if data[key] == default:
                del data[key]  # a path written before the field existed: same dict, same run_id
        return data

    @classmethod
    def from_dict(cls, data: Any) -> PathSpec:
        result: PathSpec = _from_dict(cls, data, "path")
        return result


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs: benchmark x dataset x path x seed x hyperparameters."""

    benchmark: str = "batchnorm"
    dataset: str = "mnist-5k"
    path: PathSpec = field(default_factory=PathSpec)
    seed: int = 0
    epochs: int = 10
    # The global batch (all replicas together), so that N replicas run the same optimisation as one
    # device; with batch_per_replica it is each replica's batch and the global batch is N times it
    # (weak scaling: a different optimisation, for throughput).
    batch_size: int = 32
    batch_per_replica: bool = False
    validation_split: float = 0.2
    learning_rate: float = 0.001  # Keras Adam's default, as the seed script uses it
    dropout_rate: float = 0.2  # only used by batchnorm_dropout
    # BatchNormalization(synchronized=True): under replicas, batch statistics over the global batch
    # instead of each replica's share (Keras's default computes them per replica).
    sync_batchnorm: bool = False
    steps_per_execution: int = 1
    input: str = "tfdata"
    # How the training steps are driven; never changes the experiment (same train_step, data order).
    loop: str = "fit"
    # None = automatic: deterministic ops on, except for XLA runs (Keras silently drops
    # jit_compile under op determinism, see TF-FACTS.md). Explicit True with XLA is refused.
    deterministic: bool | None = None
    # Steps excluded from steady-state throughput: None = the first epoch (or the first 10 %
    # of steps when there is only one epoch).
    warmup_steps: int | None = None
    # Limit of training samples (before the validation split), for quick runs; None = all.
    max_train_samples: int | None = None
    mode: str = "train"
    suite: str = "adhoc"
    # Fault injection for tests of the failure path: None, one of names.FAULTS, or "slow:<fraction>".
    inject_fault: str | None = None
    # Index of an identical repeat of this spec (tfparity run --repeats R): 0..R-1. Changes run_id only;
    # repeats in fresh processes measure the run-to-run (A/A) noise of speed and memory.
    repeat: int = 0
    # A plugin benchmark's source ("module:pkg.mod:NAME", "entry-point:pkg.mod:NAME",
    # "file:/abs/path.py:NAME", see harness.spec.benchmarks.sources); None: a built-in.
    benchmark_source: str | None = None
    # The user's .npz file of --dataset npz:PATH (absolute); the dataset is then named "npz-<stem>".
    dataset_file: str | None = None

    def __post_init__(self) -> None:
        self._check_benchmark_and_dataset()
        if not isinstance(self.path, PathSpec):
            raise ConfigError(f"path must be a PathSpec, got {self.path!r}")
        int_at_least("seed", self.seed, 0)
        int_at_least("epochs", self.epochs, 1)
        int_at_least("batch_size", self.batch_size, 1)
        boolean("batch_per_replica", self.batch_per_replica)
        boolean("sync_batchnorm", self.sync_batchnorm)
        float_in("validation_split", self.validation_split, 0.0, 1.0, high_open=True)
        float_in("learning_rate", self.learning_rate, 0.0, 1e6, low_open=True)
        float_in("dropout_rate", self.dropout_rate, 0.0, 1.0, high_open=True)
        int_at_least("steps_per_execution", self.steps_per_execution, 1)
        one_of("input", self.input, names.INPUTS)
        one_of("loop", self.loop, names.LOOPS)
        if self.deterministic is not None:
            boolean("deterministic", self.deterministic)
            if self.deterministic and self.path.xla:
                raise ConfigError(
                    "deterministic ops cannot be combined with xla=on: Keras silently drops jit_compile "
                    "under tf.config.experimental.enable_op_determinism(); leave deterministic unset or off"
                )
        if self.warmup_steps is not None:
            int_at_least("warmup_steps", self.warmup_steps, 0)
        if self.max_train_samples is not None:
            int_at_least("max_train_samples", self.max_train_samples, 2)
        one_of("mode", self.mode, names.MODES)
        self._check_replicas()
        safe_name("suite", self.suite)
        if self.inject_fault is not None:
            parse_fault(self.inject_fault)
        int_at_least("repeat", self.repeat, 0)

    def _check_replicas(self) -> None:
        """The combinations with replicas that TensorFlow/Keras cannot run, refused before anything starts."""
        n = self.path.replicas_in_sync
        if n == 1:
            return
        if self.path.workers > 1 and self.loop != "compiled":
            # Keras 3.15's fit under MultiWorkerMirroredStrategy fails twice (its symbolic build reduces a
            # tuple; its metric reduction uses axis 0 on scalars: keras-team/keras#20585); the compiled
            # loop runs strategy.run per step and none of Keras's fit internals.
            raise ConfigError(
                f"workers {self.path.workers} need loop 'compiled' (keras Model.fit fails under "
                f"MultiWorkerMirroredStrategy in Keras 3.15), got loop {self.loop!r}"
            )
        if self.mode != "train":
            raise ConfigError(f"mode {self.mode!r} runs one fixed batch on one device; replicas {n} needs mode 'train'")
        if self.steps_per_execution > 1 and self.loop == "fit":
            # Keras's multi-step loop puts the replicated step inside tf.cond inside tf.while_loop; TF 2.21
            # fails on the first step ("You must feed a value for placeholder tensor ...", keras-team/keras#19246).
            raise ConfigError(
                f"steps_per_execution {self.steps_per_execution} with {n} replicas fails in keras Model.fit; "
                "use loop 'compiled' (it runs several steps per call under the strategy) or steps_per_execution 1"
            )
        if not self.batch_per_replica and self.batch_size % n:
            # Keras averages each replica's mean loss: unequal shares would weight samples unequally, so
            # the run would not be the one-device optimisation it claims to be.
            raise ConfigError(
                f"batch_size {self.batch_size} (the global batch) does not split evenly over {n} replicas; "
                f"use a multiple of {n}, or batch_per_replica"
            )

    @property
    def global_batch_size(self) -> int:
        """Samples per training step over all replicas (of all workers): ``batch_size``, or N x it with
        ``batch_per_replica``."""
        return self.batch_size * self.path.replicas_in_sync if self.batch_per_replica else self.batch_size

    def _check_benchmark_and_dataset(self) -> None:
        """Built-in names against the registry; a plugin's names need only be safe (its source
        defines them, and compare must read its results where the plugin is not installed)."""
        if self.benchmark_source is None:
            if self.benchmark not in names.BENCHMARKS:
                one_of("benchmark", self.benchmark, tuple(names.BENCHMARKS))
        else:
            safe_name("benchmark", self.benchmark)
            parse_source(self.benchmark_source)
        if self.dataset_file is not None:
            if not isinstance(self.dataset_file, str) or not self.dataset_file.startswith("/"):
                raise ConfigError(f"dataset_file must be an absolute path, got {self.dataset_file!r}")
            expected = names.npz_dataset_name(self.dataset_file)
            if self.dataset != expected:
                raise ConfigError(
                    f"dataset of file {self.dataset_file!r} must be named {expected!r}, got {self.dataset!r}"
                )
        elif self.dataset not in names.DATASETS:
            if self.benchmark_source is None or str(self.dataset).startswith(names.NPZ_PREFIX):
                one_of("dataset", self.dataset, tuple(names.DATASETS))
            safe_name("dataset", self.dataset)  # one the plugin provides

    @property
    def uses_dropout_rate(self) -> bool:
        """Whether --dropout-rate changes this benchmark (a plugin's definition may not be loaded here:
        then it counts, so that runs with different rates are never compared)."""
        builtin = BUILTIN.get(self.benchmark) if self.benchmark_source is None else None
        return builtin.benchmark.uses_dropout_rate if builtin is not None else True

    @property
    def deterministic_ops(self) -> bool:
        """Whether op determinism is enabled for this run (resolved)."""
        if self.deterministic is None:
            return not self.path.xla
        return self.deterministic

    def split_too_small(self, n_train: int, n_val: int) -> bool:
        """Whether ``n_train`` training samples or (with a validation split) ``n_val`` validation samples
        are fewer than one batch: the rule ``tfparity run`` refuses a plan by, and the seed's claims
        exclude a recorded run by (a run that trains on 4 samples answers nothing)."""
        batch = self.global_batch_size
        return n_train < batch or (self.validation_split > 0 and n_val < batch)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The settings that must match for two runs to be comparable (everything but path and seed)."""
        return {
            "benchmark": self.benchmark,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            # Weak and strong scaling are different experiments even where their batch_size reads the same.
            "batch_per_replica": self.batch_per_replica,
            "validation_split": self.validation_split,
            "learning_rate": self.learning_rate,
            "dropout_rate": self.dropout_rate if self.uses_dropout_rate else None,
            "max_train_samples": self.max_train_samples,
            "mode": self.mode,
        }

    @property
    def execution(self) -> str:
        """How the training loop ran: not part of the experiment, but never averaged together.

        Op determinism is part of it because on CPU it is a numerical path of its own (TF-FACTS:
        the same seeded run gives other weights with and without ``enable_op_determinism()``).
        It is named only when it differs from the automatic setting (on, off for XLA): the
        ``seed`` preset's TF defaults read ``numpy,spe1,det-off``, while the labels of runs that
        leave it automatic (and so history series across nights) stay as they were. Synchronised
        BatchNormalization (``syncbn``) is named for every benchmark of a run, BN or not, so that one
        suite's runs stay one group.
        """
        loop = "" if self.loop == "fit" else f",{self.loop}"
        # The automatic setting is on without XLA, off with it; on with XLA is refused above.
        det = ",det-off" if not (self.deterministic_ops or self.path.xla) else ""
        sync = ",syncbn" if self.sync_batchnorm else ""
        return f"{self.input},spe{self.steps_per_execution}{loop}{det}{sync}"

    @property
    def run_id(self) -> str:
        """Stable id: readable prefix plus a short hash of the full spec (file-name safe)."""
        digest = hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:8]
        repeat = f"-r{self.repeat}" if self.repeat else ""
        return f"{self.benchmark}-{self.dataset}-{self.path.name}-s{self.seed}{repeat}-{digest}"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["path"] = self.path.to_dict()
        # A field added after spec version 1, at its default, is left out: every spec written before it
        # existed serialises (and hashes into its run_id) as it did, so old suites stay resumable.
        for key, default in SPEC_FIELDS_ADDED.items():
            if data[key] == default and type(data[key]) is type(default):
                del data[key]
        data["spec_version"] = SPEC_VERSION
        return data

    @classmethod
    def from_dict(cls, data: Any) -> RunSpec:
        if not isinstance(data, dict):
            raise ConfigError(f"run spec must be a JSON object, got {type(data).__name__}")
        data = dict(data)
        version = data.pop("spec_version", SPEC_VERSION)
        if version != SPEC_VERSION:
            raise ConfigError(
                f"run spec has spec_version {version!r}, this harness reads version {SPEC_VERSION}; "
                "regenerate the spec with this tfparity version"
            )
        if "path" in data:
            data["path"] = PathSpec.from_dict(data["path"])
        result: RunSpec = _from_dict(cls, data, "run spec")
        return result

    def replace(self, **changes: Any) -> RunSpec:
        return dataclasses.replace(self, **changes)


def parse_fault(text: str) -> tuple[str, float | None]:
    """``(kind, fraction)`` of an ``inject_fault`` value: a name of names.FAULTS, "slow" with a fraction."""
    if not isinstance(text, str):
        raise ConfigError(f"inject_fault must be a string, got {text!r}")
    kind, sep, arg = text.partition(":")
    if kind == "slow":
        try:
            fraction = float(arg) if sep else float("nan")
        except ValueError:
            fraction = float("nan")
        if not 0 < fraction <= names.SLOW_FAULT_MAX:  # NaN fails too
            raise ConfigError(
                f"inject_fault 'slow' needs a fraction in (0, {names.SLOW_FAULT_MAX:g}], e.g. 'slow:0.15'; got {text!r}"
            )
        return kind, fraction
    if sep:
        raise ConfigError(f"inject_fault {kind!r} takes no argument, got {text!r}")
    one_of("inject_fault", text, names.FAULTS)
    return kind, None


def _from_dict(cls: type, data: Any, what: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must be a JSON object, got {type(data).__name__}")
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - valid, key=str)
    if unknown:
        raise ConfigError(f"{what} has unknown key(s) {unknown!r}; valid keys are {sorted(valid)}")
    return cls(**data)


def load_spec(path: str) -> RunSpec:
    """Read a spec JSON file; every failure is a :class:`ConfigError` naming the file."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read spec {path!r}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ConfigError(f"spec {path!r} is not valid JSON: {exc}") from None
    try:
        return RunSpec.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"spec {path!r}: {exc}") from None
