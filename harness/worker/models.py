"""A run's model, built and compiled from its benchmark definition (built-in or plugin), and what the
result records about that definition.

Every benchmark goes through the same path: :func:`harness.spec.benchmarks.registry.resolve` finds
the definition (a plugin's module is imported here, in the worker), its ``build`` gets a
:class:`~harness.spec.benchmarks.api.BuildContext` for the run's dataset, and the model is compiled
with the definition's optimizer, loss and metrics and the path's ``jit_compile`` and
``steps_per_execution``. Only the global dtype policy (set by the worker before building) and
``jit_compile`` differ between paths.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Protocol

from harness.errors import ConfigError
from harness.spec.benchmarks.api import Benchmark, BuildContext
from harness.spec.benchmarks.registry import Entry, resolve
from harness.spec.run_spec import RunSpec
from harness.store.results import BenchmarkInfo

if TYPE_CHECKING:  # pragma: no cover
    import keras


class Shaped(Protocol):
    """What a build needs to know of the data (a ``harness.data.Dataset`` has both)."""

    @property
    def sample_shape(self) -> tuple[int, ...]: ...

    @property
    def n_classes(self) -> int: ...


class NotAModelError(TypeError):
    """A benchmark's build returned something that is not a Keras model."""


def definition(spec: RunSpec) -> Entry:
    """The benchmark definition of a spec, with its origin (a plugin is imported once per process)."""
    return resolve(spec.benchmark, spec.benchmark_source)


def build_context(spec: RunSpec, bench: Benchmark, data: Shaped | None) -> BuildContext:
    """The context ``bench.build`` gets: the data's sample shape and classes, or the definition's own."""
    import keras

    input_shape = data.sample_shape if data is not None else bench.input_shape
    n_classes = bench.n_classes or (data.n_classes if data is not None else None)
    if input_shape is None or n_classes is None:
        raise ConfigError(
            f"benchmark {bench.name!r} declares no input_shape/n_classes: it can only be built for a dataset"
        )
    return BuildContext(keras, spec.benchmark, tuple(input_shape), int(n_classes), spec.seed, spec.dropout_rate)


def build_model(spec: RunSpec, *, compile_model: bool = True, data: Shaped | None = None) -> keras.Model:
    """Build (and compile) the model of ``spec.benchmark`` under the current global dtype policy.

    ``data`` (the run's dataset) gives the input shape and the number of classes; without it the
    definition's declared ones are used (the built-ins declare theirs).
    """
    entry = definition(spec)
    bench = entry.benchmark
    model = bench.build(build_context(spec, bench, data))
    require_model(model, entry)
    if compile_model:
        compile_for(model, bench, spec)
    return model


def require_model(model: Any, entry: Entry) -> None:
    """A build that returns anything but a ``keras.Model`` is the plugin's error, said in one line."""
    import keras

    if not isinstance(model, keras.Model):
        raise NotAModelError(
            f"benchmark {entry.benchmark.name!r} ({entry.origin.ref}): build() returned "
            f"{type(model).__name__}, not a keras.Model"
        )


def compile_for(model: Any, bench: Benchmark, spec: RunSpec) -> None:
    """Compile with the definition's optimizer/loss/metrics and the path's execution settings."""
    model.compile(
        optimizer=optimizer(bench, spec.learning_rate),
        loss=bench.loss,
        metrics=list(bench.metrics),
        jit_compile=spec.path.xla,
        steps_per_execution=spec.steps_per_execution,
    )


def optimizer(bench: Benchmark, learning_rate: float) -> Any:
    """The definition's optimizer at the run's learning rate."""
    import keras

    if callable(bench.optimizer):
        return bench.optimizer(learning_rate)
    classes = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
        "nadam": keras.optimizers.Nadam,
        "adagrad": keras.optimizers.Adagrad,
    }
    return classes[bench.optimizer](learning_rate=learning_rate)


def benchmark_info(spec: RunSpec) -> BenchmarkInfo:
    """What the result records about the definition that ran: origin, source hash, version, delivery."""
    entry = definition(spec)
    origin = entry.origin
    return BenchmarkInfo(
        name=entry.benchmark.name,
        origin=origin.kind,
        ref=origin.ref,
        sha256=origin.sha256,
        version=origin.version,
        delivery=delivery(origin.kind, origin.file),
        claims={claim.kind: claim.to_dict() for claim in entry.benchmark.claims},
    )


def delivery(kind: str, file: str | None) -> str:
    """How the definition's source reached this process, read from the file system it lives on:
    ``package`` (part of the installed harness, in the image for containers), ``host`` (a local
    run reads the host's file), ``read-only mount`` / ``writable mount`` (a container's bind mount)."""
    if kind == "built-in":
        return "package"
    if os.environ.get("TFPARITY_BACKEND") != "docker":
        return "host"
    try:
        read_only = bool(os.statvfs(file).f_flag & os.ST_RDONLY) if file else False
    except OSError:
        read_only = False
    return "read-only mount" if read_only else "writable mount"
