"""Result arguments of compare and report: each argument is one source, labelled the same way in both."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.analysis.samples import default_source
from harness.errors import CompareError, ResultError
from harness.store.results import RunResult, load_result, load_results, result_files


def source_labels(targets: Sequence[str], loaded: Sequence[Sequence[RunResult]]) -> list[str]:
    """One label per argument: the backend when each argument holds one distinct backend
    (local vs docker), else the directory/file name, made unique."""
    backends = []
    for results in loaded:
        found = {default_source(r) for r in results}
        backends.append(found.pop() if len(found) == 1 else None)
    if len(targets) == 1:
        return [backends[0] or "local"]
    if all(backends) and len(set(backends)) == len(backends):
        return [str(b) for b in backends]
    labels: list[str] = []
    for target in targets:
        path = Path(target)
        base = path.resolve().name if path.is_dir() else path.stem
        label, i = base, 2
        while label in labels:
            label, i = f"{base}#{i}", i + 1
        labels.append(label)
    return labels


def load_sources(targets: Sequence[str], labels: Sequence[str] | None = None) -> tuple[list[RunResult], list[str]]:
    """All results of the arguments, and the source of each result."""
    loaded = [load_results([t]) for t in targets]
    if labels is not None and len(labels) != len(targets):
        raise CompareError(f"--label given {len(labels)} time(s) for {len(targets)} RESULTS arguments")
    per_arg = list(labels) if labels is not None else source_labels(targets, loaded)
    results = [r for rs in loaded for r in rs]
    if labels is None and len(loaded) == 1:
        # One directory holding local and docker results: the backend is the source.
        return results, [default_source(r) for r in results]
    return results, [label for label, rs in zip(per_arg, loaded, strict=True) for _ in rs]


def load_baseline(target: str, sources: Sequence[str]) -> tuple[list[RunResult], list[str]]:
    """Baseline results with the source label each one pairs with.

    A history entry holds one subdirectory per machine (``cpu/``, ``gpu/``), named like the
    current sources, so a result under ``<baseline>/<source>/`` is labelled ``<source>``. With one
    source on both sides everything pairs with it; otherwise the result's backend is its label.
    """
    base = Path(target)
    files = result_files(base)
    if not files:
        raise ResultError(f"no result files found in {target!r}")
    results, labels = [], []
    for f in files:
        r = load_result(f)
        rel = f.relative_to(base).parts if base.is_dir() else ()
        if len(rel) > 1 and rel[0] in sources:
            label = rel[0]
        elif len(set(sources)) == 1:
            label = sources[0]
        else:
            label = default_source(r)
        results.append(r)
        labels.append(label)
    return results, labels
