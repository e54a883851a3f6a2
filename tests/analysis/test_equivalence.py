"""Decisions on per-seed values: TOST equivalence against scipy, and the seeds a decision needs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as ss

from harness.analysis import equivalence


def test_difference_matches_scipy_and_handles_degenerate_cases() -> None:
    a = [91.0, 90.5, 92.0, 91.2]
    b = [91.1, 90.2, 92.3, 91.0]
    est = equivalence.difference(a, b, margin=1.0, paired=True)
    d = np.subtract(a, b)
    assert est.mean == pytest.approx(d.mean())
    assert est.sd == pytest.approx(d.std(ddof=1))
    half = est.ci_high - est.mean
    assert half == pytest.approx(ss.t.ppf(0.975, 3) * d.std(ddof=1) / math.sqrt(4))
    zero = equivalence.difference([90.0, 91.0], [90.0, 91.0], margin=1.0, paired=True)
    assert zero.decision == "equivalent" and zero.exact
    empty = equivalence.difference([], [90.0], margin=1.0, paired=False)
    assert empty.decision == "inconclusive" and empty.mean is None


def test_seeds_needed_grows_with_spread_and_shrinks_with_margin() -> None:
    needed = equivalence.seeds_needed
    assert needed(0.5, 1.0) < needed(1.5, 1.0) < needed(3.0, 1.0)
    assert needed(1.5, 2.0) < needed(1.5, 1.0)
    assert needed(1.0, 1.0, true_diff=1.2) is None
    # Seed-to-seed spread of 1.5 pp on unpaired seeds needs many seeds for a 1 pp margin.
    assert needed(1.5, 1.0, paired=False) > 20


def test_seeds_to_detect_matches_the_textbook_power_table_and_a_simulation() -> None:
    detect = equivalence.seeds_to_detect
    # One-sample / paired two-sided t test at alpha 0.05, power 0.8 (G*Power): d = 1 needs 10, d = 0.5 needs 34.
    assert detect(1.0, 1.0) == 10 and detect(1.0, -0.5) == 34 and detect(2.0, 1.0) == 34
    assert detect(1.0, 0.0) is None and detect(0.0, 0.3) == 2
    assert detect(1.0, 0.5, paired=False) > detect(1.0, 0.5)  # two independent samples need more
    # The power it promises is the t test's exact power at that n (noncentral t): the smallest n that reaches 80 %.
    for d in (0.3, 0.7, 1.5):
        n = detect(1.0, d)
        assert n is not None
        assert exact_power(d, n) >= 0.8 > exact_power(d, n - 1), (d, n)


def exact_power(d: float, n: int) -> float:
    """Power of the two-sided one-sample t test at alpha 0.05 for standardised effect d, n samples."""
    if n < 2:
        return 0.0
    crit = ss.t.ppf(0.975, n - 1)
    nc = d * math.sqrt(n)
    return float(ss.nct.sf(crit, n - 1, nc) + ss.nct.cdf(-crit, n - 1, nc))


@settings(max_examples=200, deadline=None)
@given(diffs=st.lists(st.floats(-3, 3, allow_nan=False), min_size=2, max_size=12), margin=st.floats(0.1, 3.0))
def test_tost_decision_matches_90_percent_ci_inside_margin(diffs: list[float], margin: float) -> None:
    """TOST at alpha = 0.05 rejects exactly when the 90 % CI of the mean difference lies inside
    ±margin (the textbook duality); checked on the paired path against scipy's t quantile."""
    d = np.asarray(diffs)
    assume(np.std(d) > 1e-6 * max(1.0, np.abs(d).max()))  # zero variance is decided exactly instead
    est = equivalence.difference(list(d), [0.0] * len(d), margin=margin, paired=True)
    half = ss.t.ppf(0.95, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    lo, hi = d.mean() - half, d.mean() + half
    assume(abs(abs(lo) - margin) > 1e-9 and abs(abs(hi) - margin) > 1e-9)  # not on the boundary
    assert (est.decision == "equivalent") == (lo > -margin and hi < margin)
    # "different": the one-sided 95 % bound lies beyond the margin, i.e. the 90 % CI is outside it.
    assert (est.decision == "different") == (hi < -margin or lo > margin)
