"""The claims benchmarks make about themselves, as data: each result records its definition's claims
(``result.benchmark.claims``, :class:`harness.spec.benchmarks.api.Claim`), measured here per dataset
and group like the seed's (:mod:`harness.analysis.claims`, which keeps the seed's three).

A claim is ``metric op value`` on the mean over seeds (a run's last-epoch value, or its test
accuracy), or ``metric op`` the same metric of another benchmark (``than``) on the same group and
dataset, paired by seed: then ``significant`` says whether the paired difference's 95 % CI excludes 0.
A claim measured on a dataset it was not made for says so in its note.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from harness.analysis.claims import BASELINE_VAL, BN_GAP, BN_TRAIN, ClaimCheck, fmt_mean_sd, seed_claims
from harness.analysis.samples import Run, is_synthetic
from harness.analysis.stats import describe

SEED_KINDS = (BASELINE_VAL, BN_GAP, BN_TRAIN)  # measured by harness.analysis.claims
OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def all_claims(runs: Sequence[Run]) -> list[ClaimCheck]:
    """The seed's claims, then every other claim the compared benchmarks make."""
    return seed_claims(runs) + benchmark_claims(runs)


def metric_value(run: Run, metric: str) -> float | None:
    """A run's value of a claim metric: the last epoch's, or the test accuracy."""
    if metric == "test_accuracy":
        return run.result.test_accuracy
    if metric == "generalization_gap":
        return run.result.generalization_gap
    last = run.result.epochs[-1] if run.result.epochs else None
    value = getattr(last, metric, None) if last is not None else None
    return float(value) if value is not None else None


def benchmark_claims(runs: Sequence[Run]) -> list[ClaimCheck]:
    """Each recorded claim (but the seed's) per dataset x group where its benchmark ran."""
    cells: dict[tuple[str, str, str], list[Run]] = defaultdict(list)
    claims: dict[str, dict[str, dict[str, Any]]] = {}
    for run in runs:
        if run.result.ok and run.spec.mode == "train":
            cells[(run.spec.dataset, run.group, run.spec.benchmark)].append(run)
            if run.result.benchmark is not None:
                claims.setdefault(run.spec.benchmark, {}).update(run.result.benchmark.claims)
    checks = []
    for (dataset, group, bench), bench_runs in sorted(cells.items()):
        for kind, claim in sorted(claims.get(bench, {}).items()):
            if kind in SEED_KINDS:
                continue
            other = cells.get((dataset, group, str(claim.get("than")))) if claim.get("than") else None
            checks.append(_check(claim, dataset, group, bench_runs, other))
    return checks


def _check(claim: dict[str, Any], dataset: str, group: str, runs: list[Run], other: list[Run] | None) -> ClaimCheck:
    metric, op, than = str(claim["metric"]), str(claim["op"]), claim.get("than")
    mine = {r.spec.seed: metric_value(r, metric) for r in runs}
    stat = describe(mine.values())
    synthetic = any(is_synthetic(r.result) for r in runs)
    made_for = [str(d) for d in claim.get("datasets") or []]
    flag = f"claimed for {', '.join(made_for)}; " if made_for and dataset not in made_for else ""
    common = (str(claim["kind"]), dataset, group, synthetic, str(claim["text"]))
    if than is None:
        threshold = float(claim["value"])
        holds = None if stat.mean is None else OPS[op](stat.mean, threshold)
        n_hold = sum(1 for v in mine.values() if v is not None and OPS[op](v, threshold))
        note = f"{flag}{n_hold}/{stat.n} seeds hold"
        return ClaimCheck(*common, f"{metric} {op} {threshold:g}", fmt_mean_sd(stat), holds, note, stat.n)
    claimed = f"{metric} {op} {metric}({than})"
    theirs = {r.spec.seed: metric_value(r, metric) for r in other or []}
    their_stat = describe(theirs.values())
    measured = f"{fmt_mean_sd(stat)} vs {than} {fmt_mean_sd(their_stat)}"
    if stat.mean is None or their_stat.mean is None:
        return ClaimCheck(*common, claimed, measured, None, f"{flag}needs runs of {than} on this path")
    paired = [a - b for s, a in mine.items() if a is not None and (b := theirs.get(s)) is not None]
    diff = describe(paired)
    holds = OPS[op](stat.mean, their_stat.mean)
    if diff.ci_low is None or diff.ci_high is None or diff.mean is None:
        note = f"{flag}Δ = {stat.mean - their_stat.mean:+.3f}; one seed cannot separate them"
        return ClaimCheck(*common, claimed, measured, holds, note, diff.n, None)
    significant = diff.ci_high < 0 or diff.ci_low > 0
    note = (
        f"{flag}paired Δ = {diff.mean:+.3f}, 95 % CI [{diff.ci_low:+.3f}, {diff.ci_high:+.3f}] over {diff.n} seeds: "
        + ("outside seed noise" if significant else "within seed noise")
    )
    return ClaimCheck(*common, claimed, measured, holds, note, diff.n, significant)
