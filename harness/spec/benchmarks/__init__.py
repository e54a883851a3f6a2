"""Benchmarks as plugins: the definition API, the built-in definitions and the registry (TF-free).

A plugin imports the API from here: ``from harness.spec.benchmarks import Benchmark, BuildContext``.
"""

from harness.spec.benchmarks.api import Benchmark, BuildContext, Claim, DatasetDef, Defaults

__all__ = ["Benchmark", "BuildContext", "Claim", "DatasetDef", "Defaults"]
