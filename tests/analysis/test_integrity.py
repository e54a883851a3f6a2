"""GPU throttling and the numerics evidence as compare sees them: a WARN with the reasons, never a FAIL."""

from __future__ import annotations

import dataclasses

from harness.analysis.compare import compare_results
from harness.analysis.integrity import check_throttling
from harness.analysis.samples import label_runs
from harness.store.telemetry import Telemetry
from tests.factories import CPU, GPU, GPU_TF32, gpu_telemetry, result, seeds

ACCS = [0.920, 0.905, 0.931]
POWER_CAP, HW_THERMAL, IDLE = 0x4, 0x40, 0x1


def _throttling(results):
    return [c for c in compare_results(results).checks if c.name == "throttling"]


def test_throttled_gpu_run_is_flagged_with_its_reasons() -> None:
    calm = result(path=GPU, seed=0, telemetry=gpu_telemetry(reasons=[0, IDLE, 0, 0]))
    hot = result(path=GPU, seed=1, telemetry=gpu_telemetry(reasons=[0, POWER_CAP, POWER_CAP | HW_THERMAL, 0]))
    (check,) = _throttling([*seeds(CPU, ACCS[:2]), calm, hot])
    assert check.verdict == "WARN" and check.subject == "gpu-fp32"
    assert check.details["throttled"] == {hot.run_id: {"hw_thermal_slowdown": 0.25, "sw_power_cap": 0.5}}
    assert check.details["reasons"] == {"hw_thermal_slowdown": 0.25, "sw_power_cap": 0.5}
    assert "1 of 2 GPU run(s) throttled" in check.summary and "sw_power_cap (up to 50% of samples)" in check.summary


def test_unthrottled_gpu_runs_pass_and_cpu_groups_have_no_check() -> None:
    runs = seeds(CPU, ACCS) + seeds(GPU, ACCS, telemetry=gpu_telemetry(reasons=[IDLE, 0, 0]))
    (check,) = _throttling(runs)
    assert check.verdict == "PASS" and check.subject == "gpu-fp32" and check.details["throttled"] == {}


def test_throttling_outside_the_window_does_not_count() -> None:
    # Throttled while loading data, before the training loop started (sample 0).
    t = dataclasses.replace(gpu_telemetry(reasons=[HW_THERMAL, 0, 0, 0]), window_start_sample=1)
    assert check_throttling("g", label_runs([result(path=GPU, telemetry=t)])).verdict == "PASS"


def test_gpu_run_without_samples_is_unknown_not_fine() -> None:
    blind = Telemetry(unavailable="NVML: NVML Shared Library Not Found; nvidia-smi: not found")
    (check,) = _throttling([result(path=GPU, telemetry=blind), result(path=GPU, seed=1, with_telemetry=False)])
    assert check.verdict == "WARN"
    assert sorted(check.details["unknown"].values()) == [
        "NVML: NVML Shared Library Not Found; nvidia-smi: not found",
        "no clocks-event reasons recorded",
    ]


def test_tf32_group_is_gated_against_its_gpu_fp32_sibling_and_says_tf32() -> None:
    comp = compare_results(seeds(GPU, ACCS) + seeds(GPU_TF32, ACCS), reference="gpu-fp32")
    (gate,) = [c for c in comp.checks if c.name == "relative-gate"]
    assert gate.subject == "batchnorm/mnist-5k: gpu-tf32 vs gpu-fp32" and gate.verdict == "PASS"
    evidence = {c.subject: c for c in comp.checks if c.name == "evidence"}
    assert evidence["gpu-tf32"].verdict == "PASS" and evidence["gpu-tf32"].summary.endswith("TF32 on")
    assert evidence["gpu-fp32"].summary.endswith("TF32 off")


def test_fp32_result_that_ran_with_tf32_fails_evidence() -> None:
    leaked = seeds(GPU, ACCS, evidence_overrides={"tensor_float_32": True})
    comp = compare_results(seeds(CPU, ACCS) + leaked)
    (check,) = [c for c in comp.checks if c.name == "evidence" and c.subject == "gpu-fp32"]
    assert check.verdict == "FAIL" and comp.verdict == "FAIL"
    assert "TensorFloat-32 execution is on, asked for off" in check.details["problems"][0]
