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


@dataclass(frozen=True)
class PathSpec:
    """One hardware/numerics configuration: device x precision x XLA."""

    device: str = "cpu"
    precision: str = "fp32"
    xla: bool = False
    # Override for the mixed policy; None = mixed_float16 on GPU, mixed_bfloat16 on CPU.
    mixed_policy: str | None = None

    def __post_init__(self) -> None:
        one_of("device", self.device, names.DEVICES)
        one_of("precision", self.precision, names.PRECISIONS)
        boolean("xla", self.xla)
        if self.mixed_policy is not None:
            one_of("mixed_policy", self.mixed_policy, names.MIXED_POLICIES)
            if self.precision != "mixed":
                raise ConfigError(
                    f"mixed_policy {self.mixed_policy!r} needs precision 'mixed', got precision {self.precision!r}"
                )

    @property
    def policy(self) -> str:
        """The Keras dtype policy this path asks for."""
        if self.precision == "fp32":
            return "float32"
        if self.mixed_policy is not None:
            return self.mixed_policy
        return "mixed_float16" if self.device == "gpu" else "mixed_bfloat16"

    @property
    def name(self) -> str:
        """Stable, human-readable path id, e.g. ``cpu-fp32`` or ``gpu-mixed_float16-xla``."""
        prec = "fp32" if self.precision == "fp32" else self.policy
        return f"{self.device}-{prec}" + ("-xla" if self.xla else "")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

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
    batch_size: int = 32
    validation_split: float = 0.2
    learning_rate: float = 0.001  # Keras Adam's default, as the seed script uses it
    dropout_rate: float = 0.2  # only used by batchnorm_dropout
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
    # Fault injection for tests of the failure path: None or one of names.FAULTS.
    inject_fault: str | None = None
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
        safe_name("suite", self.suite)
        if self.inject_fault is not None:
            one_of("inject_fault", self.inject_fault, names.FAULTS)

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

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The settings that must match for two runs to be comparable (everything but path and seed)."""
        return {
            "benchmark": self.benchmark,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "validation_split": self.validation_split,
            "learning_rate": self.learning_rate,
            "dropout_rate": self.dropout_rate if self.uses_dropout_rate else None,
            "max_train_samples": self.max_train_samples,
            "mode": self.mode,
        }

    @property
    def execution(self) -> str:
        """How the training loop ran: not part of the experiment, but never averaged together."""
        loop = "" if self.loop == "fit" else f",{self.loop}"
        return f"{self.input},spe{self.steps_per_execution}{loop}"

    @property
    def run_id(self) -> str:
        """Stable id: readable prefix plus a short hash of the full spec (file-name safe)."""
        digest = hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.benchmark}-{self.dataset}-{self.path.name}-s{self.seed}-{digest}"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in LOCATION_FIELDS:
            if data[key] is None:
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
