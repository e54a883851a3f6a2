"""Confirm before failing: which regressions to re-run, and the verdict once the new runs are pooled in.

A speed or memory regression on a shared machine can be one unlucky stretch of time. Before a gate
fails, ``tfparity compare ... --baseline B --confirm N`` runs N more runs of each suspected group
with the current code (the CLI does that: :mod:`harness.cli.confirm`) and decides again on all
runs pooled. The check stays a FAIL only when the pooled decision is still REGRESSION; otherwise it
becomes a WARN "not confirmed" carrying both decisions. Suspected too, and re-run alike: an INCONCLUSIVE
check whose observed change is beyond the gate without being significant (:attr:`Shift.suspected`);
its pooled decision stands (FAIL "confirmed", PASS "cleared", else WARN "not confirmed"). Accuracy
regressions are not re-run: seeded runs are deterministic, so a repeat would add a copy of the same
number, not evidence.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from harness.analysis.checks import Comparison, Verdict


@dataclass(frozen=True)
class Suspect:
    """A group whose run-level regression check failed: what to re-run."""

    group: str
    source: str
    run_ids: list[str]  # the current runs of the group (their specs are re-run)
    subjects: list[str]  # the failed checks (one per gate)


def suspects(comparison: Comparison) -> list[Suspect]:
    """Groups with a suspected run-level (speed/memory) regression, in check order: a failed check, or an
    INCONCLUSIVE one whose observed change is beyond the gate without being significant (``suspected``)."""
    found: dict[str, Suspect] = {}
    for check in comparison.checks:
        d = check.details
        if check.name != "regression" or not _suspected(check):
            continue
        key = f"{d['group']}|{d['benchmark']}|{d['dataset']}"
        if key not in found:
            found[key] = Suspect(d["group"], d["source"], list(d["current_run_ids"]), [])
        found[key].subjects.append(check.subject)
    return list(found.values())


def pooled_verdict(before: Comparison, after: Comparison, confirm: dict[str, Any]) -> Comparison:
    """``after`` (decided on the original and the confirming runs pooled), each suspected check marked:
    still a regression -> FAIL "confirmed"; otherwise WARN "not confirmed" with both decisions."""
    first = {c.subject: c for c in before.checks if c.name == "regression" and _suspected(c)}
    checks = []
    for check in after.checks:
        suspected = first.get(check.subject)
        if suspected is None or check.name != "regression":
            checks.append(check)
            continue
        details = {
            **check.details,
            "confirm": {**confirm, "before": suspected.details, "confirmed": check.verdict is Verdict.FAIL},
        }
        runs = f"{confirm['runs_per_group']} more run(s) in {confirm['directory']}"
        if check.verdict is Verdict.FAIL:
            checks.append(dataclasses.replace(check, summary=f"confirmed by {runs}: {check.summary}", details=details))
        elif check.verdict is Verdict.PASS and suspected.verdict is not Verdict.FAIL:
            # An unproven suspicion (INCONCLUSIVE beyond the gate) the pooled runs clear: their PASS stands.
            summary = f"cleared by {runs}: pooled {check.summary}; first: {suspected.summary}"
            checks.append(dataclasses.replace(check, summary=summary, details=details))
        else:
            summary = f"not confirmed by {runs}: pooled {check.summary}; first: {suspected.summary}"
            checks.append(dataclasses.replace(check, verdict=Verdict.WARN, summary=summary, details=details))
    return dataclasses.replace(after, checks=checks)


def _suspected(check: Any) -> bool:
    # The run-level decision carries it (Shift.suspected: a REGRESSION, or beyond the gate unproven);
    # accuracy checks have no such flag and are never re-run.
    return check.details.get("suspected") is True
