"""The claims benchmarks make about themselves, as data: each result records its definition's claims
(``result.benchmark.claims``, :class:`harness.spec.benchmarks.api.Claim`), measured here per dataset
and group like the seed's (:mod:`harness.analysis.claims`, which keeps the seed's three).

A claim is ``metric op value`` on the mean over seeds (a run's last-epoch value, or its test
accuracy), or ``metric op`` the same metric of another benchmark (``than``) on the same group and
dataset, paired by seed. Decided like the seed's claims (honesty over point estimates): HOLDS or
FAILS only when the 95 % CI over seeds (of the mean, or of the paired difference) lies on one side;
otherwise INCONCLUSIVE with the seeds a decision needs. A claim measured on a dataset it was not
made for says so in its note.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from harness.analysis.claims import (
    ASSUMED_ACCURACY_SD,
    ASSUMED_GAP_DIFF_SD,
    BASELINE_VAL,
    BN_GAP,
    BN_TRAIN,
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    UNMEASURABLE,
    ClaimCheck,
    fmt_mean_sd,
    not_established,
    seed_claims,
)
from harness.analysis.equivalence import seeds_to_detect
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
        return _against_threshold(common, metric, op, float(claim["value"]), mine, flag)
    claimed = f"{metric} {op} {metric}({than})"
    theirs = {r.spec.seed: metric_value(r, metric) for r in other or []}
    their_stat = describe(theirs.values())
    measured = f"{fmt_mean_sd(stat)} vs {than} {fmt_mean_sd(their_stat)}"
    if stat.mean is None or their_stat.mean is None:
        return ClaimCheck(*common, claimed, measured, UNMEASURABLE, f"{flag}needs runs of {than} on this path")
    paired = [a - b for s, a in mine.items() if a is not None and (b := theirs.get(s)) is not None]
    diff = describe(paired)
    if diff.mean is None:
        note = f"{flag}no seed ran both: the difference cannot be paired"
        return ClaimCheck(*common, claimed, measured, INCONCLUSIVE, note, 0)
    leaning = OPS[op](diff.mean, 0.0)
    # Decided like the seed's claims: only a paired 95 % CI that excludes 0 establishes a direction.
    if diff.ci_low is not None and diff.ci_high is not None and (diff.ci_high < 0 or diff.ci_low > 0):
        ci = f"95 % CI [{diff.ci_low:+.3f}, {diff.ci_high:+.3f}]"
        note = f"{flag}paired Δ = {diff.mean:+.3f}, {ci} over {diff.n} seeds: outside seed noise"
        return ClaimCheck(*common, claimed, measured, HOLDS if leaning else FAILS, note, diff.n, True, leaning)
    sd, source = (diff.sd, "observed") if diff.sd else (ASSUMED_GAP_DIFF_SD, "assumed")
    needed = seeds_to_detect(sd, diff.mean)
    why = "one seed cannot separate them" if diff.n == 1 else "within seed noise"
    note = f"{flag}paired Δ = {diff.mean:+.3f}; {why}; {not_established(diff.n, needed)}"
    significant = None if diff.n < 2 else False
    return ClaimCheck(*common, claimed, measured, INCONCLUSIVE, note, diff.n, significant, leaning, needed, source)


def _against_threshold(
    common: tuple[str, str, str, bool, str],
    metric: str,
    op: str,
    threshold: float,
    mine: dict[int, float | None],
    flag: str,
) -> ClaimCheck:
    """``metric op value`` over seeds: decided when the 95 % CI of the mean lies on one side."""
    vals = [v for v in mine.values() if v is not None]
    stat = describe(vals)
    claimed = f"{metric} {op} {threshold:g}"
    if stat.mean is None:
        return ClaimCheck(*common, claimed, "n/a", UNMEASURABLE, f"{flag}no runs measured {metric}")
    tally = f"{sum(1 for v in vals if OPS[op](v, threshold))}/{stat.n} seeds hold"
    leaning = OPS[op](stat.mean, threshold)
    if stat.ci_low is not None and stat.ci_high is not None:
        low, high = OPS[op](stat.ci_low, threshold), OPS[op](stat.ci_high, threshold)
        if low == high:
            note = f"{flag}{tally}; 95 % CI [{stat.ci_low:.3f}, {stat.ci_high:.3f}]"
            return ClaimCheck(*common, claimed, fmt_mean_sd(stat), HOLDS if low else FAILS, note, stat.n, True, leaning)
    sd, source = (stat.sd, "observed") if stat.sd else (ASSUMED_ACCURACY_SD, "assumed")
    needed = seeds_to_detect(sd, stat.mean - threshold)
    why = "one seed" if stat.n == 1 else f"95 % CI [{stat.ci_low:.3f}, {stat.ci_high:.3f}] straddles {threshold:g}"
    note = f"{flag}{tally}; {why}: {not_established(stat.n, needed)}"
    significant = None if stat.n < 2 else False
    return ClaimCheck(
        *common, claimed, fmt_mean_sd(stat), INCONCLUSIVE, note, stat.n, significant, leaning, needed, source
    )
