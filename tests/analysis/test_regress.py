"""Regression gates against a baseline: syntax, noise awareness, thresholds, pairing of groups."""

from __future__ import annotations

import json
import re

import pytest

from harness.analysis.checks import Check
from harness.analysis.compare import compare_results
from harness.analysis.gates import Gate, default_gates, parse_gate, parse_gates
from harness.analysis.noise import Floor, NoiseFloors
from harness.analysis.regress import regression_checks
from harness.analysis.samples import label_runs
from harness.errors import CompareError, GateError, UserError
from harness.store.results import RunResult
from tests.factories import BF16, CPU, GPU, gpu_telemetry, result

ACCS = [0.920, 0.905, 0.931, 0.912, 0.925, 0.918]  # one per seed: up to 6 runs per side


@pytest.mark.parametrize("text, metric, threshold, unit", [
    ("throughput:-5%", "throughput", 5.0, "%"),
    ("throughput:5%", "throughput", 5.0, "%"),
    ("step_time_p50:+5%", "step_time_p50", 5.0, "%"),
    ("peak_rss:+10%", "peak_rss", 10.0, "%"),
    ("compile_time:20%", "compile_time", 20.0, "%"),
    ("test_accuracy:-0.5pp", "test_accuracy", 0.5, "pp"),
    (" val_accuracy : -1 pp ", "val_accuracy", 1.0, "pp"),
    ("throughput:-0%", "throughput", 0.0, "%"),
])  # fmt: skip
def test_parse_valid_gates(text: str, metric: str, threshold: float, unit: str) -> None:
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
])  # fmt: skip
def test_parse_bad_gates_quote_the_value(text: str, message: str) -> None:
    with pytest.raises(GateError) as exc:
        parse_gate(text)
    assert message in str(exc.value)
    assert repr(text) in str(exc.value)
    assert isinstance(exc.value, UserError)


def test_metric_gated_twice_is_refused() -> None:
    with pytest.raises(GateError, match="gated more than once"):
        parse_gates(["throughput:-5%", "throughput:-3%"])
    assert str(Gate("step_time_p50", 5.0, "%")) == "step_time_p50:+5%"


def _runs(
    step_ms: list[float], *, sd: float, n_steps: int = 400, accs: list[float] | None = None, rng_offset: int = 0
) -> list[RunResult]:
    """One cpu-fp32 run per seed; ``rng_offset`` draws other step-time noise than offset 0 does."""
    accs = accs or ACCS[: len(step_ms)]
    return [result(path=CPU, seed=seed, test_acc=acc, step_ms=ms, step_sd_frac=sd, n_steps=n_steps,
                   rng_seed=seed * 1000 + rng_offset)
            for seed, (ms, acc) in enumerate(zip(step_ms, accs, strict=True))]  # fmt: skip


def _check(current: list[RunResult], baseline: list[RunResult], gate: str = "throughput:-5%") -> Check:
    (check,) = regression_checks(label_runs(current), baseline, [parse_gate(gate)])
    return check


def test_one_run_per_side_is_inconclusive_however_many_steps() -> None:
    # Rule changed (the run is the unit): 160 quiet steps per run once made a 5.3 % drop between two
    # single runs "outside noise". One run per side says nothing about run-to-run noise: INCONCLUSIVE.
    check = _check(_runs([2.5 / 0.947], sd=0.02, n_steps=160), _runs([2.5], sd=0.02, n_steps=160))
    assert check.details["change"] == pytest.approx(-5.3, abs=0.3)
    assert check.details["decision"] == "inconclusive" and check.details["regression"] is False
    assert check.verdict == "WARN" and "INCONCLUSIVE" in check.summary
    assert (check.details["more_runs_current"], check.details["more_runs_baseline"]) == (3, 3)
    assert check.details["n_current"] == check.details["n_baseline"] == 1  # runs, not steps


def test_drop_inside_run_to_run_noise_is_not_flagged() -> None:
    # Steps are tight within a run, but runs spread by ~8 % (sd of ln): a 6.2 % drop at 6 runs per side
    # is inside the noise floor at n=6: not a regression. Rule changed: this spread needs more than 6
    # runs per side for a powered "no regression", so the verdict is INCONCLUSIVE, not PASS.
    medians = [2.3, 2.55, 2.8, 2.4, 2.7, 2.5]
    baseline = _runs(medians, sd=0.01)
    current = _runs([m * 1.066 for m in medians], sd=0.01, rng_offset=1)
    check = _check(current, baseline)
    shift = check.details["shift"]
    assert check.details["change"] < -5.0 and check.details["beyond_threshold"] is True
    assert shift["sigma_observed"] > shift["sigma_floor"] == 0.05  # the observed run spread sets sigma
    assert -check.details["change"] / 100 < shift["resolution"]  # inside the noise floor at n=6
    assert check.details["regression"] is False and check.details["decision"] == "inconclusive"
    assert check.verdict == "WARN"
    assert check.details["more_runs_current"] == check.details["more_runs_baseline"] == shift["n_required"] - 6 > 0


