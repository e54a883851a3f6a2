"""Regression gates against a baseline: syntax, noise awareness, thresholds, exit codes."""

from __future__ import annotations

import pytest
from test_compare import FP32, _cli, _write, make_result

from harness import regress
from harness.compare import CompareError, compare_results
from harness.errors import UserError
from harness.regress import Gate, GateError, parse_gate, parse_gates, regression_checks

ACCS = [0.920, 0.905, 0.931, 0.912, 0.925, 0.918]


@pytest.mark.parametrize("text, metric, threshold, unit", [
    ("throughput:-5%", "throughput", 5.0, "%"),
    ("throughput:5%", "throughput", 5.0, "%"),
    ("step_time_p50:+5%", "step_time_p50", 5.0, "%"),
    ("peak_rss:+10%", "peak_rss", 10.0, "%"),
    ("compile_time:20%", "compile_time", 20.0, "%"),
    ("test_accuracy:-0.5pp", "test_accuracy", 0.5, "pp"),
    (" val_accuracy : -1 pp ", "val_accuracy", 1.0, "pp"),
    ("throughput:-0%", "throughput", 0.0, "%"),
])
def test_parse_valid_gates(text, metric, threshold, unit):
    gate = parse_gate(text)
    assert (gate.metric, gate.threshold, gate.unit) == (metric, threshold, unit)


@pytest.mark.parametrize("text, message", [
    ("throughput:5", "expected METRIC:[+-]NUMBER UNIT"),
    ("throughput", "expected METRIC:[+-]NUMBER UNIT"),
    ("throughput:-five%", "expected METRIC:[+-]NUMBER UNIT"),
    ("speed:-5%", "unknown metric 'speed'; valid metrics are"),
    ("throughput:-5pp", "throughput is gated in '%', got 'pp'"),
    ("test_accuracy:-0.5%", "test_accuracy is gated in 'pp', got '%'"),
    ("throughput:+5%", "throughput gets worse when it falls; write throughput:-5%"),
    ("step_time_p50:-5%", "step_time_p50 gets worse when it rises; write step_time_p50:+5%"),
])
def test_parse_bad_gates_quote_the_value(text, message):
    with pytest.raises(GateError) as exc:
        parse_gate(text)
    assert message in str(exc.value)
    assert repr(text) in str(exc.value)
    assert isinstance(exc.value, UserError)


def test_metric_gated_twice_is_refused():
    with pytest.raises(GateError, match="gated more than once"):
        parse_gates(["throughput:-5%", "throughput:-3%"])
    assert str(Gate("step_time_p50", 5.0, "%")) == "step_time_p50:+5%"


def _runs(step_ms: list[float], *, sd: float, n_steps: int = 400, accs: list[float] | None = None,
          rng_offset: int = 0) -> list:
    accs = accs or ACCS[: len(step_ms)]
    return [make_result(FP32, seed, test_acc=acc, step_ms=ms, step_sd_frac=sd, n_steps=n_steps,
                        rng_seed=rng_offset)
            for seed, (ms, acc) in enumerate(zip(step_ms, accs, strict=True))]


def _throughput(current, baseline, gate="throughput:-5%"):
    (check,) = regression_checks(current, baseline, [parse_gate(gate)])
    return check


def test_five_percent_drop_inside_step_noise_is_not_flagged():
    # Very noisy steps (SD ~50 %), 60 steady samples: the same draws 5.3 % slower are beyond the
    # gate, but the U test cannot separate them from noise.
    baseline = _runs([2.5], sd=0.5, n_steps=160)
    current = _runs([2.5 / 0.947], sd=0.5, n_steps=160)
    check = _throughput(current, baseline)
    assert check.details["change"] == pytest.approx(-5.3, abs=0.01)
    assert check.details["mannwhitney_p"] >= 0.05
    assert check.details["regression"] is False and check.verdict == "PASS"
    assert "inside run-to-run noise" in check.summary
    # The same 5.3 % drop on quiet steps (SD 2 %) is outside noise: a regression.
    quiet = _throughput(_runs([2.5 / 0.947], sd=0.02, n_steps=160), _runs([2.5], sd=0.02, n_steps=160))
    assert quiet.verdict == "FAIL" and quiet.details["change"] == pytest.approx(-5.3, abs=0.01)


def test_five_percent_drop_inside_run_to_run_noise_is_not_flagged():
    # Steps are tight within a run, but run medians spread by 12 %: a 6 % drop is inside that.
    baseline = _runs([2.4, 2.55, 2.7], sd=0.01)
    current = _runs([2.4 * 1.064, 2.55 * 1.064, 2.7 * 1.064], sd=0.01, rng_offset=1)
    check = _throughput(current, baseline)
    assert check.details["change"] < -5.0 and check.details["mannwhitney_p"] < 0.05
    assert check.details["run_noise_frac"] > 0.1
    assert check.details["regression"] is False and check.verdict == "PASS"


