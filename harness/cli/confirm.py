"""``tfparity compare ... --baseline B --confirm N``: re-run suspected regressions, then decide on the pooled runs.

For each group whose speed or memory regression check failed, N more runs of the group's spec(s)
(cycled when the group holds several seeds; each with a new ``repeat`` index, so a new run id) run
with the current code, through the backend the group's results came from, interleaved across
groups (g1 g2 g1 g2 ...). They go into a new suite directory next to the first RESULTS argument,
``<parent>/<name>-confirm-<UTC stamp>/`` (a normal suite: manifest, specs, results; resumable), and
the comparison is made again on the original and the new runs together
(:func:`harness.analysis.confirm.pooled_verdict`): exit 1 only if the regression persists.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from itertools import zip_longest
from pathlib import Path

from harness.analysis.checks import Comparison
from harness.analysis.confirm import Suspect, pooled_verdict, suspects
from harness.analysis.noise import identity
from harness.analysis.samples import default_source
from harness.errors import CompareError, ResumeError
from harness.spec.run_spec import RunSpec
from harness.store.results import RunResult

Decide = Callable[[list[RunResult], list[str]], Comparison]


def confirm(
    comparison: Comparison,
    results: list[RunResult],
    sources: list[str],
    *,
    runs: int,
    targets: Sequence[str],
    data_dir: str | None,
    decide: Decide,
) -> Comparison:
    """The comparison after confirming its suspected regressions (unchanged when there are none)."""
    found = suspects(comparison)
    if not found:
        return comparison
    planned = plan(found, results, runs)
    data_dir = data_dir or recorded_data_dir(targets)
    backends = list(dict.fromkeys(backend for _, _, backend in planned))
    new_results: list[RunResult] = []
    new_sources: list[str] = []
    dirs = []
    for backend_name in backends:  # one suite directory per backend (a manifest names one backend)
        batch = [(spec, source) for spec, source, backend in planned if backend == backend_name]
        suffix = backend_name if len(backends) > 1 else ""
        out_dir, done = _run([spec for spec, _ in batch], backend_name, targets[0], suffix, data_dir)
        new_results += done
        new_sources += [source for _, source in batch]
        dirs.append(str(out_dir))
    after = decide(results + new_results, sources + new_sources)
    info = {"directory": ", ".join(dirs), "runs_per_group": runs, "groups": [s.group for s in found],
            "run_ids": [r.run_id for r in new_results], "failed": sum(not r.ok for r in new_results)}  # fmt: skip
    return pooled_verdict(comparison, after, info)


def plan(found: list[Suspect], results: list[RunResult], runs: int) -> list[tuple[RunSpec, str, str]]:
    """(spec, source, backend) of every confirming run, interleaved across groups."""
    by_id = {r.run_id: r for r in results}
    next_repeat: dict[str, int] = {}
    for r in results:
        key = identity(r.run_spec)
        next_repeat[key] = max(next_repeat.get(key, 0), r.run_spec.repeat + 1)
    per_group: list[list[tuple[RunSpec, str, str]]] = []
    for suspect in found:
        members = [by_id[i] for i in suspect.run_ids if i in by_id]
        if not members:
            raise CompareError(f"--confirm: the runs of group {suspect.group!r} are not among the results")
        specs = list({identity(r.run_spec): r for r in members}.values())
        todo = []
        for i in range(runs):
            template = specs[i % len(specs)]
            key = identity(template.run_spec)
            todo.append((template.run_spec.replace(repeat=next_repeat[key]), suspect.source, default_source(template)))
            next_repeat[key] += 1
        per_group.append(todo)
    return [item for row in zip_longest(*per_group) for item in row if item is not None]


def recorded_data_dir(targets: Sequence[str]) -> str | None:
    """The data directory the results' suite was run with (``suite.json``), if one recorded it."""
    from harness.store.layout import MANIFEST, read_manifest

    for target in targets:
        path = Path(target)
        for manifest in sorted(path.rglob(MANIFEST)) if path.is_dir() else []:
            try:
                _, meta = read_manifest(manifest.parent)
            except ResumeError:
                continue
            if meta.get("data_dir"):
                return str(meta["data_dir"])
    return None


def _new_dir(target: str, suffix: str) -> Path:
    from harness.store.layout import new_suite_dir

    path = Path(target).resolve()
    name = (path.name if path.is_dir() else path.stem) + "-confirm" + (f"-{suffix}" if suffix else "")
    return new_suite_dir(path.parent, name)


def _run(
    specs: list[RunSpec], backend_name: str, target: str, suffix: str, data_dir: str | None
) -> tuple[Path, list[RunResult]]:
    """Run ``specs`` into a new suite directory next to ``target`` (made once the backend is ready)."""
    from harness.cli.progress import ProgressPrinter
    from harness.orchestrate import runner
    from harness.orchestrate.backends import get_backend
    from harness.store.layout import write_manifest

    options: dict[str, object] = {"data_dir": data_dir}
    if backend_name == "docker":
        options["device"] = specs[0].path.device
    backend = get_backend(backend_name, **options)
    backend.prepare(specs)
    out_dir = _new_dir(target, suffix)
    write_manifest(out_dir, specs, {"suite": "confirm", "backend": backend_name, "data_dir": data_dir})
    print(f"tfparity: confirming suspected regression(s): {len(specs)} more run(s) -> {out_dir}", file=sys.stderr)
    return out_dir, runner.run_specs(specs, backend, out_dir, on_event=ProgressPrinter())