def test_real_throughput_drop_outside_noise_is_flagged() -> None:
    # Rule changed: a regression needs >= 4 runs per side (the exact U test cannot reject below).
    baseline = _runs([2.5, 2.51, 2.49, 2.5], sd=0.02)
    current = _runs([2.5 * 1.09, 2.51 * 1.09, 2.49 * 1.09, 2.5 * 1.09], sd=0.02, rng_offset=1)
    check = _check(current, baseline)
    assert check.verdict == "FAIL" and check.details["regression"] is True
    assert check.details["change"] == pytest.approx(100 * (1 / 1.09 - 1), abs=0.5)
    assert check.details["mannwhitney_p"] == pytest.approx(1 / 70)  # exact, over runs
    assert "REGRESSION" in check.summary
    # ~12,800 -> ~11,700 samples/s read as such, not in exponent notation (1.28e+04)
    assert re.search(r"\(\d{2},\d{3} → \d{2},\d{3}; ", check.summary) and "e+" not in check.summary, check.summary
    # The same drop under a looser gate is significant but not a regression.
    loose = _check(current, baseline, "throughput:-10%")
    assert loose.verdict == "PASS" and loose.details["outside_noise"] is True
    assert loose.details["beyond_threshold"] is False
    # Step time gate sees the same change from the other side.
    step = _check(current, baseline, "step_time_p50:+5%")
    assert step.verdict == "FAIL" and step.details["change"] == pytest.approx(9.0, abs=0.5)
    # Three runs per side of the same drop: INCONCLUSIVE, one more run each needed.
    three = _check(current[:3], baseline[:3])
    assert three.verdict == "WARN" and (three.details["more_runs_current"], three.details["more_runs_baseline"]) == (
        1,
        1,
    )


def test_improvement_is_not_a_regression() -> None:
    check = _check(_runs([2.0, 2.01, 1.99, 2.0], sd=0.02, rng_offset=1), _runs([2.5, 2.51, 2.49, 2.5], sd=0.02))
    assert check.verdict == "PASS" and check.details["change"] > 20


def test_a_stored_noise_floor_raises_the_runs_needed() -> None:
    baseline = _runs([2.5, 2.51, 2.49, 2.5], sd=0.02)
    current = _runs([2.5, 2.51, 2.49, 2.5], sd=0.02, rng_offset=1)
    assert _check(current, baseline).verdict == "PASS"  # default floor 0.05: 4 runs suffice
    spec = current[0].run_spec
    hyperparameters = json.loads(json.dumps(spec.hyperparameters))
    floor = Floor(spec.benchmark, spec.dataset, spec.path.name, spec.execution, hyperparameters,
                  runs=10, configs=1, sigma_ln={"throughput": 0.125})  # fmt: skip
    (check,) = regression_checks(label_runs(current), baseline, [parse_gate("throughput:-5%")],
                                 floors=NoiseFloors([("noise.json", floor)]))  # fmt: skip
    assert check.verdict == "WARN" and check.details["shift"]["floor_source"] == "noise.json"
    assert check.details["shift"]["n_required"] == 15 and check.details["more_runs_current"] == 11


def test_accuracy_regression_needs_seeds_outside_noise() -> None:
    baseline = _runs([2.5] * 6, sd=0.02, accs=ACCS)
    worse = _runs([2.5] * 6, sd=0.02, accs=[a - 0.02 for a in ACCS], rng_offset=1)
    check = _check(worse, baseline, "test_accuracy:-0.5pp")
    assert check.verdict == "FAIL" and check.details["change"] == pytest.approx(-2.0)
    assert check.details["mannwhitney_p"] < 0.05
    # A 1 pp drop in mean over seeds that spread 2.6 pp is inside seed noise: not flagged.
    noisy = _runs([2.5] * 6, sd=0.02, accs=[a - 0.01 for a in ACCS], rng_offset=1)
    inside = _check(noisy, baseline, "test_accuracy:-0.5pp")
    assert inside.details["beyond_threshold"] is True
    assert inside.verdict == "PASS" and inside.details["mannwhitney_p"] >= 0.05


def test_memory_and_compile_time_gates() -> None:
    baseline = [result(path=CPU, seed=s, peak_rss_mb=1000.0 + s) for s in range(4)]
    current = [result(path=CPU, seed=s, peak_rss_mb=1300.0 + s) for s in range(4)]
    check = _check(current, baseline, "peak_rss:+10%")
    assert check.verdict == "FAIL" and check.details["change"] == pytest.approx(30.0, abs=0.5)
    compile_check = _check(current, baseline, "compile_time:+10%")
    assert compile_check.verdict == "PASS" and compile_check.details["change"] == 0.0  # identical compile times


