"""Descriptive statistics on raw samples: t intervals, Wilson intervals, the median-ratio bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as ss

from harness.analysis import stats


def test_describe_matches_scipy_t_interval() -> None:
    values = [0.90, 0.92, 0.97, 0.91]
    st = stats.describe(values)
    low, high = ss.t.interval(0.95, 3, loc=sum(values) / 4, scale=ss.sem(values))
    assert st.n == 4 and st.mean == pytest.approx(0.925)
    assert st.sd == pytest.approx(ss.tstd(values))
    assert (st.ci_low, st.ci_high) == (pytest.approx(low), pytest.approx(high))
    assert stats.describe([]).mean is None
    single = stats.describe([0.5, None, float("nan")])
    assert (single.n, single.mean, single.sd, single.ci_low) == (1, 0.5, None, None)


def test_wilson_interval_is_the_known_score_interval() -> None:
    # 900 of 1000 correct, z = 1.96: centre 0.90192/1.00384 = 0.89847, half 0.01862 (worked by hand)
    low, high = stats.wilson_interval(0.9, 1000)
    assert (round(low, 4), round(high, 4)) == (0.8798, 0.9171)
    assert stats.wilson_interval(1.0, 1000)[1] == 1.0
    assert stats.wilson_interval(0.0, 50)[0] == pytest.approx(0.0, abs=1e-12)


# --- spread, rank test and run counts (stats.md §4; procedures.py is the prototype) ---------------


def test_robust_sd_resists_an_outlier_run_and_falls_back_to_the_sd() -> None:
    values = [0.0, 0.1, -0.1, 0.05, -0.05, 3.0]  # one run in a far slower mode
    mad = float(np.median(np.abs(np.array(values) - np.median(values))))
    assert stats.robust_sd(values) == pytest.approx(1.4826 * mad)
    assert stats.robust_sd(values) < 0.2 < float(np.std(values, ddof=1))
    assert stats.robust_sd([1.0, 1.0, 1.0, 2.0]) == pytest.approx(float(np.std([1, 1, 1, 2], ddof=1)))  # MAD 0
    assert stats.robust_sd([1.0]) is None


def test_pooled_robust_sd_centres_each_side_on_its_own_median() -> None:
    a, b = [1.0, 1.1, 0.9, 1.05], [5.0, 5.1, 4.9, 5.05]  # same spread, far apart
    residuals = np.array([0.0, 0.1, -0.1, 0.05] * 2) - 0.025
    expected = 1.4826 * float(np.median(np.abs(residuals - np.median(residuals)))) * np.sqrt(8 / 6)
    assert stats.pooled_robust_sd([a, b]) == pytest.approx(expected, rel=1e-6)
    assert stats.pooled_robust_sd([[1.0], [2.0]]) is None  # no side with two runs: no spread observed


def test_exact_u_distribution_matches_enumeration() -> None:
    import itertools

    m, n = 3, 5
    counts = np.zeros(m * n + 1)
    for chosen in itertools.combinations(range(m + n), m):
        counts[sum(1 for i in chosen for j in range(m + n) if j not in chosen and i > j)] += 1
    assert stats.u_null_cdf(m, n) == pytest.approx(np.cumsum(counts) / counts.sum())
    # Four runs per side, fully separated: the smallest one-sided p there is, 1/C(8,4).
    assert stats.mannwhitney_p([1, 2, 3, 4], [5, 6, 7, 8], "less") == pytest.approx(1 / 70)
    assert stats.mannwhitney_p([1, 2, 3], [5, 6, 7], "less") == pytest.approx(1 / 20)  # cannot reach 0.05 below 4


def test_shift_interval_excludes_zero_exactly_when_the_two_sided_test_rejects() -> None:
    rng = np.random.default_rng(7)
    agree = 0
    for _ in range(200):
        x, y = rng.normal(0.3, 1, 6), rng.normal(0, 1, 7)
        low, high = stats.shift_interval(x, y)
        p = stats.mannwhitney_p(x, y, "two-sided")
        agree += (not low <= 0 <= high) == (p < 0.05)
    # Exact quantiles: the interval is the test inverted (up to the discreteness at the boundary).
    assert agree >= 198
    assert stats.shift_interval([1.0, 2.0], [3.0, 4.0]) is None  # 2 vs 2 runs: no 95 % interval exists
    assert stats.hodges_lehmann([1.0, 2.0], [0.0]) == 1.5


def test_welch_matches_scipy_and_the_floor_widens_it() -> None:
    x, y = [6.60, 6.61, 6.62], [6.50, 6.52, 6.51]
    assert stats.welch_p(x, y, "greater") == pytest.approx(
        ss.ttest_ind(x, y, equal_var=False, alternative="greater").pvalue
    )
    assert stats.welch_p(x, y, "greater", sd_floor=0.2) > 0.2  # a 10 % gap inside a 20 % floor
    assert stats.welch_p([1.0], [1.0], "less") == 1.0


@pytest.mark.parametrize("sigma, needed", [
    (0.05, 4), (0.0625, 5), (0.07, 6), (0.10, 10), (0.125, 15), (0.15, 21), (0.176, 28), (0.195, 35),
    (0.25, 56), (0.40, 142), (0.69, 419),
])  # fmt: skip
def test_runs_needed_reproduces_the_design_table(sigma: float, needed: int) -> None:
    """stats.md §4.3: runs per side to detect a 15 % slowdown (90 % power) behind a 5 % gate."""
    assert stats.runs_needed(sigma, detect=np.log(1.15), threshold=-np.log(0.95)) == needed


def test_resolution_is_the_t_noise_floor_at_n() -> None:
    assert stats.resolution(0.1, 4) == pytest.approx(ss.t.ppf(0.95, 6) * 0.1 * np.sqrt(2 / 4))
    assert stats.resolution(0.1, 1) == float("inf")
    assert stats.runs_needed(0.0, detect=0.1, threshold=0.05) == 2
    assert stats.runs_needed(5.0, detect=0.1, threshold=0.05) is None  # beyond the cap: say so, never a number
