"""``tfparity list``: models, datasets, suites, paths and presets, with one line each."""

from __future__ import annotations

import argparse

from harness.spec import names
from harness.spec.presets import PRESETS
from harness.spec.suites import SUITES

HELP = "list models, datasets, suites and presets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No arguments."""


def run(args: argparse.Namespace) -> int:
    sections = [
        ("models", names.BENCHMARKS),
        ("datasets", names.DATASETS),
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
