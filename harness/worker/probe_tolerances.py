"""The numerics probe's tolerances: per path numerics, a factor x the rounding unit, and where each
factor comes from (measured; benchmarks/probe_tolerances.py and benchmarks/cnn_paths.py reproduce
them). TF-free: :mod:`harness.worker.probe` applies them.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.spec.run_spec import RunSpec


@dataclass(frozen=True)
class Tolerance:
    """Tolerance on the relative L2 error = factor x eps, where eps is the unit of the rounding that
    dominates the path's arithmetic."""

    eps: float
    activation_factor: float
    gradient_factor: float


# Per numerics (the path's precision; float64 is the reference itself), measured on mnist-5k, batch 32,
# seeds 0-4, op determinism as the worker resolves it, on this project's CPU machines
# (benchmarks/probe_tolerances.py and benchmarks/cnn_paths.py reproduce them):
# - the seed's MLPs: float32 below 3 eps on activations and gradients; bfloat16 below 1.4 eps on
#   activations and 13 eps on gradients; float16 below 0.8 and 23 eps.
# - the conv nets: cnn stays near the MLPs (float32 3.5 / 5.0 eps, bfloat16 0.65 / 15, float16 0.7 / 57).
#   cnn_batchnorm sets the factors: float32 120 eps on activations and 509 on gradients (XLA 118 / 138),
#   bfloat16 1.3 / 55, float16 1.3 / 75. Its BatchNormalization after each conv reduces over 32 x 26 x 26
#   = 21,632 positions per channel, and the gradient reaching a conv's kernel through it sums to ~zero
#   per channel (BN's backward pass removes the mean): a cancelling sum whose relative error is 100x an
#   MLP's (op determinism, on for every non-XLA run, changes these sums).
# The factors leave ~3x headroom over the largest of these; float32's still catch one layer run in
# float16 inside a float32 model (~1e3-4e3 float32 eps), TF32 (~2.5e3 eps on a Dense layer) and a 0.1 %
# change of one layer's weights (8.4e3 eps). The bfloat16 and float16 gradient factors are wide (relative
# errors up to 1.25 and 0.25): they judge gross departures, not rounding.
TOLERANCES: dict[str, Tolerance] = {
    # float32 arithmetic, TF32 off: eps 2**-23 (cnn_batchnorm: 120 / 509 eps).
    "fp32": Tolerance(2.0**-23, 400.0, 1600.0),
    # TensorFloat-32: "float32 inputs of supported ops, such as tf.linalg.matmul, will be rounded from 23
    # bits of precision to 10 bits", with float32 accumulation (docstring of TF 2.21's
    # tf.config.experimental.enable_tensor_float_32_execution): eps 2**-10 on matmul/convolution inputs.
    # Emulated on CPU (every Dense matmul's inputs rounded, forward and backward; tests/worker/test_probe.py):
    # activations below 0.62 eps rounding to nearest, 2.4 eps truncating (dense_1 ~2.5e-4 and ~8e-4
    # relative; TF-FACTS.md: ~3e-4 on Dense 784->128); gradients below 54 eps (a ReLU mask flipping at a
    # pre-activation near 0: batchnorm, seed 1, relu_1).
    "tf32": Tolerance(2.0**-10, 8.0, 128.0),
    # mixed_float16: float16 compute dtype, eps 2**-10, gradients with loss scaling (FLOAT16_LOSS_SCALE).
    # Measured below 1.3 eps on activations and 75 eps on gradients (cnn_batchnorm).
    "mixed_float16": Tolerance(2.0**-10, 16.0, 256.0),
    # mixed_bfloat16: bfloat16 compute dtype, eps 2**-7. Measured below 1.4 eps on activations and 55
    # eps on gradients (cnn_batchnorm).
    "mixed_bfloat16": Tolerance(2.0**-7, 8.0, 160.0),
    # float64 (the reference's own dtype; used when probing a float64 model): eps 2**-52.
    "float64": Tolerance(2.0**-52, 64.0, 256.0),
}
# The numerics a model's compute dtype implies when no precision is named (TF32 is not a dtype).
NUMERICS_OF_DTYPE = {"float32": "fp32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16", "float64": "float64"}


def tolerances(numerics: str) -> dict[str, float]:
    """Activation and gradient tolerances (relative L2 error) for a path's numerics (see TOLERANCES)."""
    if numerics not in TOLERANCES:
        raise ValueError(f"no probe tolerance for numerics {numerics!r}; known: {sorted(TOLERANCES)}")
    tol = TOLERANCES[numerics]
    return {"activation": tol.activation_factor * tol.eps, "gradient": tol.gradient_factor * tol.eps}


def path_numerics(spec: RunSpec) -> str:
    """The key of TOLERANCES for ``spec``'s path: its precision, or its mixed policy."""
    path = spec.path
    return path.precision if path.precision in ("fp32", "tf32") else path.policy
