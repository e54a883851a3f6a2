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


def test_median_ratio_bootstrap_is_reproducible() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(10, 1, 500), rng.normal(12, 1, 500)
    r1, r2 = stats.median_ratio(a, b), stats.median_ratio(a, b)
    assert r1 == r2
    assert r1.ci_low < r1.ratio < r1.ci_high and r1.changed
