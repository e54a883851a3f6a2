"""Result arguments of compare and report: each argument is one source, labelled the same way in both."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.analysis.coverage import same_results
from harness.analysis.samples import default_source
from harness.errors import CompareError, ResultError
from harness.store.results import RunResult, load_result, result_files


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
    """All results of the arguments, and the source of each result.

    A result never counts twice: an argument given twice, a file reached through two arguments, or
    two files with identical content (a copy) are refused in one line naming them.
    """
    if labels is not None and len(labels) != len(targets):
        raise CompareError(f"--label given {len(labels)} time(s) for {len(targets)} RESULTS arguments")
    files = [files_of(t) for t in targets]
    refuse_given_twice(targets, files)
    loaded = [[load_result(f) for f in fs] for fs in files]
    refuse_copies([f for fs in files for f in fs], [r for rs in loaded for r in rs])
    per_arg = list(labels) if labels is not None else source_labels(targets, loaded)
    results = [r for rs in loaded for r in rs]
    if labels is None and len(loaded) == 1:
        # One directory holding local and docker results: the backend is the source.
        return results, [default_source(r) for r in results]
    return results, [label for label, rs in zip(per_arg, loaded, strict=True) for _ in rs]


def files_of(target: str) -> list[Path]:
    """The result files of one argument; none is a user error (as for every command that reads results)."""
    files = result_files(target)
    if not files:
        raise ResultError(f"no result files found in {target!r}")
    return files


def refuse_given_twice(targets: Sequence[str], files: Sequence[Sequence[Path]]) -> None:
    """The same argument twice, or one file reached through two arguments (``D`` and ``D/sub``)."""
    seen: dict[Path, str] = {}
    for target, target_files in zip(targets, files, strict=True):
        for path in target_files:
            real = path.resolve()
            if real not in seen:
                seen[real] = target
                continue
            if Path(seen[real]).resolve() == Path(target).resolve():
                raise CompareError(f"{target!r} is given twice: a result never counts twice")
            raise CompareError(
                f"result file {str(path)!r} is given twice (in {seen[real]!r} and {target!r}): "
                "a result never counts twice"
            )


def refuse_copies(files: Sequence[Path], results: Sequence[RunResult]) -> None:
    """Two files holding the same run (identical content): a copy is not a second run."""
    for i, j in same_results(results)[:1]:
        r = results[i]
        raise CompareError(
            f"{str(files[i])!r} and {str(files[j])!r} hold the same run ({r.run_id}, started {r.started_utc}; "
            "identical content, e.g. a copied file): a result never counts twice"
        )


def load_baseline(target: str, sources: Sequence[str]) -> tuple[list[RunResult], list[str]]:
    """Baseline results with the source label each one pairs with.

    A history entry holds one subdirectory per machine (``cpu/``, ``gpu/``), named like the
    current sources, so a result under ``<baseline>/<source>/`` is labelled ``<source>``. With one
    source on both sides everything pairs with it; otherwise the result's backend is its label.
    """
    base = Path(target)
    files = files_of(target)
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
    refuse_copies(files, results)
    return results, labels
