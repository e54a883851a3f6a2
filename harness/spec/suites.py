"""Named suites (matrices of runs) and their expansion into RunSpecs.

A suite fixes *what varies* (models x datasets x paths x seeds); everything else comes from the
base RunSpec the user configured (epochs, batch size, input mode, ...).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError
from harness.spec.run_spec import PathSpec, RunSpec

SEED_MODELS = ("baseline", "batchnorm", "batchnorm_dropout")  # the seed experiment's models

SUITES: dict[str, str] = {
    "seed": "the seed experiment: baseline, batchnorm, batchnorm_dropout on the chosen path",
    "paths": "the seed models x precision {fp32, mixed; tf32 on gpu} x XLA {off, on} on the chosen device",
    "bn": "baseline vs batchnorm only (the overfitting question) on the chosen path",
}


@dataclass(frozen=True)
class SuiteSpec:
    """A named matrix; ``paths`` of None means "the path of the base spec"."""

    name: str
    benchmarks: tuple[str, ...]
    paths: tuple[PathSpec, ...] | None = None

    def expand(
        self,
        base: RunSpec,
        seeds: list[int],
        datasets: list[str] | None = None,
        replicas: Sequence[int] = (),
        workers: Sequence[int] = (),
        sources: Mapping[str, str | None] | None = None,
        files: Mapping[str, str | None] | None = None,
    ) -> list[RunSpec]:
        """All runs of the suite, ordered seed-major so partial results cover every model early.

        ``replicas`` (e.g. ``(1, 2)``) repeats every path with each replica count, ``workers`` with each
        worker count; ``sources`` gives a plugin benchmark's source (RunSpec.benchmark_source) by name,
        ``files`` a user dataset's .npz file (RunSpec.dataset_file) by dataset name.
        """
        datasets = datasets or [base.dataset]
        paths = self.paths or (base.path,)
        if replicas:
            paths = tuple(dataclasses.replace(p, replicas=n) for p in paths for n in replicas)
        if workers:
            paths = tuple(dataclasses.replace(p, workers=n) for p in paths for n in workers)
        if not seeds:
            raise ConfigError("a suite needs at least one seed")

        def where(benchmark: str, dataset: str) -> dict[str, Any]:
            return {
                "benchmark": benchmark,
                "benchmark_source": (sources or {}).get(benchmark),
                "dataset": dataset,
                "dataset_file": (files or {}).get(dataset),
            }

        return [
            dataclasses.replace(base, **where(benchmark, dataset), path=path, seed=seed, suite=self.name)
            for seed in seeds
            for dataset in datasets
            for path in paths
            for benchmark in self.benchmarks
        ]


def get_suite(name: str, device: str = "cpu", mixed_policy: str | None = None) -> SuiteSpec:
    """The suite of that name for a device (``paths`` spans precision x XLA on it)."""
    if name == "seed":
        return SuiteSpec("seed", SEED_MODELS)
    if name == "bn":
        return SuiteSpec("bn", ("baseline", "batchnorm"))
    if name == "paths":
        # TF32 is a path of its own only where it exists (Ampere+ GPUs); on CPU it is refused.
        precisions = ("fp32", "tf32", "mixed") if device == "gpu" else ("fp32", "mixed")
        paths = tuple(
            PathSpec(
                device=device,
                precision=precision,
                xla=xla,
                mixed_policy=mixed_policy if precision == "mixed" else None,
            )
            for precision in precisions
            for xla in (False, True)
        )
        return SuiteSpec("paths", SEED_MODELS, paths)
    raise ConfigError(f"suite must be one of {tuple(SUITES)}, got {name!r}")
