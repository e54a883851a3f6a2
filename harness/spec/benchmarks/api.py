"""The benchmark plugin API: a benchmark is a small, frozen, typed definition, TF-free at import.

A :class:`Benchmark` says how to build the (uncompiled) Keras model for a run, how to compile it
(optimizer, loss, metrics), its default hyperparameters, which datasets it accepts, the datasets
it provides, the claims it makes and the layers the numerics probe watches. Its ``build`` callable
runs only in the worker (a subprocess or container), with a :class:`BuildContext`; importing the
definition (``tfparity list``, validation) never imports TensorFlow. The seed's MLPs and the conv
nets are defined with this API (:mod:`harness.spec.benchmarks.mlp`, :mod:`harness.spec.benchmarks.cnn`).

Example (a file ``mine.py``, run with ``tfparity run --benchmark mine.py:SMALL``)::

    from harness.spec.benchmarks.api import Benchmark, BuildContext

    def build(ctx: BuildContext):
        keras = ctx.keras  # or `import keras` here: never at the top of the file
        inputs = keras.Input(shape=ctx.input_shape)
        x = keras.layers.Dense(32, activation="relu", name="hidden")(inputs)
        x = keras.layers.Dense(ctx.n_classes, name="logits")(x)
        outputs = keras.layers.Activation("softmax", dtype="float32", name="softmax")(x)
        return keras.Model(inputs, outputs, name=ctx.benchmark)

    SMALL = Benchmark(name="small", description="Dense 32 -> softmax", build=build, input_shape=(784,), n_classes=10)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError
from harness.spec.validate import float_in, int_at_least, safe_name

# Keras optimizers a definition may name; each is built as ``cls(learning_rate=spec.learning_rate)``.
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "nadam", "adagrad")
# The metrics every run records (EpochMetrics): Keras's sparse accuracy under the name "accuracy".
REQUIRED_METRIC = "accuracy"
# What a claim may be about: a run's last-epoch value, or its test accuracy.
CLAIM_METRICS = ("val_accuracy", "train_accuracy", "test_accuracy", "generalization_gap")
CLAIM_OPS = ("<", "<=", ">", ">=")


@dataclass(frozen=True)
class Defaults:
    """The hyperparameters a run of this benchmark uses unless the command line says otherwise."""

    epochs: int = 10
    batch_size: int = 32
    validation_split: float = 0.2
    learning_rate: float = 0.001

    def __post_init__(self) -> None:
        int_at_least("defaults.epochs", self.epochs, 1)
        int_at_least("defaults.batch_size", self.batch_size, 1)
        float_in("defaults.validation_split", self.validation_split, 0.0, 1.0, high_open=True)
        float_in("defaults.learning_rate", self.learning_rate, 0.0, 1e6, low_open=True)

    def as_fields(self) -> dict[str, Any]:
        """The RunSpec fields these defaults set."""
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "validation_split": self.validation_split,
            "learning_rate": self.learning_rate,
        }


@dataclass(frozen=True)
class Claim:
    """A claim a benchmark makes, as data: ``metric op value`` (or ``op`` the same metric of ``than``).

    ``metric`` is a run's last-epoch value (``val_accuracy``, ``train_accuracy``,
    ``generalization_gap``) or its ``test_accuracy``; the mean over seeds is compared. With
    ``than``, the threshold is the other benchmark's value on the same path, paired by seed.
    ``datasets`` names the datasets the claim was made for (others are flagged); empty: any.
    """

    kind: str
    text: str
    metric: str
    op: str
    value: float | None = None
    than: str | None = None
    datasets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        safe_name("claim kind", self.kind)
        if not isinstance(self.text, str) or not self.text.strip():
            raise ConfigError(f"claim {self.kind!r}: text must be a non-empty string, got {self.text!r}")
        if self.metric not in CLAIM_METRICS:
            raise ConfigError(f"claim {self.kind!r}: metric must be one of {CLAIM_METRICS}, got {self.metric!r}")
        if self.op not in CLAIM_OPS:
            raise ConfigError(f"claim {self.kind!r}: op must be one of {CLAIM_OPS}, got {self.op!r}")
        if (self.value is None) == (self.than is None):
            raise ConfigError(f"claim {self.kind!r}: give exactly one of value= and than=")
        if self.value is not None and not (isinstance(self.value, (int, float)) and math.isfinite(self.value)):
            raise ConfigError(f"claim {self.kind!r}: value must be a finite number, got {self.value!r}")
        if self.than is not None:
            safe_name(f"claim {self.kind!r} than", self.than)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "text": self.text,
            "metric": self.metric,
            "op": self.op,
            "value": self.value,
            "than": self.than,
            "datasets": list(self.datasets),
        }


@dataclass(frozen=True)
class DatasetDef:
    """A dataset a plugin provides: ``arrays()`` returns numpy arrays (TF-free) under the keys
    ``x_train, y_train, x_test, y_test`` and optionally ``x_val, y_val`` (the same rules and
    fingerprint as ``--dataset npz:PATH``, see :mod:`harness.data.arrays`)."""

    name: str
    description: str
    arrays: Callable[[], Mapping[str, Any]]
    synthetic: bool = False

    def __post_init__(self) -> None:
        safe_name("dataset name", self.name)
        if self.name.startswith("npz-"):
            raise ConfigError(f"dataset name {self.name!r}: the prefix 'npz-' is reserved for --dataset npz:PATH")
        if not callable(self.arrays):
            raise ConfigError(f"dataset {self.name!r}: arrays must be a callable, got {self.arrays!r}")


@dataclass(frozen=True)
class BuildContext:
    """What ``Benchmark.build`` gets in the worker.

    ``keras`` is the Keras module the worker configured (dtype policy, seed, determinism already
    set; importing keras yourself is the same module). ``input_shape`` is the shape of one sample
    of the run's dataset, ``n_classes`` its number of classes. Use ``seed`` for any layer that
    draws random numbers at call time (e.g. ``Dropout(seed=...)``): op determinism refuses
    unseeded random ops.
    """

    keras: Any
    benchmark: str
    input_shape: tuple[int, ...]
    n_classes: int
    seed: int
    dropout_rate: float


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: how to build, compile and feed one model (see the module docstring)."""

    name: str
    description: str
    build: Callable[[BuildContext], Any]  # returns an *uncompiled* keras.Model
    optimizer: str | Callable[[float], Any] = "adam"  # a name of OPTIMIZERS, or learning_rate -> optimizer
    loss: str = "sparse_categorical_crossentropy"
    metrics: tuple[str, ...] = (REQUIRED_METRIC,)
    defaults: Defaults = field(default_factory=Defaults)
    # Named datasets it accepts (the first is the default); any other dataset (npz:PATH, a dataset
    # another name provides) is accepted when its samples have ``input_shape`` (None: any shape).
    datasets: tuple[str, ...] = ()
    input_shape: tuple[int, ...] | None = None
    n_classes: int | None = None  # None: as many as the dataset has
    provides: tuple[DatasetDef, ...] = ()
    claims: tuple[Claim, ...] = ()
    probe_layers: tuple[str, ...] = ()  # layers the numerics probe reports and judges; empty: all
    uses_dropout_rate: bool = False  # --dropout-rate changes this benchmark (it is then a hyperparameter)

    def __post_init__(self) -> None:
        safe_name("benchmark name", self.name)
        if not isinstance(self.description, str) or "\n" in self.description:
            raise ConfigError(f"benchmark {self.name!r}: description must be one line, got {self.description!r}")
        if not callable(self.build):
            raise ConfigError(f"benchmark {self.name!r}: build must be a callable, got {self.build!r}")
        if not (callable(self.optimizer) or self.optimizer in OPTIMIZERS):
            raise ConfigError(
                f"benchmark {self.name!r}: optimizer must be one of {OPTIMIZERS} or a callable, got {self.optimizer!r}"
            )
        if not isinstance(self.loss, str) or not self.loss:
            raise ConfigError(f"benchmark {self.name!r}: loss must be a Keras loss name, got {self.loss!r}")
        if REQUIRED_METRIC not in self.metrics:
            raise ConfigError(
                f"benchmark {self.name!r}: metrics must include {REQUIRED_METRIC!r} (every result records it), "
                f"got {self.metrics!r}"
            )
        if not isinstance(self.defaults, Defaults):
            raise ConfigError(f"benchmark {self.name!r}: defaults must be a Defaults, got {self.defaults!r}")
        self._check_shapes()
        self._check_parts()

    def _check_shapes(self) -> None:
        if self.input_shape is not None and not (
            isinstance(self.input_shape, tuple)
            and self.input_shape
            and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in self.input_shape)
        ):
            raise ConfigError(
                f"benchmark {self.name!r}: input_shape must be a tuple of positive ints, got {self.input_shape!r}"
            )
        if self.n_classes is not None:
            int_at_least(f"benchmark {self.name!r}: n_classes", self.n_classes, 2)

    def _check_parts(self) -> None:
        for dataset in self.datasets:
            safe_name(f"benchmark {self.name!r}: dataset", dataset)
        for what, items, kind in (("provides", self.provides, DatasetDef), ("claims", self.claims, Claim)):
            bad = [item for item in items if not isinstance(item, kind)]
            if not isinstance(items, tuple) or bad:
                raise ConfigError(f"benchmark {self.name!r}: {what} must be a tuple of {kind.__name__}, got {items!r}")
        for layer in self.probe_layers:
            if not isinstance(layer, str) or not layer:
                raise ConfigError(f"benchmark {self.name!r}: probe_layers must be layer names, got {layer!r}")

    @property
    def default_dataset(self) -> str:
        """The dataset a run uses when the command line names none."""
        return self.datasets[0] if self.datasets else "mnist-5k"
