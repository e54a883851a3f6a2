"""Run configuration: frozen, validated dataclasses.

Everything a run needs crosses the process/container boundary as the JSON form of a
:class:`RunSpec`; :meth:`RunSpec.from_dict` is therefore strict (unknown keys, wrong types and
out-of-range values are refused with the bad value quoted). TensorFlow is never imported here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from harness.errors import UserError

SPEC_VERSION = 1

DEVICES = ("cpu", "gpu")
PRECISIONS = ("fp32", "mixed")
MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")
INPUTS = ("tfdata", "numpy")
LOOPS = ("fit", "compiled")  # keras Model.fit, or harness.fastloop's compiled multi-step loop
MODES = ("train", "probe")
BACKENDS = ("local", "docker")

# Names are validated against these registries lazily (data.py / models.py own them) so that this
# module stays import-light; the tuples here are the single source of truth for the names.
BENCHMARKS = ("baseline", "batchnorm", "batchnorm_dropout")
DATASETS = ("mnist", "mnist-5k", "fashion-mnist", "synthetic")

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ConfigError(UserError, ValueError):
    """A user-supplied configuration value is invalid. The message quotes the bad value."""


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def _int_at_least(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _float_in(name: str, value: Any, low: float, high: float, *, low_open: bool = False,
              high_open: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ConfigError(f"{name} must be a number in {lo}{low}, {high}{hi}, got {value!r}")
    return float(value)


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value


def parse_on_off(name: str, value: str) -> bool:
    """Parse a CLI ``on|off`` flag."""
    if value in ("on", "true", "1", "yes"):
        return True
    if value in ("off", "false", "0", "no"):
        return False
    raise ConfigError(f"{name} must be 'on' or 'off', got {value!r}")


def safe_name(name: str, value: Any) -> str:
    """A name that becomes part of a file name: no path separators, no leading dot."""
    if not isinstance(value, str) or not _SAFE_NAME.match(value):
        raise ConfigError(
            f"{name} must be 1-128 characters of letters, digits, '.', '_' or '-' "
            f"(not starting with '.' or '-'), got {value!r}")
    return value


@dataclass(frozen=True)
class PathSpec:
    """One hardware/numerics configuration: device x precision x XLA."""

    device: str = "cpu"
    precision: str = "fp32"
    xla: bool = False
    # Override for the mixed policy; None = mixed_float16 on GPU, mixed_bfloat16 on CPU.
    mixed_policy: str | None = None

    def __post_init__(self) -> None:
        _one_of("device", self.device, DEVICES)
        _one_of("precision", self.precision, PRECISIONS)
        _bool("xla", self.xla)
        if self.mixed_policy is not None:
            _one_of("mixed_policy", self.mixed_policy, MIXED_POLICIES)
            if self.precision != "mixed":
                raise ConfigError(
                    f"mixed_policy {self.mixed_policy!r} needs precision 'mixed', got precision {self.precision!r}")

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
        return _from_dict(cls, data, "path")


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
    # Fault injection for tests of the failure path: None, "raise", "crash", "nan", "oom".
    inject_fault: str | None = None

    def __post_init__(self) -> None:
        _one_of("benchmark", self.benchmark, BENCHMARKS)
        _one_of("dataset", self.dataset, DATASETS)
        if not isinstance(self.path, PathSpec):
            raise ConfigError(f"path must be a PathSpec, got {self.path!r}")
        _int_at_least("seed", self.seed, 0)
        _int_at_least("epochs", self.epochs, 1)
        _int_at_least("batch_size", self.batch_size, 1)
        _float_in("validation_split", self.validation_split, 0.0, 1.0, high_open=True)
        _float_in("learning_rate", self.learning_rate, 0.0, 1e6, low_open=True)
        _float_in("dropout_rate", self.dropout_rate, 0.0, 1.0, high_open=True)
        _int_at_least("steps_per_execution", self.steps_per_execution, 1)
        _one_of("input", self.input, INPUTS)
        _one_of("loop", self.loop, LOOPS)
        if self.deterministic is not None:
            _bool("deterministic", self.deterministic)
            if self.deterministic and self.path.xla:
                raise ConfigError(
                    "deterministic ops cannot be combined with xla=on: Keras silently drops jit_compile "
                    "under tf.config.experimental.enable_op_determinism(); leave deterministic unset or off")
        if self.warmup_steps is not None:
            _int_at_least("warmup_steps", self.warmup_steps, 0)
        if self.max_train_samples is not None:
            _int_at_least("max_train_samples", self.max_train_samples, 2)
        _one_of("mode", self.mode, MODES)
        safe_name("suite", self.suite)
        if self.inject_fault is not None:
            _one_of("inject_fault", self.inject_fault, ("raise", "crash", "nan", "oom"))

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
            "dropout_rate": self.dropout_rate if self.benchmark == "batchnorm_dropout" else None,
            "max_train_samples": self.max_train_samples,
            "mode": self.mode,
        }

    @property
    def run_id(self) -> str:
        """Stable id: readable prefix plus a short hash of the full spec (file-name safe)."""
        digest = hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.benchmark}-{self.dataset}-{self.path.name}-s{self.seed}-{digest}"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
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
                "regenerate the spec with this tfparity version")
        if "path" in data:
            data["path"] = PathSpec.from_dict(data["path"])
        return _from_dict(cls, data, "run spec")

    def replace(self, **changes: Any) -> RunSpec:
        return dataclasses.replace(self, **changes)


def _from_dict(cls: type, data: Any, what: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must be a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names, key=str)
    if unknown:
        raise ConfigError(f"{what} has unknown key(s) {unknown!r}; valid keys are {sorted(names)}")
    try:
        return cls(**data)
    except TypeError as exc:  # pragma: no cover - all fields have defaults
        raise ConfigError(f"{what} is invalid: {exc}") from None


def load_spec(path: str) -> RunSpec:
    """Read a spec JSON file; every failure is a :class:`ConfigError` naming the file."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read spec {path!r}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"spec {path!r} is not valid JSON: {exc}") from None
    try:
        return RunSpec.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"spec {path!r}: {exc}") from None
