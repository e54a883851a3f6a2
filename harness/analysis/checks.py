"""The verdict types: one :class:`Check` per question asked of the results, and the :class:`Comparison`.

A check ends in PASS / WARN / FAIL with the numbers behind it in ``details`` (JSON-safe data that
renderers and callers read; nothing ever decides by matching the ``summary`` text).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.store.jsonio import json_safe


class Verdict(str, enum.Enum):
    """How bad a check's outcome is; ordered PASS < WARN < FAIL."""

    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"

    def __str__(self) -> str:
        return self.value

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Verdict.PASS: 0, Verdict.WARN: 1, Verdict.FAIL: 2}
VERDICTS = tuple(v.value for v in Verdict)


def worst(verdicts: Sequence[Verdict | str]) -> Verdict:
    """The worst verdict (PASS < WARN < FAIL); PASS for an empty sequence."""
    return max((Verdict(v) for v in verdicts), key=lambda v: v.rank, default=Verdict.PASS)


@dataclass(frozen=True)
class Check:
    """One verdict with the numbers behind it."""

    name: str  # the kind of check: "accuracy-equivalence", "curves", "numerics", "speed", ...
    verdict: Verdict
    subject: str  # what was compared, e.g. "batchnorm/mnist-5k: cpu-mixed_bfloat16 vs cpu-fp32"
    summary: str  # one line with the numbers behind the verdict, for people
    details: dict[str, Any] = field(default_factory=dict)  # the same numbers, for code

    def __post_init__(self) -> None:
        if not isinstance(self.verdict, Verdict):
            try:
                object.__setattr__(self, "verdict", Verdict(self.verdict))
            except ValueError:
                raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict.value,
            "subject": self.subject,
            "summary": self.summary,
            "details": json_safe(self.details),
        }


@dataclass(frozen=True)
class GroupInfo:
    """What a compared group holds."""

    source: str
    path: str
    execution: str
    runs: int
    ok: int


@dataclass(frozen=True)
class Comparison:
    """Everything ``compare`` decided: the reference, the compared groups and every check."""

    reference: str
    groups: list[str]  # the labels of the compared groups
    checks: list[Check]
    margin_pp: float
    group_info: dict[str, GroupInfo] = field(default_factory=dict)

    @property
    def verdict(self) -> Verdict:
        return worst([c.verdict for c in self.checks])

    def counts(self) -> dict[str, int]:
        return {v.value: sum(c.verdict is v for c in self.checks) for v in Verdict}

    def checks_named(self, name: str) -> list[Check]:
        return [c for c in self.checks if c.name == name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "groups": list(self.groups),
            "verdict": self.verdict.value,
            "margin_pp": self.margin_pp,
            "counts": self.counts(),
            "group_info": json_safe({k: vars(v) for k, v in self.group_info.items()}),
            "checks": [c.to_dict() for c in self.checks],
        }


# --- number formatting for check summaries ------------------------------------------------------


def fmt(value: float | None, spec: str = ".2f", signed: bool = False) -> str:
    """A number for a summary line; ``n/a`` for None, NaN and inf."""
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return "n/a"
    return format(value, ("+" if signed else "") + spec)


def fmt_p(p: float | None) -> str:
    """``p<0.001`` / ``p=0.012`` / ``p n/a``."""
    if p is None:
        return "p n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"
