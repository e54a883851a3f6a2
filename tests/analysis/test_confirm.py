"""Confirm before failing: which checks are suspects, and the verdict on the pooled runs."""

from __future__ import annotations

from harness.analysis.compare import compare_results
from harness.analysis.confirm import pooled_verdict, suspects
from harness.analysis.gates import parse_gate
from harness.store.results import RunResult
from tests.factories import CPU, result

GATES = [parse_gate("throughput:-5%"), parse_gate("test_accuracy:-1pp")]


def _runs(step_ms: float, n: int, first_repeat: int = 0, offset: int = 0) -> list[RunResult]:
    return [result("baseline", path=CPU, seed=0, repeat=first_repeat + r, step_ms=step_ms * (1 + 0.01 * r),
                   step_sd_frac=0.01, rng_seed=offset + r) for r in range(n)]  # fmt: skip


def test_failed_run_level_regressions_are_suspects_accuracy_ones_are_not() -> None:
    baseline = _runs(2.5, 4)
    slow = _runs(3.5, 4, offset=100)
    comp = compare_results(slow, baseline=baseline, gates=GATES)
    (suspect,) = suspects(comp)
    assert suspect.group == "cpu-fp32" and suspect.source == "local"
    assert suspect.run_ids == [r.run_id for r in slow]
    assert suspect.subjects == ["baseline/mnist-5k: cpu-fp32 vs baseline (throughput:-5%)"]
    # An accuracy regression is not re-run (seeded runs repeat the same number): no suspect.
    worse = [result("baseline", path=CPU, seed=s, test_acc=0.80) for s in range(4)]
    better = [result("baseline", path=CPU, seed=s, test_acc=0.92) for s in range(4)]
    acc = compare_results(worse, baseline=better, gates=[parse_gate("test_accuracy:-1pp")])
    assert acc.verdict == "FAIL" and suspects(acc) == []


def test_a_regression_the_new_runs_do_not_repeat_is_a_warning_not_a_failure() -> None:
    baseline = _runs(2.5, 4)
    unlucky = _runs(3.5, 4, offset=100)  # the first four runs were slow
    before = compare_results(unlucky, baseline=baseline, gates=GATES)
    confirm = {"directory": "/r/cpu-confirm-x", "runs_per_group": 6, "groups": ["cpu-fp32"], "run_ids": [], "failed": 0}
    after = compare_results(unlucky + _runs(2.5, 6, first_repeat=4, offset=200), baseline=baseline, gates=GATES)
    final = pooled_verdict(before, after, confirm)
    (check,) = [c for c in final.checks if c.details.get("metric") == "throughput"]
    assert check.verdict == "WARN" and check.summary.startswith("not confirmed by 6 more run(s) in /r/cpu-confirm-x")
    assert check.details["confirm"]["confirmed"] is False
    assert check.details["confirm"]["before"]["decision"] == "regression"
    assert check.details["n_current"] == 10 and final.verdict == "WARN"


def test_a_regression_that_persists_stays_a_failure() -> None:
    baseline = _runs(2.5, 4)
    slow = _runs(3.5, 4, offset=100)
    before = compare_results(slow, baseline=baseline, gates=GATES)
    after = compare_results(slow + _runs(3.5, 2, first_repeat=4, offset=300), baseline=baseline, gates=GATES)
    confirm = {"directory": "d", "runs_per_group": 2, "groups": ["cpu-fp32"], "run_ids": [], "failed": 0}
    final = pooled_verdict(before, after, confirm)
    (check,) = [c for c in final.checks if c.details.get("metric") == "throughput"]
    assert check.verdict == "FAIL" and check.summary.startswith("confirmed by 2 more run(s) in d: REGRESSION")
    assert check.details["confirm"]["confirmed"] is True and final.verdict == "FAIL"


