"""Decisions on per-seed values: equivalence (TOST), non-inferiority, and the seeds a decision needs.

Every function returns a frozen dataclass whose ``decision`` is data (``equivalent`` /
``different`` / ``inconclusive``; ``noninferior`` / ``inferior`` / ``inconclusive``), so that no
caller ever decides by reading prose. scipy.stats does the inference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from harness.analysis.stats import ALPHA, finite
from harness.store.jsonio import finite_or_none

MAX_SEEDS_ESTIMATE = 1000


@dataclass(frozen=True)
class DiffEstimate:
    """Difference ``a - b`` of two sets of per-seed values, with a 95 % CI and equivalence tests.

    ``tost_p`` is the p-value of the two one-sided tests (equivalence within ``±margin`` is shown
    when it is < alpha); ``beyond_p`` is the one-sided p-value that the difference lies *outside*
    the margin (in the direction of the observed mean). ``exact`` marks the zero-variance case,
    where the decision is made on the exact difference, not by a test.
    """

    n_a: int
    n_b: int
    paired: bool
    margin: float
    mean: float | None = None
    sd: float | None = None  # SD of the paired differences, or pooled SD of the two samples
    ci_low: float | None = None
    ci_high: float | None = None
    tost_p: float | None = None
    beyond_p: float | None = None
    exact: bool = False
    decision: str = "inconclusive"  # "equivalent" | "different" | "inconclusive"
    seeds_needed: int | None = None  # seeds per path for an equivalence decision with 80 % power
    sd_source: str = "none"  # "observed" | "assumed" | "none"

    def to_dict(self) -> dict[str, Any]:
        return {k: (finite_or_none(v) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def seeds_needed(
    sd: float, margin: float, true_diff: float = 0.0, *, paired: bool = True, alpha: float = ALPHA, power: float = 0.8
) -> int | None:
    """Seeds per path for TOST to show equivalence within ``±margin`` with the given power.

    Uses the usual t-approximation: the smallest n with
    ``(margin - |d|) / se(n) >= t(1-alpha, df) + t(1-beta', df)`` where beta' is beta/2 when the
    true difference is 0 (both one-sided tests must reject) and beta otherwise. ``se`` is
    ``sd/sqrt(n)`` for paired differences and ``sd*sqrt(2/n)`` for two independent samples.
    Returns None when equivalence is unreachable (``|true_diff| >= margin``).
    """
    if margin <= abs(true_diff):
        return None
    if sd <= 0:
        return 2
    beta = 1.0 - power
    tail = beta / 2 if true_diff == 0 else beta
    return _smallest_n(margin - abs(true_diff), sd, paired, 1 - alpha, 1 - tail)


def seeds_to_detect(
    sd: float, effect: float, *, paired: bool = True, alpha: float = ALPHA, power: float = 0.8
) -> int | None:
    """Seeds for a two-sided t test at ``alpha`` (a 95 % CI that excludes 0) to detect a true
    difference of ``effect`` with the given power.

    The same t-approximation as :func:`seeds_needed`: the smallest n with
    ``|effect| / se(n) >= t(1-alpha/2, df) + t(power, df)``. ``paired=True`` is also the
    one-sample case (a mean against a fixed threshold: ``se = sd/sqrt(n)``). Returns None when
    ``effect`` is 0 (no number of seeds detects nothing) or needs more than
    ``MAX_SEEDS_ESTIMATE`` seeds.
    """
    if effect == 0:
        return None
    if sd <= 0:
        return 2
    return _smallest_n(abs(effect), sd, paired, 1 - alpha / 2, power)


def _smallest_n(distance: float, sd: float, paired: bool, first: float, second: float) -> int | None:
    """The smallest n (>= 2) with ``distance / se(n) >= t(first, df) + t(second, df)``; None above the cap."""
    for n in range(2, MAX_SEEDS_ESTIMATE + 1):
        df = n - 1 if paired else 2 * n - 2
        se = sd / math.sqrt(n) if paired else sd * math.sqrt(2.0 / n)
        needed = float(stats.t.ppf(first, df) + stats.t.ppf(second, df))
        if distance / se >= needed:
            return n
    return None


def difference(
    a: Sequence[float],
    b: Sequence[float],
    *,
    margin: float,
    paired: bool,
    alpha: float = ALPHA,
    assumed_sd: float | None = None,
) -> DiffEstimate:
    """Estimate ``a - b`` and decide equivalence within ``±margin`` (TOST, scipy.stats).

    ``paired=True`` needs equal-length inputs aligned by seed (a paired t-test on the differences);
    otherwise Welch's unequal-variance tests are used. ``assumed_sd`` is used for the seed estimate
    when no SD can be observed (fewer than two values).

    Decision rule: "equivalent" when TOST rejects at alpha (the 90 % CI lies inside the margin);
    "different" when the difference lies significantly beyond the margin (one-sided test at alpha);
    "inconclusive" otherwise. Zero variance is decided exactly: constant differences inside the
    margin are equivalent (identical runs give all-zero differences), outside it different.
    """
    xa, xb = finite(a), finite(b)
    if paired and len(xa) != len(xb):
        raise ValueError(f"paired samples need equal lengths, got {len(xa)} and {len(xb)}")
    base: dict[str, Any] = dict(n_a=len(xa), n_b=len(xb), paired=paired, margin=float(margin))
    if len(xa) == 0 or len(xb) == 0:
        return DiffEstimate(**base)
    mean, sd, constant = _moments(xa, xb, paired)
    # All differences exactly zero (identical runs) decide equivalence on their own. A constant
    # *nonzero* difference on two seeds is more likely an artefact of quantised accuracy (1000 test
    # samples -> 0.1 pp steps) than a zero-variance offset: it needs three seeds to count as exact.
    if constant and (mean == 0.0 or min(len(xa), len(xb)) >= 3):
        same = abs(mean) < margin
        return DiffEstimate(**base, mean=mean, sd=0.0, ci_low=mean, ci_high=mean, tost_p=0.0 if same else 1.0,
                            beyond_p=1.0 if same else 0.0, exact=True, decision="equivalent" if same else "different",
                            seeds_needed=2 if same else None, sd_source="observed")  # fmt: skip
    needed, source = _seeds_needed_from(sd, assumed_sd, margin, paired, alpha)
    enough = len(xa) >= 2 if paired else (len(xa) >= 2 and len(xb) >= 2)
    if not enough or constant:
        return DiffEstimate(**base, mean=mean, sd=sd, seeds_needed=needed, sd_source=source)
    tost_p, beyond_p, ci = _t_tests(xa, xb, margin, paired, alpha, mean)
    if tost_p < alpha:
        decision = "equivalent"
    elif beyond_p < alpha:
        decision = "different"
    else:
        decision = "inconclusive"
    return DiffEstimate(**base, mean=mean, sd=sd, ci_low=finite_or_none(ci[0]), ci_high=finite_or_none(ci[1]),
                        tost_p=finite_or_none(tost_p), beyond_p=finite_or_none(beyond_p), decision=decision,
                        seeds_needed=needed, sd_source=source)  # fmt: skip


def _moments(xa: np.ndarray, xb: np.ndarray, paired: bool) -> tuple[float, float | None, bool]:
    """(mean difference, SD of the paired differences or pooled SD, whether the data are constant)."""
    if paired:
        d = xa - xb
        sd = float(d.std(ddof=1)) if len(d) > 1 else None
        return float(d.mean()), sd, bool(np.all(d == d[0]))
    constant = bool(np.all(xa == xa[0]) and np.all(xb == xb[0]))
    sd = float(math.sqrt((xa.var(ddof=1) + xb.var(ddof=1)) / 2.0)) if len(xa) > 1 and len(xb) > 1 else None
    return float(xa.mean() - xb.mean()), sd, constant


def _seeds_needed_from(
    sd: float | None, assumed_sd: float | None, margin: float, paired: bool, alpha: float
) -> tuple[int | None, str]:
    """Seeds per path an equivalence decision needs, from the observed SD, else the assumed one."""
    if sd is not None and sd > 0:
        return seeds_needed(sd, margin, 0.0, paired=paired, alpha=alpha), "observed"
    if assumed_sd is not None:
        return seeds_needed(assumed_sd, margin, 0.0, paired=paired, alpha=alpha), "assumed"
    return None, "none"


def _t_tests(
    xa: np.ndarray, xb: np.ndarray, margin: float, paired: bool, alpha: float, mean: float
) -> tuple[float, float, tuple[float, float]]:
    """(TOST p, one-sided p that the difference lies beyond the margin, 95 % CI of the difference)."""
    if paired:
        d = xa - xb
        p_low = stats.ttest_1samp(d, -margin, alternative="greater").pvalue
        p_high = stats.ttest_1samp(d, margin, alternative="less").pvalue
        beyond_low = stats.ttest_1samp(d, -margin, alternative="less").pvalue
        beyond_high = stats.ttest_1samp(d, margin, alternative="greater").pvalue
        ci = stats.ttest_1samp(d, 0.0).confidence_interval(1 - alpha)
    else:
        p_low = stats.ttest_ind(xa + margin, xb, equal_var=False, alternative="greater").pvalue
        p_high = stats.ttest_ind(xa - margin, xb, equal_var=False, alternative="less").pvalue
        beyond_low = stats.ttest_ind(xa + margin, xb, equal_var=False, alternative="less").pvalue
        beyond_high = stats.ttest_ind(xa - margin, xb, equal_var=False, alternative="greater").pvalue
        ci = stats.ttest_ind(xa, xb, equal_var=False).confidence_interval(1 - alpha)
    beyond = beyond_low if mean < 0 else beyond_high
    return float(max(p_low, p_high)), float(beyond), (float(ci.low), float(ci.high))


@dataclass(frozen=True)
class NonInferiority:
    """One-sided test that ``a`` is not worse than ``b`` by more than ``margin`` (higher is better)."""

    n_a: int
    n_b: int
    paired: bool
    mean: float | None  # a - b
    margin: float
    noninferior_p: float | None  # H0: a - b <= -margin
    inferior_p: float | None  # H0: a - b >= -margin (small p: significantly worse than the margin)
    exact: bool
    decision: str  # "noninferior" | "inferior" | "inconclusive"

    def to_dict(self) -> dict[str, Any]:
        return {k: (finite_or_none(v) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def noninferiority(
    a: Sequence[float], b: Sequence[float], *, margin: float, paired: bool, alpha: float = ALPHA
) -> NonInferiority:
    """Is ``a`` at most ``margin`` worse than ``b``? (paired t-test or Welch, one-sided)."""
    xa, xb = finite(a), finite(b)
    na, nb = len(xa), len(xb)
    base: dict[str, Any] = dict(n_a=na, n_b=nb, paired=paired, margin=float(margin))
    if na == 0 or nb == 0:
        return NonInferiority(
            **base, mean=None, noninferior_p=None, inferior_p=None, exact=False, decision="inconclusive"
        )
    if paired:
        if na != nb:
            raise ValueError(f"paired samples need equal lengths, got {na} and {nb}")
        d = xa - xb
        mean = float(d.mean())
        constant = bool(np.all(d == d[0]))
        enough = na >= 2
    else:
        mean = float(xa.mean() - xb.mean())
        constant = bool(np.all(xa == xa[0]) and np.all(xb == xb[0]))
        enough = na >= 2 and nb >= 2
    if constant and (mean == 0.0 or min(na, nb) >= 3):  # see difference() for the 3-seed rule
        decision = "noninferior" if mean > -margin else "inferior"
        return NonInferiority(
            **base,
            mean=mean,
            noninferior_p=0.0 if decision == "noninferior" else 1.0,
            inferior_p=0.0 if decision == "inferior" else 1.0,
            exact=True,
            decision=decision,
        )
    if not enough or constant:
        return NonInferiority(
            **base, mean=mean, noninferior_p=None, inferior_p=None, exact=False, decision="inconclusive"
        )
    if paired:
        p_ok = stats.ttest_1samp(xa - xb, -margin, alternative="greater").pvalue
        p_bad = stats.ttest_1samp(xa - xb, -margin, alternative="less").pvalue
    else:
        p_ok = stats.ttest_ind(xa + margin, xb, equal_var=False, alternative="greater").pvalue
        p_bad = stats.ttest_ind(xa + margin, xb, equal_var=False, alternative="less").pvalue
    decision = "noninferior" if p_ok < alpha else ("inferior" if p_bad < alpha else "inconclusive")
    return NonInferiority(
        **base,
        mean=mean,
        noninferior_p=finite_or_none(p_ok),
        inferior_p=finite_or_none(p_bad),
        exact=False,
        decision=decision,
    )
