"""``tfparity list``: benchmarks (and where each comes from), datasets, suites, paths and presets, one line each."""

from __future__ import annotations

import argparse

from harness.errors import ConfigError
from harness.spec import names
from harness.spec.benchmarks import registry
from harness.spec.presets import PRESETS
from harness.spec.suites import SUITES

HELP = "list benchmarks (with their origin), datasets, suites and presets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No arguments."""


def benchmark_lines() -> list[str]:
    """Each benchmark with its description and where it comes from; a plugin that cannot be loaded says why."""
    lines = []
    for name in registry.benchmark_names():
        try:
            entry = registry.lookup(name)
        except ConfigError as exc:
            lines.append(f"  {name:<18} cannot be loaded: {exc}")
            continue
        lines.append(f"  {name:<18} {entry.benchmark.description}")
        lines.append(f"  {'':<18}   from {entry.origin.describe()}")
    return lines


def run(args: argparse.Namespace) -> int:
    print("models (benchmarks; plugins: entry points of group "
          f"{registry.ENTRY_POINT_GROUP!r}, or --benchmark module:NAME / path/to/file.py:NAME):")  # fmt: skip
    print("\n".join(benchmark_lines()))
    sections = [
        ("datasets (or --dataset npz:PATH)", names.DATASETS),
        ("suites", SUITES),
        ("presets", {n: p.description for n, p in PRESETS.items()}),
    ]
    for title, entries in sections:
        print(f"{title}:")
        for name, desc in entries.items():
            print(f"  {name:<18} {desc}")
    print(
        f"paths: --device {{{','.join(names.DEVICES)}}} x --precision {{{','.join(names.PRECISIONS)}}} "
        "x --xla {off,on} x --replicas N (e.g. cpu-fp32-x2)"
    )
    return 0
