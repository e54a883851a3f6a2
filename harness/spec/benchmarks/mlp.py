"""The seed experiment's models, as benchmark definitions: the MNIST MLP, its BatchNormalization
and BN + dropout variants, and the seed's claims about them (as data).

Every model is built the same way for every path; only the global dtype policy (set by the worker
before building) and ``jit_compile`` differ. Activations are separate layers so the numerics probe
can name the exact layer where two paths part; this is numerically identical to
``Dense(..., activation=...)`` and adds no parameters. The softmax is its own float32 layer so
mixed-precision paths still emit float32 probabilities (Keras mixed-precision guide). The layer
order, names and seeds are those of the seed's models since the first result: changing them
changes every result's initial weights (tests/worker/test_models.py pins parameter counts and the
initial weights' sha256).
"""

from __future__ import annotations

from typing import Any

from harness.spec.benchmarks.api import Benchmark, BuildContext, Claim

INPUT_DIM = 28 * 28
NUM_CLASSES = 10
HIDDEN_UNITS = (128, 64)
# The datasets of MNIST's shape; any other dataset of 784-pixel samples is accepted as well.
MNIST_LIKE = ("mnist-5k", "mnist", "fashion-mnist", "synthetic")
CLAIM_DATASETS = ("mnist", "mnist-5k")  # the seed made its claims for MNIST

# The seed's claims (harness.analysis.claims measures them; the kinds are its ids).
BASELINE_VAL = Claim(
    kind="baseline_val_accuracy",
    text="baseline reaches val accuracy ≥ 0.90 (last epoch)",
    metric="val_accuracy",
    op=">=",
    value=0.90,
    datasets=CLAIM_DATASETS,
)
BN_GAP = Claim(
    kind="bn_shrinks_gap",
    text="BatchNormalization shrinks the train/val gap",
    metric="generalization_gap",
    op="<",
    than="baseline",
    datasets=CLAIM_DATASETS,
)
BN_TRAIN = Claim(
    kind="bn_train_accuracy",
    text="BN model's train accuracy stays < 0.95 (less memorisation)",
    metric="train_accuracy",
    op="<",
    value=0.95,
    datasets=CLAIM_DATASETS,
)


def mlp(ctx: BuildContext, *, batchnorm: bool, dropout: bool) -> Any:
    """Dense 128 -> Dense 64 -> Dense n_classes softmax, optionally with BN (before each ReLU) and dropout."""
    keras = ctx.keras
    layers = keras.layers
    inputs = keras.Input(shape=ctx.input_shape, name="pixels")
    x = inputs
    for i, units in enumerate(HIDDEN_UNITS, start=1):
        x = layers.Dense(units, name=f"dense_{i}")(x)
        if batchnorm:
            x = layers.BatchNormalization(name=f"bn_{i}")(x)
        x = layers.Activation("relu", name=f"relu_{i}")(x)
        if dropout:
            x = layers.Dropout(ctx.dropout_rate, seed=ctx.seed + i, name=f"dropout_{i}")(x)
    x = layers.Dense(ctx.n_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="softmax")(x)
    return keras.Model(inputs, outputs, name=ctx.benchmark)


def build_baseline(ctx: BuildContext) -> Any:
    return mlp(ctx, batchnorm=False, dropout=False)


def build_batchnorm(ctx: BuildContext) -> Any:
    return mlp(ctx, batchnorm=True, dropout=False)


def build_batchnorm_dropout(ctx: BuildContext) -> Any:
    return mlp(ctx, batchnorm=True, dropout=True)


_COMMON: dict[str, Any] = {"datasets": MNIST_LIKE, "input_shape": (INPUT_DIM,), "n_classes": NUM_CLASSES}

BASELINE = Benchmark(
    name="baseline",
    description="Dense 128 -> ReLU -> Dense 64 -> ReLU -> Dense 10 softmax (the seed's MLP)",
    build=build_baseline,
    claims=(BASELINE_VAL,),
    **_COMMON,
)
BATCHNORM = Benchmark(
    name="batchnorm",
    description="as baseline with BatchNormalization after each hidden Dense, before the ReLU",
    build=build_batchnorm,
    claims=(BN_GAP, BN_TRAIN),
    **_COMMON,
)
BATCHNORM_DROPOUT = Benchmark(
    name="batchnorm_dropout",
    description="as batchnorm with Dropout (rate --dropout-rate, default 0.2) after each BN+ReLU block",
    build=build_batchnorm_dropout,
    uses_dropout_rate=True,
    **_COMMON,
)
BENCHMARKS = (BASELINE, BATCHNORM, BATCHNORM_DROPOUT)
