"""Statistics on raw samples: the one owner of medians, SDs, intervals, rank tests and run counts.

Conventions: every function takes plain sequences of floats (raw samples: per-seed accuracies in
percentage points, per-run values such as ln throughput) and returns a float, None or a small
frozen dataclass of plain floats, so callers can put the numbers straight into JSON. Degenerate
inputs (too few samples, zero variance) are handled explicitly instead of letting scipy return NaN.

Nothing here pools the steps of one run as if they were independent samples: speed and memory
verdicts take one value per run (:mod:`harness.analysis.per_run`) and decide with
:mod:`harness.analysis.shift`. Accuracy decisions (equivalence, non-inferiority) are
:mod:`harness.analysis.equivalence`'s.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from harness.store.jsonio import finite_or_none

log = logging.getLogger(__name__)

ALPHA = 0.05
Z_975 = 1.959963984540054  # two-sided 95 % normal quantile
MAD_TO_SD = 1.4826  # 1 / Phi^-1(3/4): the MAD of a normal sample estimates 0.6745 sd
# Exact null distribution of U (and scipy's exact p-value) up to this many pairs; normal approximation above.
EXACT_U_MAX_PAIRS = 2500
RUNS_NEEDED_MAX = 1000


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
    method: str = "t"  # "t" over runs or seeds; "wilson" (one run, over its test set)

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


# --- spread -----------------------------------------------------------------------------------


def robust_sd(values: Iterable[float | None]) -> float | None:
    """1.4826 x the median absolute deviation; the sample SD when the MAD is 0; None below 2 values.

    Robust to the outlier runs that multimodal run-to-run noise produces (one run in a 3x slower
    mode must not set the spread of the other nine).
    """
    x = finite(values)
    if len(x) < 2:
        return None
    mad = float(np.median(np.abs(x - np.median(x))))
    return MAD_TO_SD * mad if mad > 0 else float(x.std(ddof=1))


def pooled_robust_sd(groups: Sequence[Iterable[float]]) -> float | None:
    """The within-group spread of several samples: robust SD of every value's deviation from its
    own group's median, scaled by sqrt(N / (N - k)) for the k medians estimated (N values in the k
    groups of 2 or more); None when no group has 2 values."""
    parts = [finite(g) for g in groups]
    parts = [p for p in parts if len(p) >= 2]
    if not parts:
        return None
    residuals = np.concatenate([p - np.median(p) for p in parts])
    n, k = len(residuals), len(parts)
    sd = robust_sd(residuals)
    return None if sd is None or n <= k else sd * math.sqrt(n / (n - k))


# --- rank test and its interval -----------------------------------------------------------------


def mannwhitney_p(x: Iterable[float], y: Iterable[float], alternative: str) -> float | None:
    """Mann-Whitney U p-value of ``x`` vs ``y`` (``alternative``: 'less' = x tends lower, 'greater',
    'two-sided'); exact for up to EXACT_U_MAX_PAIRS pairs; None when a side is empty."""
    xa, xb = finite(x), finite(y)
    if len(xa) == 0 or len(xb) == 0:
        return None
    if np.all(xa == xa[0]) and np.all(xb == xb[0]) and xa[0] == xb[0]:
        return 1.0
    method = "exact" if len(xa) * len(xb) <= EXACT_U_MAX_PAIRS else "asymptotic"
    return finite_or_none(stats.mannwhitneyu(xa, xb, alternative=alternative, method=method).pvalue)


@functools.lru_cache(maxsize=256)
def u_null_cdf(m: int, n: int) -> np.ndarray:
    """P(U <= u) for u = 0..m*n under the null (no ties): the coefficients of the Gaussian binomial
    [m+n choose m]_q, built by multiplying (1 - q^(n+i)) / (1 - q^i) for i = 1..m."""
    counts = np.zeros(m * n + 1)
    counts[0] = 1.0
    for i in range(1, m + 1):
        shift = n + i
        times = counts.copy()
        times[shift:] -= counts[: len(counts) - shift]
        for j in range(i, len(times)):  # divide by (1 - q^i): a running sum with stride i
            times[j] += times[j - i]
        counts = times
    cdf: np.ndarray = np.cumsum(counts) / counts.sum()
    cdf.setflags(write=False)  # cached: shared by every caller
    return cdf


def shift_interval(x: Iterable[float], y: Iterable[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """Distribution-free CI of the shift x - y (Hodges-Lehmann): order statistics of the m*n pairwise
    differences at the U distribution's quantiles (exact for small samples). None when the samples
    are too small for any interval at this confidence (e.g. fewer than 4 runs per side at 95 %)."""
    xa, xb = finite(x), finite(y)
    m, n = len(xa), len(xb)
    if m == 0 or n == 0:
        return None
    tail = (1 - confidence) / 2
    if m * n <= EXACT_U_MAX_PAIRS:
        cdf = u_null_cdf(min(m, n), max(m, n))
        k = int(np.searchsorted(cdf, tail, side="right"))  # P(U <= k - 1) <= tail < P(U <= k)
    else:
        z = float(stats.norm.ppf(1 - tail))
        k = int(math.floor(m * n / 2 - z * math.sqrt(m * n * (m + n + 1) / 12)))
    if k < 1:
        return None
    diffs = np.sort((xa[:, None] - xb[None, :]).ravel())
    return float(diffs[k - 1]), float(diffs[m * n - k])


def hodges_lehmann(x: Iterable[float], y: Iterable[float]) -> float | None:
    """Median of the pairwise differences x_i - y_j: the shift estimate that goes with the U test."""
    xa, xb = finite(x), finite(y)
    if len(xa) == 0 or len(xb) == 0:
        return None
    return float(np.median((xa[:, None] - xb[None, :]).ravel()))


# --- t test with a floor on the SD, for near-normal per-run values (memory) ----------------------


def welch_p(x: Iterable[float], y: Iterable[float], alternative: str, sd_floor: float = 0.0) -> float | None:
    """Welch t test of mean(x) - mean(y), each side's SD raised to at least ``sd_floor``; None with an empty side.

    A side of one value has no SD of its own: it takes the floor (0 floor and one value: None).
    """
    xa, xb = finite(x), finite(y)
    if len(xa) == 0 or len(xb) == 0:
        return None
    sx = max(float(xa.std(ddof=1)) if len(xa) > 1 else 0.0, sd_floor)
    sy = max(float(xb.std(ddof=1)) if len(xb) > 1 else 0.0, sd_floor)
    vx, vy = sx * sx / len(xa), sy * sy / len(xb)
    diff = float(xa.mean() - xb.mean())
    if vx + vy == 0:
        if diff == 0:
            return 1.0
        lower = diff < 0
        return {"less": 0.0 if lower else 1.0, "greater": 1.0 if lower else 0.0}.get(alternative, 0.0)
    dfx, dfy = max(len(xa) - 1, 1), max(len(xb) - 1, 1)
    df = (vx + vy) ** 2 / (vx * vx / dfx + vy * vy / dfy)
    t = diff / math.sqrt(vx + vy)
    if alternative == "less":
        return float(stats.t.cdf(t, df))
    if alternative == "greater":
        return float(stats.t.sf(t, df))
    return float(2 * stats.t.sf(abs(t), df))


# --- how many runs a decision needs ---------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def t_quantile(q: float, df: int) -> float:
    """Student t quantile (cached: the run-count search asks for the same few many times)."""
    return float(stats.t.ppf(q, df))


def resolution(sigma: float, n: int, alpha: float = ALPHA) -> float:
    """The noise floor at n runs per side: t_(1-alpha, 2n-2) x sigma x sqrt(2/n), the smallest
    difference of per-run values that n runs per side resolve at level alpha (inf below 2 runs)."""
    if n < 2:
        return math.inf
    return t_quantile(1 - alpha, 2 * n - 2) * sigma * math.sqrt(2.0 / n)


def runs_needed(
    sigma: float,
    *,
    detect: float,
    threshold: float = 0.0,
    alpha: float = ALPHA,
    power: float = 0.9,
    n_max: int = RUNS_NEEDED_MAX,
) -> int | None:
    """Runs per side for the gate "difference beyond max(threshold, resolution) and significant at
    alpha" to flag a true difference ``detect`` with probability ``power`` (per-run SD ``sigma``).

    Power ~ Phi((detect - max(threshold, t_(1-alpha) se)) / se), se = sigma sqrt(2/n), t quantiles with
    2n - 2 df (stats.md §4.3, simulated there). The smallest n >= 2 reaching ``power``; None above n_max.
    """
    if sigma <= 0:
        return 2 if detect > threshold else None
    for n in range(2, n_max + 1):
        df = 2 * n - 2
        se = sigma * math.sqrt(2.0 / n)
        if detect - max(threshold, t_quantile(1 - alpha, df) * se) >= t_quantile(power, df) * se:
            return n
    return None
