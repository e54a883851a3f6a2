"""An example tfparity benchmark plugin: a small conv net that finds the quadrant of a blob in 8x8 images.

Run it (README, "Your own benchmark")::

    python benchmarks/examples/make_blobs.py results/blobs/blobs.npz
    tfparity run --benchmark benchmarks/examples/blobs.py:BLOBS --dataset npz:results/blobs/blobs.npz

A plugin is one module-level :class:`~harness.spec.benchmarks.Benchmark`. Import nothing heavy at
the top: tfparity imports this file in its own process (to list and check it) without TensorFlow;
``build`` runs only in the worker process or container and gets Keras as ``ctx.keras``. Give
activations their own layers and the softmax a float32 dtype, as below, so the numerics probe can
name the layer where two paths part and mixed-precision paths still emit float32 probabilities.
"""

from __future__ import annotations

from typing import Any

from harness.spec.benchmarks import Benchmark, BuildContext, Claim, Defaults


def build(ctx: BuildContext) -> Any:
    """Conv2D 8 (3x3) -> ReLU -> Dense 32 -> ReLU -> Dense n_classes softmax, for (8, 8) images."""
    keras = ctx.keras
    layers = keras.layers
    inputs = keras.Input(shape=ctx.input_shape, name="pixels")
    x = layers.Reshape((*ctx.input_shape, 1), name="image")(inputs)
    x = layers.Conv2D(8, (3, 3), name="conv")(x)
    x = layers.Activation("relu", name="relu_conv")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(32, name="dense")(x)
    x = layers.Activation("relu", name="relu_dense")(x)
    x = layers.Dense(ctx.n_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="softmax")(x)
    return keras.Model(inputs, outputs, name=ctx.benchmark)


BLOBS = Benchmark(
    name="blobs",
    description="Conv2D 8 -> Dense 32 -> softmax: which quadrant holds the blob (8x8 images)",
    build=build,
    optimizer="adam",
    loss="sparse_categorical_crossentropy",
    metrics=("accuracy",),
    defaults=Defaults(epochs=5, batch_size=32, validation_split=0.2, learning_rate=0.003),
    input_shape=(8, 8),  # accepts any dataset of 8x8 samples (e.g. --dataset npz:blobs.npz)
    n_classes=4,
    claims=(
        Claim(
            kind="blobs_learned",
            text="the blob net finds the quadrant: test accuracy ≥ 0.90",
            metric="test_accuracy",
            op=">=",
            value=0.90,
        ),
    ),
    probe_layers=("conv", "dense", "logits", "softmax"),
)
