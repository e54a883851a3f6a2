"""Change points over history: ruptures PELT (L1) + segment confirmation finds real level shifts, not noise."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from harness.analysis import history
from harness.analysis.changepoints import METRICS, change_points, find_levels, scan
from tests.factories import CPU, XLA, result, write


def _series(n: int, step_at: int | None, step: float, sd: float, seed: int, level: float = 9000.0) -> list[float]:
    rng = np.random.default_rng(seed)
    x = math.log(level) + rng.normal(0.0, sd, n)
    if step_at is not None:
        x[step_at:] += step
    return [float(v) for v in np.exp(x)]


def test_a_15_percent_step_is_found_at_its_night() -> None:
    values = _series(20, 8, -math.log(1.15), 0.02, seed=1)
    (level,) = find_levels(values, log=True, min_effect=METRICS["throughput"].min_effect)
    assert level.index == 8 and level.p_value < 0.05
    assert level.after / level.before == pytest.approx(1 / 1.15, rel=0.03)


def test_noise_alone_rarely_makes_a_change_point() -> None:
    # stats.md §5.3: 0-7 % of pure-noise series get a (false) change point with this detector.
    hits = sum(bool(change_points(_series(20, None, 0.0, 0.1, seed=s), log=True, min_effect=math.log(1.05)))
               for s in range(100))  # fmt: skip
    assert hits <= 10


def test_minimum_effects_and_too_few_nights() -> None:
    small = _series(20, 10, math.log(1.03), 0.002, seed=2)  # 3 %: clear, but below throughput's 5 %
    assert change_points(small, log=True, min_effect=METRICS["throughput"].min_effect) == []
    assert change_points(small, log=True, min_effect=METRICS["peak_rss"].min_effect) == [10]  # memory: 1 %
    assert change_points(_series(6, 3, -0.5, 0.001, seed=3), log=True, min_effect=0.05) == []  # 6 nights: none
    # A deterministic series (MAD of its differences 0) with one shift of 1 pp: found.
    assert change_points([0.0] * 6 + [-1.0] * 6, log=False, min_effect=METRICS["accuracy_delta"].min_effect) == [6]


def test_scan_covers_throughput_memory_accuracy_deltas_and_probe_errors(tmp_path: Path) -> None:
    root = tmp_path / "h"
    rng = np.random.default_rng(4)
    for d in range(9):
        thr = 9000.0 * float(np.exp(rng.normal(0, 0.01)))
        train = [result("baseline", path=p, seed=s, throughput=thr + s, peak_rss_mb=1200.0 + (40.0 if d >= 4 else 0.0),
                        test_acc=(0.905 if p.xla and d >= 3 else 0.91) + 0.001 * s, step_sd_frac=0.0)
                 for p in (CPU, XLA) for s in (0, 1)]  # fmt: skip
        err = 1e-7 if d < 5 else 3e-5  # the bf16 probe's loss error jumps 300x
        probe = [result("baseline", path=CPU, mode="probe", extra={"probe": {"loss_rel_err": err}})]
        history.add_entry(root, [str(write(train + probe, tmp_path / f"n{d}" / "cpu"))], stamp=f"2026112{d}T021700Z")
    scans = {(s.metric, s.series): s for s in scan(history.load_history(root))}
    assert all(s.analysed and s.nights == 9 for s in scans.values())
    assert [cp.entry[:8] for cp in scans[("peak_rss", "cpu-fp32 · baseline")].change_points] == ["20261124"]
    assert scans[("peak_rss", "cpu-fp32 · baseline")].change_points[0].change == pytest.approx(100 * 40 / 1200)
    (acc,) = scans[("accuracy_delta", "cpu-fp32-xla · baseline − cpu-fp32")].change_points
    assert acc.entry.startswith("20261123") and acc.change == pytest.approx(-0.5) and acc.unit == "pp"
    (probe_cp,) = scans[("probe_error", "cpu-fp32 · baseline")].change_points
    assert probe_cp.entry.startswith("20261125") and probe_cp.after / probe_cp.before == pytest.approx(300)
    assert not scans[("throughput", "cpu-fp32 · baseline")].change_points  # 1 % noise only
