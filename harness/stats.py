"""Statistics on raw samples for compare and regress (TF-free; scipy.stats does the inference).

Conventions: every function takes plain sequences of floats (raw samples: per-seed accuracies in
percentage points, per-step times in ms, per-run peak memory in MB) and returns a small frozen
dataclass of plain floats, so callers can put the numbers straight into JSON. Degenerate inputs
(too few samples, zero variance) are handled explicitly instead of letting scipy return NaN.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

log = logging.getLogger(__name__)

ALPHA = 0.05
# Resamples for bootstrap CIs: enough for a stable 95 % percentile interval.
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20261125  # fixed: the same inputs always give the same interval
# Cap on samples fed to the bootstrap per group (evenly strided): keeps time bounded (~0.5 s per
# ratio) for long runs; the CI is then slightly wider than with every sample, i.e. conservative.
# The U test always uses every sample.
BOOTSTRAP_MAX_SAMPLES = 5000
MAX_SEEDS_ESTIMATE = 1000


def _finite(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray([float(v) for v in values], dtype=np.float64)
    return arr[np.isfinite(arr)]


def _clean(value: float | None) -> float | None:
    """NaN/inf to None so the value is JSON-safe and honest."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


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
    mean: float | None
    sd: float | None  # SD of the paired differences, or pooled SD of the two samples
    ci_low: float | None
    ci_high: float | None
    margin: float
    tost_p: float | None
    beyond_p: float | None
    exact: bool
    decision: str  # "equivalent" | "different" | "inconclusive"
    seeds_needed: int | None  # seeds per path for an equivalence decision with 80 % power
    sd_source: str  # "observed" | "assumed" | "none"

    def to_dict(self) -> dict[str, Any]:
        return {k: (_clean(v) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def seeds_needed(sd: float, margin: float, true_diff: float = 0.0, *, paired: bool = True,
                 alpha: float = ALPHA, power: float = 0.8) -> int | None:
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
    for n in range(2, MAX_SEEDS_ESTIMATE + 1):
        df = n - 1 if paired else 2 * n - 2
        se = sd / math.sqrt(n) if paired else sd * math.sqrt(2.0 / n)
        needed = float(stats.t.ppf(1 - alpha, df) + stats.t.ppf(1 - tail, df))
        if (margin - abs(true_diff)) / se >= needed:
            return n
    return None


def difference(a: Sequence[float], b: Sequence[float], *, margin: float, paired: bool,
               alpha: float = ALPHA, assumed_sd: float | None = None) -> DiffEstimate:
    """Estimate ``a - b`` and decide equivalence within ``±margin`` (TOST, scipy.stats).

    ``paired=True`` needs equal-length inputs aligned by seed (a paired t-test on the differences);
    otherwise Welch's unequal-variance tests are used. ``assumed_sd`` is used for the seed estimate
    when no SD can be observed (fewer than two values).

    Decision rule: "equivalent" when TOST rejects at alpha (the 90 % CI lies inside the margin);
    "different" when the difference lies significantly beyond the margin (one-sided test at alpha);
    "inconclusive" otherwise. Zero variance is decided exactly: constant differences inside the
    margin are equivalent (identical runs give all-zero differences), outside it different.
    """
    xa, xb = _finite(a), _finite(b)
    if paired and len(xa) != len(xb):
        raise ValueError(f"paired samples need equal lengths, got {len(xa)} and {len(xb)}")
    na, nb = len(xa), len(xb)
    base = dict(n_a=na, n_b=nb, paired=paired, margin=float(margin))
    if na == 0 or nb == 0:
        return DiffEstimate(**base, mean=None, sd=None, ci_low=None, ci_high=None, tost_p=None,
                            beyond_p=None, exact=False, decision="inconclusive", seeds_needed=None,
                            sd_source="none")

    if paired:
        d = xa - xb
        mean = float(d.mean())
        constant = bool(np.all(d == d[0]))
        sd = float(d.std(ddof=1)) if len(d) > 1 else None
    else:
        mean = float(xa.mean() - xb.mean())
        constant = bool(np.all(xa == xa[0]) and np.all(xb == xb[0]))
        sd = None
        if na > 1 and nb > 1:
            sd = float(math.sqrt((xa.var(ddof=1) + xb.var(ddof=1)) / 2.0))

    def _needed(sd_value: float | None) -> tuple[int | None, str]:
        if sd_value is not None and sd_value > 0:
            return seeds_needed(sd_value, margin, 0.0, paired=paired, alpha=alpha), "observed"
        if assumed_sd is not None:
            return seeds_needed(assumed_sd, margin, 0.0, paired=paired, alpha=alpha), "assumed"
        return None, "none"

    # Zero variance: a t-test is undefined (scipy returns NaN); decide on the exact difference.
    # Identical runs (local vs docker, same seeds) land here with mean == 0.
    enough = na >= 2 if paired else (na >= 2 and nb >= 2)
    # All differences exactly zero (identical runs) decide equivalence on their own. A constant
    # *nonzero* difference on two seeds is more likely an artefact of quantised accuracy (1000 test
    # samples -> 0.1 pp steps) than a zero-variance offset: it needs three seeds to count as exact.
    if constant and (mean == 0.0 or (min(na, nb) >= 3)):
        decision = "equivalent" if abs(mean) < margin else "different"
        return DiffEstimate(**base, mean=mean, sd=0.0, ci_low=mean, ci_high=mean,
                            tost_p=0.0 if decision == "equivalent" else 1.0,
                            beyond_p=0.0 if decision == "different" else 1.0, exact=True,
                            decision=decision, seeds_needed=2 if decision == "equivalent" else None,
                            sd_source="observed")

    if not enough or constant:
        needed, source = _needed(sd)
        return DiffEstimate(**base, mean=mean, sd=sd, ci_low=None, ci_high=None, tost_p=None,
                            beyond_p=None, exact=False, decision="inconclusive", seeds_needed=needed,
                            sd_source=source)

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
    tost_p = float(max(p_low, p_high))
    beyond_p = float(beyond_low if mean < 0 else beyond_high)
    if tost_p < alpha:
        decision = "equivalent"
    elif beyond_p < alpha:
        decision = "different"
    else:
        decision = "inconclusive"
    needed, source = _needed(sd)
    return DiffEstimate(**base, mean=mean, sd=sd, ci_low=_clean(ci.low), ci_high=_clean(ci.high),
                        tost_p=_clean(tost_p), beyond_p=_clean(beyond_p), exact=False, decision=decision,
                        seeds_needed=needed, sd_source=source)


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
        return {k: (_clean(v) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def noninferiority(a: Sequence[float], b: Sequence[float], *, margin: float, paired: bool,
                   alpha: float = ALPHA) -> NonInferiority:
    """Is ``a`` at most ``margin`` worse than ``b``? (paired t-test or Welch, one-sided)."""
    xa, xb = _finite(a), _finite(b)
    na, nb = len(xa), len(xb)
    base = dict(n_a=na, n_b=nb, paired=paired, margin=float(margin))
    if na == 0 or nb == 0:
        return NonInferiority(**base, mean=None, noninferior_p=None, inferior_p=None, exact=False,
                              decision="inconclusive")
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
        return NonInferiority(**base, mean=mean, noninferior_p=0.0 if decision == "noninferior" else 1.0,
                              inferior_p=0.0 if decision == "inferior" else 1.0, exact=True, decision=decision)
    if not enough or constant:
        return NonInferiority(**base, mean=mean, noninferior_p=None, inferior_p=None, exact=False,
                              decision="inconclusive")
    if paired:
        p_ok = stats.ttest_1samp(xa - xb, -margin, alternative="greater").pvalue
        p_bad = stats.ttest_1samp(xa - xb, -margin, alternative="less").pvalue
    else:
        p_ok = stats.ttest_ind(xa + margin, xb, equal_var=False, alternative="greater").pvalue
        p_bad = stats.ttest_ind(xa + margin, xb, equal_var=False, alternative="less").pvalue
    decision = "noninferior" if p_ok < alpha else ("inferior" if p_bad < alpha else "inconclusive")
    return NonInferiority(**base, mean=mean, noninferior_p=_clean(p_ok), inferior_p=_clean(p_bad),
                          exact=False, decision=decision)


@dataclass(frozen=True)
class RatioEstimate:
    """Ratio of medians ``median(a) / median(b)`` with a bootstrap CI and a Mann-Whitney U test.

    ``changed`` is True only when the difference is outside noise: the U test rejects at alpha,
    the CI excludes 1, and the ratio departs from 1 by more than ``noise_frac`` (the run-to-run
    spread of per-run medians, when there are repeated runs to measure it).
    """

    n_a: int
    n_b: int
    median_a: float | None
    median_b: float | None
    ratio: float | None
    ci_low: float | None
    ci_high: float | None
    mannwhitney_p: float | None
    noise_frac: float
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        return {k: (_clean(v) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _subsample(x: np.ndarray) -> np.ndarray:
    if len(x) <= BOOTSTRAP_MAX_SAMPLES:
        return x
    step = math.ceil(len(x) / BOOTSTRAP_MAX_SAMPLES)
    return x[::step]


def median(values: Sequence[float]) -> float | None:
    """Median of the finite values, None when there are none."""
    arr = _finite(values)
    return float(np.median(arr)) if len(arr) else None


def run_spread(run_medians: Sequence[float]) -> float:
    """Run-to-run noise as a fraction: max/min of per-run medians minus 1 (0 for a single run)."""
    arr = _finite(run_medians)
    arr = arr[arr > 0]
    if len(arr) < 2:
        return 0.0
    return float(arr.max() / arr.min() - 1.0)


def median_ratio(a: Sequence[float], b: Sequence[float], *, noise_frac: float = 0.0,
                 alpha: float = ALPHA, bootstrap: bool = True) -> RatioEstimate:
    """``median(a)/median(b)`` with a percentile-bootstrap CI (fixed seed) and a two-sided U test."""
    xa, xb = _finite(a), _finite(b)
    na, nb = len(xa), len(xb)
    if na == 0 or nb == 0:
        return RatioEstimate(na, nb, None, None, None, None, None, None, float(noise_frac), False)
    ma, mb = float(np.median(xa)), float(np.median(xb))
    ratio = ma / mb if mb != 0 else None
    p = None
    if na >= 1 and nb >= 1 and not (np.all(xa == xa[0]) and np.all(xb == xb[0]) and xa[0] == xb[0]):
        p = float(stats.mannwhitneyu(xa, xb, alternative="two-sided").pvalue)
    lo = hi = None
    if bootstrap and ratio is not None and na >= 2 and nb >= 2:
        if np.all(xa == xa[0]) and np.all(xb == xb[0]):
            lo = hi = ratio
        else:
            def _stat(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
                return np.median(x, axis=axis) / np.median(y, axis=axis)

            res = stats.bootstrap((_subsample(xa), _subsample(xb)), _stat, n_resamples=BOOTSTRAP_RESAMPLES,
                                  vectorized=True, paired=False, method="percentile", batch=100,
                                  confidence_level=1 - alpha, rng=np.random.default_rng(BOOTSTRAP_SEED))
            lo, hi = _clean(res.confidence_interval.low), _clean(res.confidence_interval.high)
    changed = False
    if ratio is not None and p is not None and p < alpha and abs(ratio - 1.0) > noise_frac:
        changed = lo is None or hi is None or not (lo <= 1.0 <= hi)
        # Without a CI (single values) a U test alone cannot reach significance anyway.
    return RatioEstimate(na, nb, ma, mb, _clean(ratio), lo, hi, _clean(p), float(noise_frac), changed)


def mannwhitney_one_sided(a: Sequence[float], b: Sequence[float], alternative: str) -> float | None:
    """One-sided Mann-Whitney U p-value (``alternative`` 'less'/'greater' for a vs b); None if undefined."""
    xa, xb = _finite(a), _finite(b)
    if len(xa) == 0 or len(xb) == 0:
        return None
    if np.all(xa == xa[0]) and np.all(xb == xb[0]) and xa[0] == xb[0]:
        return 1.0
    return _clean(stats.mannwhitneyu(xa, xb, alternative=alternative).pvalue)
