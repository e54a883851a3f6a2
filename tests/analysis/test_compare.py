"""compare: result sets with known differences drive every verdict (no TensorFlow); and, marked
``slow``, `tfparity run` on mnist-5k over three CPU paths and the numerics probe through the real worker."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.analysis import equivalence
from harness.analysis.checks import Check, Comparison
from harness.analysis.compare import Tolerances, compare_results
from harness.errors import CompareError, UserError
from harness.spec.run_spec import PathSpec, RunSpec
from harness.store.results import load_result, load_results
from tests.factories import BF16, CPU, GPU, GPU_TF32, XLA, result, seeds
from tests.helpers import ROOT, tfparity

BASE_ACCS = [0.920, 0.905, 0.931, 0.912, 0.925, 0.918]
JITTER = [0.001, -0.002, 0.0015, -0.001, 0.0, 0.002]  # per-seed differences of 0.1-0.2 pp


def jitter(shift: float) -> list[float]:
    """BASE_ACCS shifted by ``shift`` (accuracy units) plus a small per-seed difference."""
    return [a + shift + d for a, d in zip(BASE_ACCS, JITTER, strict=True)]


def by_name(comparison: Comparison, name: str, contains: str = "") -> list[Check]:
    return [c for c in comparison.checks if c.name == name and contains in c.subject]


def acc_check(comparison: Comparison) -> Check:
    """The one test-accuracy equivalence check of a two-group comparison."""
    (check,) = by_name(comparison, "accuracy-equivalence", "(test_accuracy)")
    return check


# --- accuracy equivalence ----------------------------------------------------------------------


def test_equivalent_paths_pass_with_enough_seeds() -> None:
    # Differences of ±0.1-0.2 pp per seed: well inside a 1 pp margin.
    comp = compare_results(seeds(CPU, BASE_ACCS) + seeds(BF16, jitter(0.0)))
    assert comp.reference == "cpu-fp32"
    check = acc_check(comp)
    assert check.verdict == "PASS", check.summary
    assert check.details["paired"] is True
    assert check.details["decision"] == "equivalent" and check.details["margin"] == 1.0
    assert check.details["tost_p"] < 0.05
    assert check.details["seeds_needed"] is not None


def test_too_few_seeds_warns_with_needed_count() -> None:
    # differences +1.5 and -1.2 pp: SD ~1.9 pp
    comp = compare_results(seeds(CPU, [0.920, 0.905]) + seeds(BF16, [0.935, 0.893]))
    check = acc_check(comp)
    assert check.verdict == "WARN" and check.details["decision"] == "inconclusive"
    needed = check.details["seeds_needed"]
    assert needed is not None and needed > 2
    # The estimate agrees with a direct power calculation from the observed SD.
    assert check.details["sd_source"] == "observed"
    assert needed == equivalence.seeds_needed(check.details["sd"], 1.0, paired=True)


def test_real_gap_fails() -> None:
    comp = compare_results(seeds(CPU, BASE_ACCS) + seeds(BF16, jitter(-0.03)))
    check = acc_check(comp)
    assert check.verdict == "FAIL" and check.details["decision"] == "different"
    assert check.details["mean"] == pytest.approx(-3.0, abs=0.1)
    assert comp.verdict == "FAIL"
    (gate,) = by_name(comp, "relative-gate")
    assert gate.verdict == "FAIL"


def test_identical_local_vs_docker_single_seed_passes() -> None:
    comp = compare_results([result(seed=0, backend="local"), result(seed=0, backend="docker")])
    assert comp.groups == ["local:cpu-fp32", "docker:cpu-fp32"]
    assert comp.reference == "local:cpu-fp32"
    checks = by_name(comp, "accuracy-equivalence")
    assert [c.verdict for c in checks] == ["PASS", "PASS"]
    assert all(c.details["exact"] is True and c.details["mean"] == 0.0 for c in checks)
    (det,) = by_name(comp, "determinism")
    assert det.verdict == "PASS" and det.details["identical"] is True
    # Rule changed: one run per side cannot decide speed or memory (INCONCLUSIVE, a WARN), so the
    # overall verdict is WARN; nothing FAILs.
    assert {c.name for c in comp.checks if c.verdict != "PASS"} == {"speed", "memory"}
    assert comp.verdict == "WARN"


def test_identical_over_several_seeds_zero_variance_passes() -> None:
    comp = compare_results(seeds(CPU, BASE_ACCS[:3], backend="local") + seeds(CPU, BASE_ACCS[:3], backend="docker"))
    check = acc_check(comp)
    assert check.verdict == "PASS" and check.details["exact"] is True and check.details["mean"] == 0.0


def test_single_seed_equal_accuracy_but_different_run_warns() -> None:
    ref = [result(path=CPU, seed=0, test_acc=0.92, test_loss=0.21)]
    other = [result(path=BF16, seed=0, test_acc=0.92, test_loss=0.25)]
    check = acc_check(compare_results(ref + other))
    assert check.verdict == "WARN"
    assert check.details["seeds"] == [0] and check.details["mean"] == 0.0
    assert check.details["sd_source"] == "assumed" and check.details["seeds_needed"] > 1


def test_constant_nonzero_difference_beyond_margin_fails() -> None:
    # exactly -2 pp on every seed: zero-variance differences
    check = acc_check(compare_results(seeds(CPU, [0.90, 0.91, 0.92]) + seeds(BF16, [0.88, 0.89, 0.90])))
    assert check.verdict == "FAIL" and check.details["exact"] is True
    assert check.details["mean"] == pytest.approx(-2.0)


def test_large_drop_without_observable_sd_fails_small_one_warns() -> None:
    # Two seeds, exactly -10 pp each: no SD can be observed, but no seed noise makes 10 pp.
    check = acc_check(compare_results(seeds(CPU, [0.90, 0.91]) + seeds(BF16, [0.80, 0.81])))
    assert check.verdict == "FAIL"
    assert (
        check.details["mean"] == pytest.approx(-10.0) and abs(check.details["mean"]) > check.details["assumed_limit_pp"]
    )
    # One seed, -10 pp: also beyond the assumed-noise limit (1 + 1.96 * 1.5 * sqrt(2) ~ 5.2 pp).
    one = acc_check(compare_results([result(path=CPU, test_acc=0.90), result(path=BF16, test_acc=0.80)]))
    assert one.verdict == "FAIL" and one.details["assumed_limit_pp"] == pytest.approx(1 + 1.959964 * 1.5 * 2**0.5)
    # -2 pp on two seeds sits inside what seed noise could explain: undecided, not a false FAIL.
    small = acc_check(compare_results(seeds(CPU, [0.90, 0.91]) + seeds(BF16, [0.88, 0.89])))
    assert small.verdict == "WARN" and small.details["decision"] == "inconclusive"


def test_unpaired_seeds_use_welch() -> None:
    other = [result(path=BF16, seed=10 + i, test_acc=a) for i, a in enumerate(BASE_ACCS)]
    check = acc_check(compare_results(seeds(CPU, BASE_ACCS) + other))
    assert check.details["paired"] is False and check.details["seeds"] is None
    # Same values, different seeds: mean difference 0, but seed-to-seed SD ~1 pp needs more seeds.
    assert check.details["mean"] == pytest.approx(0.0, abs=1e-9)
    assert check.verdict in ("PASS", "WARN")
    assert check.verdict == ("PASS" if check.details["tost_p"] < 0.05 else "WARN")


def test_margin_changes_the_decision() -> None:
    results = seeds(CPU, BASE_ACCS) + seeds(BF16, jitter(-0.005))
    wide = acc_check(compare_results(results, tolerances=Tolerances(margin_pp=2.0)))
    narrow = acc_check(compare_results(results, tolerances=Tolerances(margin_pp=0.25)))
    assert wide.verdict == "PASS" and wide.details["margin"] == 2.0
    assert narrow.verdict == "FAIL" and narrow.details["margin"] == 0.25


def test_unmatched_seeds_are_named_not_dropped_silently() -> None:
    check = acc_check(compare_results(seeds(CPU, BASE_ACCS) + seeds(BF16, jitter(0.0))[:4]))
    assert check.details["seeds"] == [0, 1, 2, 3] and check.details["unmatched_seeds"] == [4, 5]


# --- refusals ----------------------------------------------------------------------------------


def test_mismatched_fingerprints_are_refused() -> None:
    with pytest.raises(CompareError, match="dataset fingerprints differ for batchnorm/mnist-5k") as exc:
        compare_results([result(path=CPU), result(path=BF16, sha="cd" * 32)])
    assert isinstance(exc.value, UserError)
    assert "\n" not in str(exc.value)


def test_mismatched_hyperparameters_are_refused() -> None:
    with pytest.raises(CompareError, match=r"hyperparameters differ .*learning_rate 0.001 vs 0.01"):
        compare_results([result(path=CPU), result(path=BF16, learning_rate=0.01)])


def test_one_result_never_counts_twice() -> None:
    run = result(seed=0)
    with pytest.raises(CompareError, match=r"results 1 and 3 are the same run .*a result never counts twice") as exc:
        compare_results([run, result(path=BF16), run])
    assert "\n" not in str(exc.value)
    # A copy (equal content, another object) is the same run; a repeat of the spec is not.
    copy = dataclasses.replace(run)
    with pytest.raises(CompareError, match="same run"):
        compare_results([run, copy], sources=["a", "b"])
    repeat = result(seed=0, started="2026-11-25T03:00:00Z")
    assert compare_results([run, repeat], sources=["a", "b"]).groups == ["a:cpu-fp32", "b:cpu-fp32"]


def test_groups_without_a_dataset_in_common_are_refused() -> None:
    mnist, synthetic = seeds(CPU, BASE_ACCS[:2]), seeds(CPU, BASE_ACCS[:2], dataset="synthetic")
    with pytest.raises(CompareError) as exc:
        compare_results(mnist + synthetic, sources=["a"] * 2 + ["b"] * 2)
    assert str(exc.value) == (
        "no dataset in common: 'b:cpu-fp32' ran on 'synthetic', the reference 'a:cpu-fp32' on 'mnist-5k'; "
        "runs on different datasets cannot be compared"
    )


def test_a_partial_overlap_warns_exactly_what_was_not_compared() -> None:
    # The reference ran mnist-5k and synthetic; bf16 ran mnist-5k and fashion-mnist.
    ref = seeds(CPU, BASE_ACCS[:3]) + seeds(CPU, BASE_ACCS[:3], dataset="synthetic")
    other = seeds(BF16, BASE_ACCS[:3]) + seeds(BF16, BASE_ACCS[:3], dataset="fashion-mnist")
    comp = compare_results(ref + other)
    coverage = {c.subject: c for c in by_name(comp, "coverage")}
    assert set(coverage) == {"batchnorm/fashion-mnist", "batchnorm/synthetic: cpu-mixed_bfloat16"}
    never = coverage["batchnorm/fashion-mnist"]
    assert never.verdict == "WARN" and never.details["reference_runs"] == 0
    assert never.details["groups"] == ["cpu-mixed_bfloat16"]
    assert coverage["batchnorm/synthetic: cpu-mixed_bfloat16"].details["unit"] == ["batchnorm", "synthetic"]
    # mnist-5k, where both ran, is compared.
    assert by_name(comp, "accuracy-equivalence", "batchnorm/mnist-5k")
    # The reference ran a unit but every run failed: said so, not "no runs".
    failed = [result(path=CPU, seed=0, status="failed"), *seeds(BF16, BASE_ACCS[:1])]
    (check,) = by_name(compare_results(failed), "coverage", "batchnorm/mnist-5k")
    assert check.details["reference_runs"] == 1


def test_nothing_compared_is_a_warning_never_a_pass() -> None:
    one = compare_results(seeds(CPU, BASE_ACCS[:3]))
    (check,) = by_name(one, "coverage")
    assert check.verdict == "WARN" and check.details == {"pairs": 0, "groups": ["cpu-fp32"]}
    assert check.summary.startswith("nothing to compare: one group")
    assert one.verdict == "WARN"
    # Two groups that share a dataset but no benchmark: no pair either.
    apart = compare_results(seeds(CPU, BASE_ACCS[:3]) + seeds(BF16, BASE_ACCS[:3], benchmark="baseline"))
    assert apart.verdict == "WARN" and [c.details.get("pairs") for c in by_name(apart, "coverage")][-1] == 0
    # With a pair there is no such warning.
    assert not by_name(compare_results(seeds(CPU, BASE_ACCS[:3]) + seeds(BF16, BASE_ACCS[:3])), "coverage")


def test_different_benchmarks_are_separate_units_not_refused() -> None:
    results = seeds(CPU, BASE_ACCS[:3]) + seeds(CPU, BASE_ACCS[:3], benchmark="baseline")
    comp = compare_results(results + seeds(BF16, BASE_ACCS[:3]))
    subjects = {c.subject for c in by_name(comp, "accuracy-equivalence")}
    assert any(s.startswith("batchnorm/") for s in subjects)
    assert not any(s.startswith("baseline/") and "mixed" in s for s in subjects)


def test_unknown_reference_and_no_results() -> None:
    results = [result(path=CPU), result(path=BF16)]
    with pytest.raises(CompareError, match=r"unknown reference 'gpu-fp32'; the compared groups are"):
        compare_results(results, reference="gpu-fp32")
    with pytest.raises(CompareError, match="no results"):
        compare_results([])
    with pytest.raises(CompareError, match="margin"):
        compare_results(results, tolerances=Tolerances(margin_pp=0.0))


def test_default_reference_is_cpu_fp32_even_when_not_first() -> None:
    results = seeds(BF16, BASE_ACCS[:2]) + seeds(XLA, BASE_ACCS[:2]) + seeds(CPU, BASE_ACCS[:2])
    comp = compare_results(results)
    assert comp.reference == "cpu-fp32"
    assert comp.groups == ["cpu-mixed_bfloat16", "cpu-fp32-xla", "cpu-fp32"]
    assert compare_results(results, reference="cpu-fp32-xla").reference == "cpu-fp32-xla"


# --- failed runs, determinism, evidence ---------------------------------------------------------


def test_failed_run_is_reported_and_excluded() -> None:
    ref = seeds(CPU, BASE_ACCS[:4])
    other = seeds(BF16, BASE_ACCS[:3]) + [result(path=BF16, seed=3, status="failed")]
    comp = compare_results(ref + other)
    (status,) = by_name(comp, "status")
    assert status.verdict == "FAIL" and "seed 3" in status.subject
    assert status.details["status"] == "failed" and "SIGKILL" in status.details["error"]
    assert acc_check(comp).details["seeds"] == [0, 1, 2]
    interrupted = compare_results(ref + [result(path=BF16, seed=0, status="interrupted")])
    assert by_name(interrupted, "status")[0].verdict == "WARN"


def test_nondeterminism_with_deterministic_ops_fails() -> None:
    comp = compare_results([result(path=CPU, test_loss=0.2101), result(path=CPU, test_loss=0.2102)])
    (det,) = by_name(comp, "determinism")
    assert det.verdict == "FAIL"
    assert det.details["identical"] is False and det.details["deterministic_ops"] is True
    assert det.details["test_loss_spread"] == pytest.approx(0.0001)
    assert comp.verdict == "FAIL"


def test_nondeterminism_without_deterministic_ops_warns() -> None:
    (det,) = by_name(compare_results([result(path=XLA, test_loss=0.2101), result(path=XLA, test_loss=0.2102)]),
                     "determinism")  # fmt: skip
    assert det.verdict == "WARN" and det.details["deterministic_ops"] is False


def test_repeat_runs_identical_pass() -> None:
    # Two runs of one spec (other start times): repeats count, and bit-identical metrics pass.
    repeats = [result(seed=1), result(seed=1, started="2026-11-25T03:00:00Z")]
    (det,) = by_name(compare_results(repeats), "determinism")
    assert det.verdict == "PASS" and det.details["identical"] is True and len(det.details["run_ids"]) == 2
    assert det.details["first_difference"] is None


def test_a_determinism_failure_names_the_metric_and_epoch_where_runs_part() -> None:
    run = result(seed=1, epochs=4)
    epochs = list(run.epochs)
    epochs[2] = dataclasses.replace(epochs[2], val_loss=epochs[2].val_loss + 1e-7)
    parted = dataclasses.replace(run, started_utc="2026-11-25T03:00:00Z", epochs=epochs, test_loss=run.test_loss + 1e-6)
    (det,) = by_name(compare_results([run, parted]), "determinism")
    assert det.verdict == "FAIL" and det.details["identical"] is False
    first = det.details["first_difference"]
    assert (first["metric"], first["epoch"]) == ("val_loss", 3)  # not the later test loss
    assert first["values"] == [run.epochs[2].val_loss, epochs[2].val_loss]
    assert "first at epoch 3 val_loss" in det.summary
    # Only the test metrics differ: named without an epoch.
    late = dataclasses.replace(run, started_utc="2026-11-25T04:00:00Z", test_accuracy=0.921)
    (det,) = by_name(compare_results([run, late]), "determinism")
    assert det.details["first_difference"]["metric"] == "test_accuracy"
    assert det.details["first_difference"]["epoch"] is None


def test_gpu_result_with_variables_on_cpu_fails_evidence() -> None:
    on_cpu = result(path=GPU, evidence_overrides={"variable_device": "/job:localhost/replica:0/task:0/device:CPU:0"})
    comp = compare_results([result(path=CPU), on_cpu])
    (ev,) = by_name(comp, "evidence", "gpu-fp32")
    assert ev.verdict == "FAIL"
    mismatches = on_cpu.evidence.mismatches(on_cpu.run_spec)
    assert len(mismatches) == 1 and "CPU:0" in mismatches[0]  # the variables' device, and only that
    assert ev.details["problems"] == [f"seed 0: {mismatches[0]}"]
    assert comp.verdict == "FAIL"
    (ok,) = by_name(comp, "evidence", "cpu-fp32")
    assert ok.verdict == "PASS" and ok.details["problems"] == []


def test_policy_and_jit_mismatch_fail_evidence() -> None:
    wrong_policy = result(path=BF16, evidence_overrides={"dtype_policy": "float32"})
    no_jit = result(path=XLA, evidence_overrides={"jit_compile": False})
    comp = compare_results([result(path=CPU), wrong_policy, no_jit])
    (bf,) = by_name(comp, "evidence", "cpu-mixed_bfloat16")
    assert bf.verdict == "FAIL" and bf.details["problems"] == [
        f"seed 0: {m}" for m in wrong_policy.evidence.mismatches(wrong_policy.run_spec)
    ]
    (xla,) = by_name(comp, "evidence", "cpu-fp32-xla")
    assert xla.verdict == "FAIL"
    assert xla.details["problems"] == [f"seed 0: {m}" for m in no_jit.evidence.mismatches(no_jit.run_spec)]
    assert len(xla.details["problems"]) == 1


def test_missing_evidence_warns() -> None:
    (ev,) = by_name(compare_results([result(with_evidence=False)]), "evidence")
    assert ev.verdict == "WARN" and ev.details["runs_checked"] == 0 and len(ev.details["warnings"]) == 1


# --- curves, relative gate, speed, memory -------------------------------------------------------


def test_curves_name_first_parting_epoch() -> None:
    ref = seeds(CPU, BASE_ACCS[:3], epochs=4)
    (same,) = by_name(compare_results(ref + seeds(XLA, BASE_ACCS[:3], epochs=4)), "curves")
    assert same.verdict == "PASS" and same.details["first_parting_epoch"] is None
    # Shift every epoch's losses by 0.5 (> 10 % of the reference loss from epoch 1 on).
    (curve,) = by_name(compare_results(ref + seeds(BF16, BASE_ACCS[:3], epochs=4, curve_shift=0.5)), "curves")
    assert curve.verdict == "WARN"
    assert curve.details["first_parting_epoch"] == 1
    assert curve.details["metrics"]["train_loss"]["max_abs_diff"] == pytest.approx(0.5)


def test_relative_gate_against_fp32_sibling_not_reference() -> None:
    # Reference is the XLA group; the bf16 group is still gated against its fp32 sibling.
    results = seeds(XLA, BASE_ACCS) + seeds(BF16, jitter(0.0)) + seeds(CPU, BASE_ACCS)
    comp = compare_results(results, reference="cpu-fp32-xla")
    gates = {c.subject: c for c in by_name(comp, "relative-gate")}
    assert gates["batchnorm/mnist-5k: cpu-mixed_bfloat16 vs cpu-fp32"].verdict == "PASS"
    assert gates["batchnorm/mnist-5k: cpu-fp32-xla vs cpu-fp32"].verdict == "PASS"


def test_speed_change_detected_and_noise_ignored() -> None:
    # Rule changed: speed is decided over runs (4+ per side), never over pooled steps.
    ref = seeds(CPU, BASE_ACCS[:4], step_ms=2.5)
    (speed,) = by_name(compare_results(ref + seeds(BF16, BASE_ACCS[:4], step_ms=3.5)), "speed")
    assert speed.verdict == "PASS" and speed.details["changed"] is True and speed.details["decision"] == "lower"
    assert speed.details["throughput_ratio"] == pytest.approx(2.5 / 3.5, rel=0.02)  # slower
    assert speed.details["ci_low"] < speed.details["throughput_ratio"] < speed.details["ci_high"]
    assert [r["run_id"] for r in speed.details["per_run_a"]] == [r.run_id for r in seeds(BF16, BASE_ACCS[:4])]
    # Same speed, other noise draws (the factory seeds step times by path and seed): no change.
    (flat,) = by_name(compare_results(ref + seeds(XLA, BASE_ACCS[:4], step_ms=2.5)), "speed")
    assert flat.verdict == "PASS" and flat.details["changed"] is False and flat.details["decision"] == "no-change"


def test_speed_with_too_few_runs_is_inconclusive_never_faster_or_slower() -> None:
    # Three seeds each, 40 % slower in every run: below the 4 runs per side a decision needs.
    (speed,) = by_name(compare_results(seeds(CPU, BASE_ACCS[:3]) + seeds(BF16, BASE_ACCS[:3], step_ms=3.5)), "speed")
    assert speed.verdict == "WARN" and speed.details["decision"] == "inconclusive"
    assert speed.details["changed"] is False and "slower" not in speed.summary and "faster" not in speed.summary
    assert speed.details["shift"]["more_a"] == speed.details["shift"]["more_b"] == 1
    assert "1 more run of cpu-mixed_bfloat16 and 1 more run of cpu-fp32 needed" in speed.summary


def test_speed_difference_inside_run_to_run_noise_is_not_a_change() -> None:
    # Per-run medians spread by ~8 % within each group; a 5 % shift is inside that noise even though
    # thousands of step samples would make a pooled U test significant.
    medians = [2.3, 2.55, 2.8, 2.4, 2.7, 2.5]
    ref = [result(path=CPU, seed=s, step_ms=m, step_sd_frac=0.01) for s, m in enumerate(medians)]
    other = [result(path=BF16, seed=s, step_ms=1.05 * m, step_sd_frac=0.01) for s, m in enumerate(medians)]
    (speed,) = by_name(compare_results(ref + other), "speed")
    assert speed.details["changed"] is False and speed.details["p_value"] > 0.05
    assert speed.details["shift"]["sigma_observed"] > 0.05


def test_gpu_slower_than_cpu_is_flagged() -> None:
    cpu = seeds(CPU, BASE_ACCS[:4], step_ms=2.5)
    (speed,) = by_name(compare_results(cpu + seeds(GPU, BASE_ACCS[:4], step_ms=4.0)), "speed")
    assert speed.verdict == "WARN" and "GPU path slower than CPU path" in speed.summary
    assert speed.details["changed"] is True and speed.details["throughput_ratio"] < 1
    (fast,) = by_name(compare_results(cpu + seeds(GPU, BASE_ACCS[:4], step_ms=1.0)), "speed")
    assert fast.verdict == "PASS" and fast.details["throughput_ratio"] > 1


def test_memory_ratio_reported() -> None:
    ref = seeds(CPU, BASE_ACCS[:3], peak_rss_mb=1000.0)
    (mem,) = by_name(compare_results(ref + seeds(BF16, BASE_ACCS[:3], peak_rss_mb=1500.0)), "memory")
    assert mem.verdict == "PASS" and mem.details["decision"] == "higher"
    assert mem.details["peak_rss_ratio"] == pytest.approx(1.5)
    assert mem.details["peak_rss_mb_a"] == [1500.0] * 3 and mem.details["shift"]["test"] == "welch"
    # One run per side: no spread observed, nothing decided (memory needs 2 runs per side).
    (one,) = by_name(compare_results([result(path=CPU), result(path=BF16, peak_rss_mb=1500.0)]), "memory")
    assert one.verdict == "WARN" and one.details["decision"] == "inconclusive"


# --- numerics (probe payloads) ------------------------------------------------------------------


def _probe_payload(passed: bool, loss: float = 2.30, layer: str | None = None, weights: str = "w1") -> dict[str, Any]:
    return {"probe": {
        "compute_dtype": "float32", "jit_compile": False, "tolerance": {"activation": 1e-3, "gradient": 1e-3},
        "loss": loss, "loss_float64": 2.30, "loss_rel_err": 1e-7, "logits_rel_err": 1e-7,
        "first_divergent_layer": layer, "divergence": None if passed else "activation", "passed": passed,
        "initial_weights_sha256": weights, "batch_sha256": "b1",
        "layers": [{"name": "dense_1", "activation_rel_err": 1e-7, "gradient_rel_err": 2e-7}],
    }}  # fmt: skip


def test_numerics_checks_from_probe_payloads() -> None:
    fp16 = PathSpec(precision="mixed", mixed_policy="mixed_float16")
    comp = compare_results([
        result(path=CPU, mode="probe", extra=_probe_payload(True)),
        result(path=XLA, mode="probe", extra=_probe_payload(True, loss=2.3000001)),
        result(path=BF16, mode="probe", extra=_probe_payload(False, layer="bn_1")),
        result(path=fp16, mode="probe", extra=_probe_payload(True, weights="w2")),
    ])  # fmt: skip
    verdicts = {c.subject: c for c in by_name(comp, "numerics")}
    assert verdicts["batchnorm/mnist-5k: cpu-fp32 seed 0 vs float64"].verdict == "PASS"
    bad = verdicts["batchnorm/mnist-5k: cpu-mixed_bfloat16 seed 0 vs float64"]
    assert bad.verdict == "FAIL" and bad.details["first_divergent_layer"] == "bn_1"
    assert verdicts["batchnorm/mnist-5k: cpu-fp32-xla seed 0 vs cpu-fp32 (probe)"].verdict == "PASS"
    other_weights = verdicts["batchnorm/mnist-5k: cpu-mixed_float16 seed 0 vs cpu-fp32 (probe)"]
    assert other_weights.verdict == "FAIL" and other_weights.details["same_initial_weights"] is False
    # Probe runs are not training runs: no accuracy checks for them; the probes were compared.
    assert not by_name(comp, "accuracy-equivalence") and not by_name(comp, "coverage")


def test_execution_settings_are_separate_groups_never_averaged() -> None:
    # The seed way (numpy, 1 step per call) and 64 steps per execution on the same path: two groups.
    accs = [0.92, 0.93, 0.91]
    seed_way = seeds(CPU, accs, input="numpy")
    fast = seeds(CPU, accs, steps_per_execution=64)
    comp = compare_results(seed_way + fast)
    assert comp.groups == ["cpu-fp32[numpy,spe1]", "cpu-fp32[tfdata,spe64]"]
    assert comp.reference == "cpu-fp32[numpy,spe1]"
    check = acc_check(comp)
    assert check.subject.startswith("batchnorm/mnist-5k: cpu-fp32[tfdata,spe64] vs cpu-fp32[numpy,spe1]")
    assert check.details["seeds"] == [0, 1, 2]
    assert {g: (i.execution, i.runs) for g, i in comp.group_info.items()} == {
        "cpu-fp32[numpy,spe1]": ("numpy,spe1", 3),
        "cpu-fp32[tfdata,spe64]": ("tfdata,spe64", 3),
    }
    # Runs of one path with one execution setting keep the plain path name.
    assert compare_results(seed_way).groups == ["cpu-fp32"]


# --- real runs (slow) ----------------------------------------------------------------------------

# Small and quick: 1,000 training samples (800 after the validation split), 2 epochs, 2 seeds.
RUN = ("run", "--model", "batchnorm", "--dataset", "mnist-5k", "--epochs", "2", "--max-train-samples", "1000")


@pytest.fixture(scope="module")
def three_paths(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fp32, fp32+XLA and mixed bf16 (2 seeds each) plus a repeat of fp32 seed 0, one directory each."""
    root = tmp_path_factory.mktemp("paths")
    for name, extra in (("fp32", ()), ("xla", ("--xla", "on")), ("bf16", ("--precision", "mixed"))):
        proc = tfparity(*RUN, "--seeds", "2", *extra, "--results-dir", str(root / name))
        assert proc.returncode == 0, proc.stderr[-3000:]
    proc = tfparity(*RUN, "--seed", "0", "--results-dir", str(root / "repeat"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


@pytest.mark.slow
def test_compare_real_paths_verdict_table(three_paths: Path) -> None:
    dirs = [str(three_paths / n) for n in ("fp32", "xla", "bf16", "repeat")]
    proc = tfparity("compare", *dirs, "--json")
    assert proc.returncode in (0, 1), proc.stderr
    data = json.loads(proc.stdout)
    assert data["reference"] == "fp32:cpu-fp32"
    assert data["groups"] == ["fp32:cpu-fp32", "cpu-fp32-xla", "cpu-mixed_bfloat16", "repeat:cpu-fp32"]
    checks = data["checks"]
    # Exit code follows the verdict.
    assert proc.returncode == (1 if data["verdict"] == "FAIL" else 0)
    # The paths that ran are the paths asked for.
    evidence = [c for c in checks if c["name"] == "evidence"]
    assert len(evidence) == 4 and all(c["verdict"] == "PASS" for c in evidence)
    # Same spec, same machine, op determinism on: bit-identical (TF-FACTS), so a PASS.
    (det,) = [c for c in checks if c["name"] == "determinism"]
    assert det["verdict"] == "PASS" and det["details"]["identical"] is True
    # Every non-reference group gets test accuracy, curves and speed checks against the reference.
    for group in data["groups"][1:]:
        names = {c["name"] for c in checks if f": {group} vs fp32:cpu-fp32" in c["subject"]}
        assert {"accuracy-equivalence", "curves", "speed", "memory"} <= names, (group, names)
    gates = [c for c in checks if c["name"] == "relative-gate"]
    assert {c["subject"].split(": ")[1].split(" vs ")[0] for c in gates} == {"cpu-fp32-xla", "cpu-mixed_bfloat16"}
    acc = {c["subject"]: c for c in checks if c["name"] == "accuracy-equivalence"}
    repeat = acc["batchnorm/mnist-5k: repeat:cpu-fp32 vs fp32:cpu-fp32 (test_accuracy)"]
    assert repeat["verdict"] == "PASS" and repeat["details"]["exact"] is True
    # The numbers behind each verdict come from the real result files.
    bf16 = acc["batchnorm/mnist-5k: cpu-mixed_bfloat16 vs fp32:cpu-fp32 (test_accuracy)"]
    assert bf16["details"]["n_a"] == 2 and bf16["details"]["seeds"] == [0, 1]
    results = {(r.run_spec.path.name, r.run_spec.seed): r for d in dirs[:3] for r in load_results([d])}
    expected = [
        100 * (results[("cpu-mixed_bfloat16", s)].test_accuracy - results[("cpu-fp32", s)].test_accuracy)
        for s in (0, 1)
    ]
    assert bf16["details"]["mean"] == pytest.approx(sum(expected) / 2)

    table = tfparity("compare", *dirs)
    assert table.returncode == proc.returncode
    lines = table.stdout.splitlines()
    assert any(line.split() == ["VERDICT", "CHECK", "SUBJECT", "SUMMARY"] for line in lines)
    assert lines[-1].startswith(f"verdict: {data['verdict']}")


@pytest.mark.slow
def test_compare_real_results_against_themselves_as_baseline(three_paths: Path) -> None:
    fp32 = str(three_paths / "fp32")
    proc = tfparity("compare", fp32, "--baseline", fp32, "--gate", "throughput:-5%", "--gate", "test_accuracy:-0.5pp",
                    "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    regressions = [c for c in json.loads(proc.stdout)["checks"] if c["name"] == "regression"]
    assert len(regressions) == 2 and all(c["details"]["regression"] is False for c in regressions)
    assert {c["details"]["gate"] for c in regressions} == {"throughput:-5%", "test_accuracy:-0.5pp"}
    bad = tfparity("compare", fp32, "--baseline", fp32, "--gate", "throughput:5pp")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "throughput is gated in '%'" in bad.stderr


def _probe_result(tmp: Path, path: PathSpec) -> Path:
    spec = RunSpec(benchmark="batchnorm", dataset="mnist-5k", path=path, seed=0, mode="probe")
    (tmp / "specs").mkdir(exist_ok=True)  # result_files() skips specs/ (as the backends lay it out)
    spec_file = tmp / "specs" / f"{spec.run_id}.json"
    spec_file.write_text(json.dumps(spec.to_dict()))
    out = tmp / f"{spec.run_id}.json"
    proc = subprocess.run([sys.executable, "-m", "harness.worker", str(spec_file), str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return out


@pytest.mark.slow
def test_probe_through_worker_fp32_and_bf16(tmp_path: Path) -> None:
    files = [_probe_result(tmp_path, PathSpec()), _probe_result(tmp_path, PathSpec(precision="mixed"))]
    payload = load_result(files[0]).extra["probe"]
    assert payload["passed"] is True and payload["compute_dtype"] == "float32"
    assert payload["layers"][0]["name"] == "dense_1"
    proc = tfparity("compare", str(tmp_path), "--json")
    assert proc.stdout, proc.stderr
    data = json.loads(proc.stdout)
    numerics = {c["subject"]: c for c in data["checks"] if c["name"] == "numerics"}
    assert numerics["batchnorm/mnist-5k: cpu-fp32 seed 0 vs float64"]["verdict"] == "PASS"
    assert numerics["batchnorm/mnist-5k: cpu-mixed_bfloat16 seed 0 vs float64"]["verdict"] == "PASS"
    cross = numerics["batchnorm/mnist-5k: cpu-mixed_bfloat16 seed 0 vs cpu-fp32 (probe)"]
    assert cross["verdict"] == "PASS" and cross["details"]["same_initial_weights"] is True
    assert proc.returncode == 0


def test_gpu_allocator_peak_compared_between_gpu_groups_only() -> None:
    fp32 = seeds(GPU, BASE_ACCS[:3], tf_peak_mb=2000.0)
    tf32 = seeds(GPU_TF32, BASE_ACCS[:3], tf_peak_mb=2400.0)
    (mem,) = by_name(compare_results(fp32 + tf32, reference="gpu-fp32"), "gpu-memory")
    assert mem.verdict == "PASS" and mem.subject == "batchnorm/mnist-5k: gpu-tf32 vs gpu-fp32"
    assert mem.details["gpu_peak_ratio"] == pytest.approx(1.2) and mem.details["gpu_peak_mb_b"] == [2000.0] * 3
    # One value per run, Welch t on ln values like peak RSS: 3 runs each decide a 20 % difference here.
    assert mem.details["changed"] is True and mem.details["decision"] == "higher" and mem.details["ci_low"] > 1.0
    # Against the CPU reference there is no GPU allocator to compare.
    assert by_name(compare_results(seeds(CPU, BASE_ACCS[:3]) + fp32), "gpu-memory") == []


def _defined(r: Any, sha: str | None, version: str | None = "1.0") -> Any:
    from harness.store.results import BenchmarkInfo

    return dataclasses.replace(r, benchmark=BenchmarkInfo("tiny", "file", "/p/tiny.py:TINY", sha, version, "host"))


def test_results_of_different_benchmark_definitions_are_refused_in_one_line() -> None:
    fp32 = [result("batchnorm", seed=s, test_acc=0.92) for s in range(2)]
    xla = [result("batchnorm", path=XLA, seed=s, test_acc=0.92) for s in range(2)]
    same = [_defined(r, "aa" * 32) for r in fp32 + xla]
    assert compare_results(same).verdict.value in ("PASS", "WARN")
    # Results written before definitions were recorded are not refused (nothing to tell them apart by).
    compare_results([*same[:2], *xla])
    with pytest.raises(CompareError) as exc:
        compare_results([_defined(r, "aa" * 32) for r in fp32] + [_defined(r, "bb" * 32) for r in xla])
    message = str(exc.value)
    assert "\n" not in message and message.startswith("benchmark definitions differ for batchnorm/mnist-5k:")
    assert "(sha256 aaaaaaaaaaaa), cpu-fp32-xla seed 0 ran /p/tiny.py:TINY (sha256 bbbbbbbbbbbb)" in message
    # Without a source hash (a module without a file), the versions decide.
    with pytest.raises(CompareError, match=r"\(version 1.0\).*\(version 2.0\)"):
        compare_results([_defined(r, None) for r in fp32] + [_defined(r, None, "2.0") for r in xla])


def test_paths_that_agree_at_chance_level_are_inconclusive_not_equivalent() -> None:
    # A model that did not learn (cnn_batchnorm on a short run: 0.100 everywhere) agrees with itself on
    # every path; that agreement says nothing about parity.
    stuck = [0.100, 0.101, 0.099, 0.100, 0.100]
    comparison = compare_results(seeds(CPU, stuck) + seeds(XLA, stuck), reference="cpu-fp32")
    accuracy = by_name(comparison, "accuracy-equivalence")
    assert accuracy and all(c.verdict == "WARN" and c.details["at_chance"] for c in accuracy)
    assert all(
        c.summary.startswith("INCONCLUSIVE: cpu-fp32-xla test accuracy 0.100 at chance (0.100)") for c in accuracy
    )
    assert comparison.verdict.value == "WARN"
    # The same agreement on a model that learned is a PASS.
    learned = compare_results(seeds(CPU, BASE_ACCS[:5]) + seeds(XLA, BASE_ACCS[:5]), reference="cpu-fp32")
    assert {c.verdict.value for c in by_name(learned, "accuracy-equivalence")} == {"PASS"}
