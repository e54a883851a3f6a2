"""The seed experiment's models: an MNIST MLP, its BatchNormalization and BN + dropout variants.

Every model is built the same way for every path; only the global dtype policy (set by the worker
before building) and ``jit_compile`` differ. Activations are separate layers so the numerics probe
can name the exact layer where two paths part; this is numerically identical to
``Dense(..., activation=...)`` and adds no parameters. The softmax is its own float32 layer so
mixed-precision paths still emit float32 probabilities (Keras mixed-precision guide).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.errors import ConfigError
from harness.spec.names import BENCHMARKS
from harness.spec.run_spec import RunSpec

if TYPE_CHECKING:  # pragma: no cover
    import keras

INPUT_DIM = 28 * 28
NUM_CLASSES = 10
HIDDEN_UNITS = (128, 64)

# Pinned by tests: a change here changes the experiment.
PARAM_COUNTS = {"baseline": 109_386, "batchnorm": 110_154, "batchnorm_dropout": 110_154}


def build_model(spec: RunSpec, *, compile_model: bool = True) -> keras.Model:
    """Build (and compile) the model of ``spec.benchmark`` under the current global dtype policy."""
    import keras
    from keras import layers

    if spec.benchmark not in BENCHMARKS:
        raise ConfigError(f"benchmark must be one of {tuple(BENCHMARKS)}, got {spec.benchmark!r}")
    use_bn = spec.benchmark in ("batchnorm", "batchnorm_dropout")
    use_dropout = spec.benchmark == "batchnorm_dropout"

    inputs = keras.Input(shape=(INPUT_DIM,), name="pixels")
    x = inputs
    for i, units in enumerate(HIDDEN_UNITS, start=1):
        x = layers.Dense(units, name=f"dense_{i}")(x)
        if use_bn:
            x = layers.BatchNormalization(name=f"bn_{i}")(x)
        x = layers.Activation("relu", name=f"relu_{i}")(x)
        if use_dropout:
            x = layers.Dropout(spec.dropout_rate, seed=spec.seed + i, name=f"dropout_{i}")(x)
    x = layers.Dense(NUM_CLASSES, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="softmax")(x)
    model = keras.Model(inputs, outputs, name=spec.benchmark)

    if compile_model:
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=spec.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=spec.path.xla,
            steps_per_execution=spec.steps_per_execution,
        )
    return model
