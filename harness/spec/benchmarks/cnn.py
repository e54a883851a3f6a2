"""The built-in conv nets: ``cnn`` and ``cnn_batchnorm``, defined through the same API as the seed's MLPs.

An MLP exercises matmuls only; convolutions are where CPU (oneDNN) and GPU (cuDNN: autotuned
algorithms, TF32 on Ampere and later) paths differ most. The net is the classic small MNIST conv
net: Conv2D 32 (3x3) -> max-pool 2x2 -> Conv2D 64 (3x3) -> max-pool 2x2 -> Dense 128 -> Dense 10
softmax, on the 784-pixel rows every MNIST-shaped dataset yields (reshaped to 28x28x1 inside the
model, so the data and its fingerprint stay those of the MLPs). ``cnn_batchnorm`` adds
BatchNormalization after each conv and the hidden Dense, before the ReLU (the MLP's convention).
As in the MLPs, activations are separate layers (the probe names the layer where paths part) and
the softmax is a float32 layer. Parameter counts are pinned in tests/worker/test_models.py.
"""

from __future__ import annotations

from typing import Any

from harness.spec.benchmarks.api import Benchmark, BuildContext, Claim
from harness.spec.benchmarks.mlp import INPUT_DIM, MNIST_LIKE, NUM_CLASSES

IMAGE_SHAPE = (28, 28, 1)
CONV_FILTERS = (32, 64)
KERNEL_SIZE = (3, 3)
DENSE_UNITS = 128

BEATS_MLP = Claim(
    kind="cnn_beats_mlp",
    text="the conv net reaches a higher test accuracy than the seed's MLP (baseline)",
    metric="test_accuracy",
    op=">",
    than="baseline",
)


def convnet(ctx: BuildContext, *, batchnorm: bool) -> Any:
    """Conv 32 -> pool -> Conv 64 -> pool -> Dense 128 -> Dense n_classes softmax."""
    keras = ctx.keras
    layers = keras.layers
    inputs = keras.Input(shape=ctx.input_shape, name="pixels")
    x = layers.Reshape(IMAGE_SHAPE, name="image")(inputs)
    for i, filters in enumerate(CONV_FILTERS, start=1):
        x = layers.Conv2D(filters, KERNEL_SIZE, name=f"conv_{i}")(x)
        if batchnorm:
            x = layers.BatchNormalization(name=f"bn_{i}")(x)
        x = layers.Activation("relu", name=f"relu_{i}")(x)
        x = layers.MaxPooling2D((2, 2), name=f"pool_{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(DENSE_UNITS, name="dense")(x)
    if batchnorm:
        x = layers.BatchNormalization(name=f"bn_{len(CONV_FILTERS) + 1}")(x)
    x = layers.Activation("relu", name="relu_dense")(x)
    x = layers.Dense(ctx.n_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="softmax")(x)
    return keras.Model(inputs, outputs, name=ctx.benchmark)


def build_cnn(ctx: BuildContext) -> Any:
    return convnet(ctx, batchnorm=False)


def build_cnn_batchnorm(ctx: BuildContext) -> Any:
    return convnet(ctx, batchnorm=True)


_COMMON: dict[str, Any] = {"datasets": MNIST_LIKE, "input_shape": (INPUT_DIM,), "n_classes": NUM_CLASSES}

CNN = Benchmark(
    name="cnn",
    description="Conv2D 32 -> pool -> Conv2D 64 -> pool -> Dense 128 -> Dense 10 softmax (oneDNN/cuDNN convs)",
    build=build_cnn,
    claims=(BEATS_MLP,),
    **_COMMON,
)
CNN_BATCHNORM = Benchmark(
    name="cnn_batchnorm",
    description="as cnn with BatchNormalization after each conv and the hidden Dense, before the ReLU",
    build=build_cnn_batchnorm,
    **_COMMON,
)
BENCHMARKS = (CNN, CNN_BATCHNORM)