def _at(throughputs: list[float], first_repeat: int = 0, offset: int = 0) -> list[RunResult]:
    """Runs at these per-run throughputs (samples/s at batch 32)."""
    return [result("baseline", path=CPU, seed=0, repeat=first_repeat + i, step_ms=32_000 / t, step_sd_frac=0.01,
                   rng_seed=offset + i) for i, t in enumerate(throughputs)]  # fmt: skip


# Measured on a quiet machine (tests/analysis/test_shift.py: campaign ab-00 of the gate calibration).
UNSLOWED = [33995.5, 32797.0, 33273.5, 26486.8, 34414.2]
SLOWED = [28615.5, 26872.7, 27824.9, 27561.3, 27099.1]


def test_an_unproven_slowdown_beyond_the_gate_is_a_suspect_and_the_pooled_runs_decide_it() -> None:
    baseline = _at(UNSLOWED)
    before = compare_results(_at(SLOWED, offset=100), baseline=baseline, gates=GATES)
    (check,) = [c for c in before.checks if c.details.get("metric") == "throughput"]
    assert check.verdict == "WARN" and check.details["decision"] == "inconclusive" and check.details["suspected"]
    assert "but not significant; 4 more runs of current and 4 more runs of baseline needed" in check.summary
    (suspect,) = suspects(before)  # re-run like a failed check
    assert suspect.run_ids == [r.run_id for r in _at(SLOWED, offset=100)]
    confirm = {"directory": "d", "runs_per_group": 5, "groups": ["cpu-fp32"], "run_ids": [], "failed": 0}
    # Still slow in five more runs: the pooled decision is a confirmed regression.
    slow_again = compare_results(_at(SLOWED, offset=100) + _at(SLOWED, 5, offset=200), baseline=baseline, gates=GATES)
    final = pooled_verdict(before, slow_again, confirm)
    (pooled,) = [c for c in final.checks if c.details.get("metric") == "throughput"]
    assert pooled.verdict == "FAIL" and pooled.summary.startswith("confirmed by 5 more run(s) in d: REGRESSION")
    # Five more runs as fast as the baseline: a mixture the pooled runs cannot decide (not confirmed).
    fast = [33500.0, 33900.0, 34100.0, 33700.0, 34300.0]
    mixed = compare_results(_at(SLOWED, offset=100) + _at(fast, 5, offset=300), baseline=baseline, gates=GATES)
    (pooled,) = [c for c in pooled_verdict(before, mixed, confirm).checks if c.details.get("metric") == "throughput"]
    assert pooled.verdict == "WARN" and pooled.summary.startswith("not confirmed by 5 more run(s) in d: pooled INCONC")


def test_a_suspicion_the_pooled_runs_clear_is_a_pass() -> None:
    """-8 % observed against one slow baseline run (p 0.27): suspected; seven more runs at the baseline's
    speed decide it, a powered PASS that stands (the check never failed)."""
    baseline = _at([33000.0, 33200.0, 32800.0, 33100.0, 29000.0])
    current = _at([30400.0, 30200.0, 30600.0, 30300.0, 33300.0], offset=100)
    before = compare_results(current, baseline=baseline, gates=GATES)
    assert [s.run_ids for s in suspects(before)] == [[r.run_id for r in current]]
    again = _at([33000.0, 33150.0, 32900.0, 33050.0, 32950.0, 33100.0, 33020.0], 5, offset=300)
    confirm = {"directory": "d", "runs_per_group": 7, "groups": ["cpu-fp32"], "run_ids": [], "failed": 0}
    final = pooled_verdict(before, compare_results(current + again, baseline=baseline, gates=GATES), confirm)
    (pooled,) = [c for c in final.checks if c.details.get("metric") == "throughput"]
    assert pooled.verdict == "PASS" and pooled.summary.startswith("cleared by 7 more run(s) in d: pooled no regression")
    assert pooled.details["confirm"]["before"]["suspected"] is True and final.verdict == "PASS"
