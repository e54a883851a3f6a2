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


def test_only_failed_run_level_regressions_are_suspects() -> None:
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
