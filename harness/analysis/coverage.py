"""What a comparison may count and what it did not compare: one result counted once, a dataset in
common with the reference, and a WARN for every benchmark/dataset (or the whole comparison) left
uncompared, so that "PASS" never stands for "nothing was looked at"."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

from harness.analysis.checks import Check, Verdict
from harness.analysis.samples import Run
from harness.errors import CompareError
from harness.store.results import RunResult

Unit = tuple[str, str]  # (benchmark, dataset)


def result_digest(result: RunResult) -> str:
    """A result's identity: the sha256 of its whole content (run id, times, every sample).

    Two runs of one spec differ at least in their start times and measured step times, so equal
    digests mean one run given twice (the same file twice, or a copy), never two repeats.
    """
    text = json.dumps(result.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def same_results(results: Sequence[RunResult]) -> list[tuple[int, int]]:
    """Index pairs ``(first, later)`` of results with identical content (see :func:`result_digest`)."""
    first: dict[str, int] = {}
    pairs = []
    for i, result in enumerate(results):
        digest = result_digest(result)
        if digest in first:
            pairs.append((first[digest], i))
        else:
            first[digest] = i
    return pairs


def refuse_same_results(results: Sequence[RunResult]) -> None:
    """One result never counts twice: refuse a set that holds one run twice (every caller of compare is
    protected; the CLI names the files before this, see :mod:`harness.cli.sources`)."""
    for i, j in same_results(results)[:1]:
        r = results[i]
        raise CompareError(
            f"results {i + 1} and {j + 1} are the same run ({r.run_id}, started {r.started_utc}; identical "
            "content): a result never counts twice"
        )


def refuse_disjoint_datasets(runs: Sequence[Run], groups: Sequence[str], reference: str) -> None:
    """A group that shares no dataset with the reference group cannot be compared with it at all
    (a partial overlap is compared where it overlaps; :func:`units_missing` says what was not)."""
    datasets: dict[str, set[str]] = {}
    for run in runs:
        datasets.setdefault(run.group, set()).add(run.spec.dataset)
    for group in groups:
        if group != reference and not datasets[group] & datasets[reference]:
            raise CompareError(
                f"no dataset in common: {group!r} ran on {_names(datasets[group])}, the reference {reference!r} "
                f"on {_names(datasets[reference])}; runs on different datasets cannot be compared"
            )


def _names(values: set[str]) -> str:
    return ", ".join(repr(v) for v in sorted(values))


def reference_missing(unit: Unit, others: list[str], reference: str, runs: Sequence[Run]) -> Check:
    """The reference has no successful run of ``unit``: say whether it never ran it or its runs failed."""
    tried = [r for r in runs if r.group == reference and r.unit == unit and r.spec.mode == "train"]
    what = f"{unit[0]}/{unit[1]}"
    if tried:
        why = f"none of the {len(tried)} run(s) of the reference {reference!r} on {what} finished ok"
    else:
        why = f"the reference {reference!r} has no runs of {what}"
    return Check(
        "coverage",
        Verdict.WARN,
        what,
        f"{why}: {', '.join(others)} not compared on it",
        {"unit": list(unit), "reference": reference, "groups": others, "reference_runs": len(tried)},
    )


def units_missing(covered: Iterable[Unit], groups: Sequence[str], reference: str, runs: Sequence[Run]) -> list[Check]:
    """A benchmark/dataset the reference ran (``covered``) that a training group never ran at all."""
    ran: dict[str, set[Unit]] = {}
    for run in runs:
        if run.spec.mode == "train":
            ran.setdefault(run.group, set()).add(run.unit)
    checks = []
    for unit in covered:
        what = f"{unit[0]}/{unit[1]}"
        for group in (g for g in groups if g != reference and g in ran and unit not in ran[g]):
            summary = f"{group} has no runs of {what}: not compared with the reference {reference!r} on it"
            details = {"unit": list(unit), "reference": reference, "groups": [group], "reference_runs": None}
            checks.append(Check("coverage", Verdict.WARN, f"{what}: {group}", summary, details))
    return checks


def probe_pairs(probes: Sequence[Run], reference: str) -> bool:
    """Whether some group's probe run has a reference probe of the same benchmark, dataset and seed."""
    ref = {(x.unit, x.spec.seed) for x in probes if x.group == reference}
    return any(x.group != reference and (x.unit, x.spec.seed) in ref for x in probes)


def nothing_compared(groups: Sequence[str]) -> Check:
    """The WARN of a comparison without a single pair: it checked integrity, it compared nothing."""
    if len(groups) == 1:
        why = "one group"
    else:
        why = f"no two of the {len(groups)} groups ran the same benchmark on the same dataset"
    return Check(
        "coverage",
        Verdict.WARN,
        "comparison",
        f"nothing to compare: {why} ({', '.join(groups)}); only the integrity checks ran",
        {"pairs": 0, "groups": list(groups)},
    )
