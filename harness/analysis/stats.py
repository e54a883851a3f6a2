"""Descriptive statistics on raw samples: the one owner of medians, means, SDs and their intervals.

Conventions: every function takes plain sequences of floats (raw samples: per-seed accuracies in
percentage points, per-step times in ms, per-run peak memory in MB) and returns a float or a small
frozen dataclass of plain floats, so callers can put the numbers straight into JSON. Degenerate
inputs (too few samples, zero variance) are handled explicitly instead of letting scipy return NaN.
Decisions (equivalence, non-inferiority) are :mod:`harness.analysis.equivalence`'s.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from harness.store.jsonio import finite_or_none

log = logging.getLogger(__name__)

ALPHA = 0.05
Z_975 = 1.959963984540054  # two-sided 95 % normal quantile
# Resamples for bootstrap CIs: enough for a stable 95 % percentile interval.
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20261125  # fixed: the same inputs always give the same interval
# Cap on samples fed to the bootstrap per group (evenly strided): keeps time bounded (~0.5 s per
# ratio) for long runs; the CI is then slightly wider than with every sample, i.e. conservative.
# The U test always uses every sample.
BOOTSTRAP_MAX_SAMPLES = 5000


def finite(values: Iterable[float | None]) -> np.ndarray:
    """The finite values as a float64 array (None, NaN and inf dropped)."""
    return np.asarray([float(v) for v in values if v is not None and math.isfinite(float(v))], dtype=np.float64)


@dataclass(frozen=True)
class Stat:
    """Summary of a sample: mean, sample SD and a 95 % confidence interval of the mean."""

    n: int
    mean: float | None
    sd: float | None
    ci_low: float | None
    ci_high: float | None
    method: str = "t"  # "t" over runs; "steps" (one run, from step times); "wilson" (one run, test set)

    @property
    def ci_half(self) -> float | None:
        if self.ci_low is None or self.ci_high is None:
            return None
        return (self.ci_high - self.ci_low) / 2


def describe(values: Iterable[float | None]) -> Stat:
    """Mean, SD (ddof=1) and a Student-t 95 % CI of the mean over the finite values."""
    vals = finite(values)
    n = len(vals)
    if n == 0:
        return Stat(0, None, None, None, None)
    mean = float(math.fsum(vals) / n)
    if n == 1:
        return Stat(1, mean, None, None, None)
    sd = float(vals.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return Stat(n, mean, sd, mean - half, mean + half)


def wilson_interval(p: float, n: int, z: float = Z_975) -> tuple[float, float]:
    """Wilson score 95 % interval of an accuracy measured on ``n`` test samples."""
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def median(values: Iterable[float | None]) -> float | None:
    """Median of the finite values, None when there are none."""
    arr = finite(values)
    return float(np.median(arr)) if len(arr) else None


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the finite values, None when there are none."""
    arr = finite(values)
    return float(math.fsum(arr) / len(arr)) if len(arr) else None


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
        return {k: (finite_or_none(v) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _subsample(x: np.ndarray) -> np.ndarray:
    if len(x) <= BOOTSTRAP_MAX_SAMPLES:
        return x
    step = math.ceil(len(x) / BOOTSTRAP_MAX_SAMPLES)
    return x[::step]


def run_spread(run_medians: Sequence[float]) -> float:
    """Run-to-run noise as a fraction: max/min of per-run medians minus 1 (0 for a single run)."""
    arr = finite(run_medians)
    arr = arr[arr > 0]
    if len(arr) < 2:
        return 0.0
    return float(arr.max() / arr.min() - 1.0)


def median_ratio(
    a: Sequence[float], b: Sequence[float], *, noise_frac: float = 0.0, alpha: float = ALPHA, bootstrap: bool = True
) -> RatioEstimate:
    """``median(a)/median(b)`` with a percentile-bootstrap CI (fixed seed) and a two-sided U test."""
    xa, xb = finite(a), finite(b)
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
                ratio_: np.ndarray = np.median(x, axis=axis) / np.median(y, axis=axis)
                return ratio_

            res = stats.bootstrap(
                (_subsample(xa), _subsample(xb)),
                _stat,
                n_resamples=BOOTSTRAP_RESAMPLES,
                vectorized=True,
                paired=False,
                method="percentile",
                batch=100,
                confidence_level=1 - alpha,
                rng=np.random.default_rng(BOOTSTRAP_SEED),
            )
            lo, hi = finite_or_none(res.confidence_interval.low), finite_or_none(res.confidence_interval.high)
    changed = False
    if ratio is not None and p is not None and p < alpha and abs(ratio - 1.0) > noise_frac:
        changed = lo is None or hi is None or not (lo <= 1.0 <= hi)
        # Without a CI (single values) a U test alone cannot reach significance anyway.
    return RatioEstimate(na, nb, ma, mb, finite_or_none(ratio), lo, hi, finite_or_none(p), float(noise_frac), changed)


def mannwhitney_one_sided(a: Sequence[float], b: Sequence[float], alternative: str) -> float | None:
    """One-sided Mann-Whitney U p-value (``alternative`` 'less'/'greater' for a vs b); None if undefined."""
    xa, xb = finite(a), finite(b)
    if len(xa) == 0 or len(xb) == 0:
        return None
    if np.all(xa == xa[0]) and np.all(xb == xb[0]) and xa[0] == xb[0]:
        return 1.0
    return finite_or_none(stats.mannwhitneyu(xa, xb, alternative=alternative).pvalue)