def test_baseline_with_other_hyperparameters_is_refused() -> None:
    current = label_runs([result(path=CPU)])
    with pytest.raises(
        CompareError, match=r"hyperparameters differ from the baseline: batch_size 64 \(baseline\) vs 32"
    ):
        regression_checks(current, [result(path=CPU, batch_size=64)], default_gates())
    with pytest.raises(CompareError, match="fingerprint"):
        regression_checks(current, [result(path=CPU, sha="cd" * 32)], default_gates())


def test_group_missing_from_baseline_warns() -> None:
    checks = regression_checks(label_runs([result(path=BF16)]), [result(path=CPU)], default_gates())
    assert [(c.verdict, c.subject) for c in checks] == [("WARN", "batchnorm/mnist-5k: cpu-mixed_bfloat16 vs baseline")]
    assert "gate" not in checks[0].details  # nothing was measured


def test_compare_results_includes_regressions() -> None:
    baseline = _runs([2.5, 2.51, 2.49, 2.5], sd=0.02)
    current = _runs([2.5 * 1.09, 2.51 * 1.09, 2.49 * 1.09, 2.5 * 1.09], sd=0.02, rng_offset=1)
    comp = compare_results(current, baseline=baseline, gates=[parse_gate("throughput:-5%")])
    (reg,) = comp.checks_named("regression")
    assert reg.verdict == "FAIL" and reg.details["gate"] == "throughput:-5%" and comp.verdict == "FAIL"


def test_baseline_with_other_source_labels_pairs_by_path() -> None:
    baseline = _runs([2.5, 2.51, 2.49, 2.5], sd=0.02)
    current = _runs([2.5 * 1.09, 2.51 * 1.09, 2.49 * 1.09, 2.5 * 1.09], sd=0.02, rng_offset=1)
    (check,) = regression_checks(label_runs(current, ["fp32"] * 4), baseline, [parse_gate("throughput:-5%")],
                                 baseline_sources=["nightly"] * 4)  # fmt: skip
    assert check.verdict == "FAIL" and check.details["regression"] is True


# --- GPU: allocator peak gate, hardware identity ---------------------------------------------------


def test_gpu_peak_memory_gate_on_gpu_groups_only() -> None:
    baseline = [result(path=GPU, seed=s, tf_peak_mb=2000.0 + s) for s in range(4)]
    current = [result(path=GPU, seed=s, tf_peak_mb=2600.0 + s) for s in range(4)]
    check = _check(current, baseline, "gpu_peak_mem:+10%")
    assert check.verdict == "FAIL" and check.details["change"] == pytest.approx(30.0, abs=0.5)
    assert check.details["baseline"] == pytest.approx(2001.5) and check.details["n_current"] == 4
    # A CPU group has no GPU allocator: the gate is not applied (no WARN about missing samples either).
    cpu = [result(path=CPU, seed=s) for s in range(2)]
    assert regression_checks(label_runs(cpu), cpu, [parse_gate("gpu_peak_mem:+10%")]) == []


def test_baseline_on_another_gpu_or_driver_is_refused_unless_allowed() -> None:
    baseline = [result(path=GPU, seed=s, telemetry=gpu_telemetry("NVIDIA A100-SXM4-80GB", "535.54.03")) for s in (0, 1)]
    for name, driver in (("NVIDIA H100 80GB HBM3", "535.54.03"), ("NVIDIA A100-SXM4-80GB", "590.48.01")):
        current = label_runs([result(path=GPU, seed=s, telemetry=gpu_telemetry(name, driver)) for s in (0, 1)])
        with pytest.raises(CompareError) as err:
            regression_checks(current, baseline, default_gates())
        message = str(err.value)
        assert "\n" not in message and "--allow-hardware-change" in message
        assert (
            "NVIDIA A100-SXM4-80GB (driver 535.54.03) (baseline)" in message and f"{name} (driver {driver})" in message
        )
        checks = regression_checks(current, baseline, default_gates(), allow_hardware_change=True)
        (hardware,) = [c for c in checks if c.name == "hardware"]
        assert hardware.verdict == "WARN" and hardware.details["current"] == [[name, driver]]
        assert len([c for c in checks if c.name == "regression"]) == 2  # the gates still ran


def test_same_gpu_passes_silently_and_unknown_gpu_warns() -> None:
    same = [result(path=GPU, seed=s) for s in (0, 1)]
    checks = regression_checks(label_runs(same), same, default_gates())
    assert [c.name for c in checks] == ["regression", "regression"]
    blind = [result(path=GPU, seed=s, with_telemetry=False) for s in (0, 1)]
    checks = regression_checks(label_runs(same), blind, default_gates())
    (hardware,) = [c for c in checks if c.name == "hardware"]
    assert hardware.verdict == "WARN" and "not recorded for the baseline" in hardware.summary