def test_real_throughput_drop_outside_noise_is_flagged():
    baseline = _runs([2.5, 2.51, 2.49], sd=0.02)
    current = _runs([2.5 * 1.09, 2.51 * 1.09, 2.49 * 1.09], sd=0.02, rng_offset=1)
    check = _throughput(current, baseline)
    assert check.verdict == "FAIL" and check.details["regression"] is True
    assert check.details["change"] == pytest.approx(100 * (1 / 1.09 - 1), abs=0.5)
    assert "REGRESSION" in check.summary
    # The same drop under a looser gate is significant but not a regression.
    loose = _throughput(current, baseline, "throughput:-10%")
    assert loose.verdict == "PASS" and "within gate" in loose.summary
    # Step time gate sees the same change from the other side.
    step = _throughput(current, baseline, "step_time_p50:+5%")
    assert step.verdict == "FAIL" and step.details["change"] == pytest.approx(9.0, abs=0.5)


def test_improvement_is_not_a_regression():
    baseline = _runs([2.5, 2.51, 2.49], sd=0.02)
    current = _runs([2.0, 2.01, 1.99], sd=0.02, rng_offset=1)
    check = _throughput(current, baseline)
    assert check.verdict == "PASS" and check.details["change"] > 20


def test_accuracy_regression_needs_seeds_outside_noise():
    baseline = _runs([2.5] * 6, sd=0.02, accs=ACCS)
    worse = _runs([2.5] * 6, sd=0.02, accs=[a - 0.02 for a in ACCS], rng_offset=1)
    (check,) = regression_checks(worse, baseline, [parse_gate("test_accuracy:-0.5pp")])
    assert check.verdict == "FAIL" and check.details["change"] == pytest.approx(-2.0)
    assert check.details["mannwhitney_p"] < 0.05
    # A 1 pp drop in mean over seeds that spread 2.6 pp is inside seed noise: not flagged.
    noisy = _runs([2.5] * 6, sd=0.02, accs=[a - 0.01 for a in ACCS], rng_offset=1)
    (inside,) = regression_checks(noisy, baseline, [parse_gate("test_accuracy:-0.5pp")])
    assert inside.details["beyond_threshold"] is True
    assert inside.verdict == "PASS" and inside.details["mannwhitney_p"] >= 0.05


def test_memory_and_compile_time_gates():
    baseline = [make_result(FP32, s, peak_rss_mb=1000.0 + s) for s in range(4)]
    current = [make_result(FP32, s, peak_rss_mb=1300.0 + s) for s in range(4)]
    (check,) = regression_checks(current, baseline, [parse_gate("peak_rss:+10%")])
    assert check.verdict == "FAIL" and check.details["change"] == pytest.approx(30.0, abs=0.5)
    (compile_check,) = regression_checks(current, baseline, [parse_gate("compile_time:+10%")])
    assert compile_check.verdict == "PASS"  # identical compile times


def test_baseline_with_other_hyperparameters_is_refused():
    baseline = [make_result(FP32, 0, batch_size=64)]
    with pytest.raises(CompareError, match=r"hyperparameters differ from the baseline: batch_size 64 \(baseline\) vs 32"):
        regression_checks([make_result(FP32, 0)], baseline, regress.default_gates())
    with pytest.raises(CompareError, match="fingerprint"):
        regression_checks([make_result(FP32, 0)], [make_result(FP32, 0, sha="cd" * 32)], regress.default_gates())


def test_group_missing_from_baseline_warns():
    from test_compare import BF16

    checks = regression_checks([make_result(BF16, 0)], [make_result(FP32, 0)], regress.default_gates())
    assert [c.verdict for c in checks] == ["WARN"]
    assert "no successful baseline runs" in checks[0].summary


def test_compare_results_includes_regressions():
    baseline = _runs([2.5, 2.51, 2.49], sd=0.02)
    current = _runs([2.5 * 1.09, 2.51 * 1.09, 2.49 * 1.09], sd=0.02, rng_offset=1)
    comp = compare_results(current, baseline=baseline, gates=[parse_gate("throughput:-5%")])
    reg = [c for c in comp.checks if c.name == "regression"]
    assert len(reg) == 1 and reg[0].verdict == "FAIL" and comp.verdict == "FAIL"


def test_cli_baseline_exit_codes(tmp_path, capsys):
    _write(_runs([2.5, 2.51, 2.49], sd=0.02), tmp_path / "base")
    _write(_runs([2.5, 2.51, 2.49], sd=0.02, rng_offset=1), tmp_path / "same")
    _write(_runs([2.5 * 1.09, 2.51 * 1.09, 2.49 * 1.09], sd=0.02, rng_offset=1), tmp_path / "slow")
    gates = ["--gate", "throughput:-5%", "--gate", "test_accuracy:-0.5pp"]
    assert _cli([str(tmp_path / "same"), "--baseline", str(tmp_path / "base"), *gates]) == 0
    assert "regression" in capsys.readouterr().out
    assert _cli([str(tmp_path / "slow"), "--baseline", str(tmp_path / "base"), *gates]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION: throughput" in out
    # Default gates when --baseline has no --gate.
    assert _cli([str(tmp_path / "slow"), "--baseline", str(tmp_path / "base")]) == 1


def test_baseline_with_other_source_labels_pairs_by_path():
    baseline = _runs([2.5, 2.51, 2.49], sd=0.02)
    current = _runs([2.5 * 1.09, 2.51 * 1.09, 2.49 * 1.09], sd=0.02, rng_offset=1)
    (check,) = regression_checks(current, baseline, [parse_gate("throughput:-5%")],
                                 labels=["fp32"] * 3, baseline_labels=["nightly"] * 3)
    assert check.verdict == "FAIL"
