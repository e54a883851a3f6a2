"""benchmarks/perf.py and harness/worker/fastloop.py: real processes, real TensorFlow, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import perf, perf_report
from harness.spec.run_spec import PathSpec
from tests.helpers import ROOT

PERF = ROOT / "benchmarks" / "perf.py"

# Trains the same tiny experiment with model.fit and with fastloop.fit in one process (seed reset
# before each), for both input modes; prints the four histories and the step-timer coverage.
FASTLOOP_VS_FIT = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras, tensorflow as tf
from harness import data
from harness.spec.run_spec import RunSpec
from harness.worker import fastloop, pipeline
from harness.worker.metrics import StepRecord, make_step_timer
from harness.worker.models import build_model

tf.config.experimental.enable_op_determinism()
ds = data.load("mnist-5k")
out = {}
for inp in ("numpy", "tfdata"):
    # 1010 samples: 808 train (25 full batches + 8) and 202 validation (6 full + 10): partial batches.
    spec = RunSpec(dataset="mnist-5k", epochs=3, steps_per_execution=8, max_train_samples=1010, input=inp, seed=3)
    for loop in ("fit", "compiled"):
        keras.utils.set_random_seed(spec.seed)
        model = build_model(spec)
        record = StepRecord()
        if loop == "fit":
            kwargs, _, _ = pipeline.fit_kwargs(ds.x_train, ds.y_train, spec)
            history = model.fit(epochs=spec.epochs, verbose=0, callbacks=[make_step_timer(record)], **kwargs)
        else:
            parts = pipeline.split_train_val(ds.x_train, ds.y_train, spec)
            history = fastloop.fit(model, parts.x_train, parts.y_train, batch_size=spec.batch_size,
                                   epochs=spec.epochs, seed=spec.seed, steps_per_execution=spec.steps_per_execution,
                                   order=inp, validation_data=(parts.x_val, parts.y_val),
                                   callbacks=[make_step_timer(record)])
        out[f"{inp}-{loop}"] = {"history": history.history, "steps": sum(record.steps_covered),
                                "samples": len(record.step_time_ms), "weights": float(sum(
                                    float(tf.reduce_sum(w)) for w in model.trainable_weights))}
print(json.dumps(out))
"""


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip


# --- pure parts (no TensorFlow) ----------------------------------------------------------------


def test_fast_configuration_keeps_the_experiment_and_sets_xla_and_loop() -> None:
    """(c) and (a) of one round are the same experiment; only how the loop executes differs."""
    args = perf.parse_args(["--epochs", "10", "--overhead-epochs", "2"])
    specs = perf.make_specs(args, seed=2)
    seed, fast = specs["seed"], specs["fast"]
    assert fast.hyperparameters == seed.hyperparameters  # same experiment
    assert fast.seed == seed.seed == 2 and fast.batch_size == 32 and fast.epochs == seed.epochs == 10
    assert fast.path == PathSpec(xla=True) and fast.deterministic_ops is False
    assert fast.input == seed.input == "numpy"  # the seed script's data order
    assert fast.loop == "compiled" and seed.loop == "fit"
    assert (seed.input, seed.steps_per_execution, seed.path.xla) == ("numpy", 1, False)
    # (b) and (d) share one spec: the harness defaults, a short run.
    assert specs["harness"] == specs["bare"]
    harness = specs["harness"]
    assert (harness.input, harness.steps_per_execution, harness.loop, harness.epochs) == ("tfdata", 1, "fit", 2)
    assert harness.deterministic_ops is True and harness.path == PathSpec()


def test_flops_per_training_sample_matches_the_issue() -> None:
    flops = perf_report.flops_per_training_sample()
    assert flops["forward"] == 2 * (784 * 128 + 128 * 64 + 64 * 10)
    assert flops["training_3x_forward"] == pytest.approx(0.655e6, rel=0.01)  # "~0.65 MFLOP per sample"
    assert flops["training_exact"] < flops["training_3x_forward"]


def _fake_runs() -> list[dict[str, Any]]:
    runs = []
    rates = {"seed": [8000, 9000, 8500], "harness": [9800, 9000, 9900], "fast": [40000, 45000, 36000],
             "bare": [10000, 9100, 10000]}  # fmt: skip
    for rnd in range(3):
        for config in perf_report.CONFIGS:
            runs.append({"config": config, "round": rnd + 1, "seed": rnd, "steady_samples_per_s": rates[config][rnd],
                         "test_accuracy": {"seed": 0.870, "fast": 0.874}.get(config, 0.86) + rnd / 100,
                         "peak_rss_mb": {"seed": 1300.0, "fast": 1250.0}.get(config),
                         "epoch_time_s": [9.0, 5.0, 5.0] if config != "harness" else [9.0, 5.1, 5.1],
                         "train_time_s": 50.0 if config == "seed" else 12.5, "n_test": 10000})  # fmt: skip
    return runs


def _fake_probe() -> dict[str, Any]:
    return {
        "matmul": {"square_n": 1024, "square_flops_per_s": 100e9, "step_shape_flops_per_s": 80e9},
        "input": {"tfdata": {"samples_per_s": 190_000.0}, "numpy_adapter": {"samples_per_s": 260_000.0},
                  "chunk_gather": {"samples_per_s": 300_000.0}},
        "instrument_cost": {"step_timer_us_per_step": 0.5, "rss_sampler_fraction_of_one_core": 0.0004},
    }  # fmt: skip


def test_summary_ratios_are_medians_of_per_round_ratios() -> None:
    s = perf_report.summarize(_fake_runs(), None, None)
    assert s["fast_over_seed"]["per_round"] == pytest.approx([5.0, 5.0, 36000 / 8500])
    assert s["fast_over_seed"]["median"] == pytest.approx(5.0)
    assert s["harness_overhead"]["per_round"] == pytest.approx([0.02, 0.1 / 9.1, 0.01])
    assert s["harness_overhead"]["median"] == pytest.approx(0.1 / 9.1)
    assert s["harness_overhead_whole_epochs"]["median"] == pytest.approx(0.2 / 10.2)
    assert s["accuracy"]["diff_pp"] == pytest.approx([0.4, 0.4, 0.4])
    assert s["accuracy"]["seed_to_seed_sd_pp"] == pytest.approx(1.0)
    assert s["memory"]["fast_over_seed"] == pytest.approx(1250 / 1300)
    assert s["goals"]["fast_over_seed >= 4x"]["met"] is True
    assert s["goals"]["harness overhead <= 2 %"]["met"] is True
    assert s["goals"]["|mean test-accuracy diff (c - a)| <= 0.5 pp"]["met"] is True


def test_accuracy_goal_needs_three_seeds() -> None:
    runs = [r for r in _fake_runs() if r["round"] <= 2]
    s = perf_report.summarize(runs, None, None)
    assert s["accuracy"]["seeds"] == [0, 1]
    assert s["goals"]["|mean test-accuracy diff (c - a)| <= 0.5 pp"]["met"] is False


def test_probe_and_paired_figures_and_their_goals() -> None:
    paired = {"overhead_per_pair": [0.01, -0.02, 0.03], "overhead_median": 0.01, "overhead_mean": 0.02 / 3,
              "window_steps": 300}  # fmt: skip
    s = perf_report.summarize(_fake_runs(), _fake_probe(), None, paired)
    med = s["median_steady_samples_per_s"]
    assert med == {"seed": 8500, "harness": 9800, "fast": 40000, "bare": 10000}
    assert s["fraction_of_peak"]["fast"] == pytest.approx(40000 * s["flops_per_training_sample"]["training_3x_forward"]
                                                          / 100e9)  # fmt: skip
    gather = s["input_over_training"]["chunk_gather"]
    assert (gather["feeds"], gather["ratio"]) == ("fast", pytest.approx(300_000 / 40000))
    assert s["input_over_training"]["tfdata"]["ratio"] == pytest.approx(190_000 / 9800)
    assert s["goals"]["input chunk_gather >= 10 x fast training"]["met"] is False  # 7.5x
    assert s["goals"]["input tfdata >= 10 x harness training"]["met"] is True
    est = s["harness_overhead_from_instrument_cost"]
    assert est["estimate"] == pytest.approx(0.5 / (1e6 * 32 / 9800) + 0.0004)
    assert s["harness_overhead_paired_in_process"]["per_pair"] == [0.01, -0.02, 0.03]
    assert s["goals"]["harness overhead (paired in-process) <= 2 %"]["met"] is True


def test_markdown_table_names_every_configuration_ratio_and_goal() -> None:
    runs = _fake_runs()
    paired = {"overhead_per_pair": [0.05], "overhead_median": 0.05, "overhead_mean": 0.05, "window_steps": 300}
    report = {"finished_utc": "2026-11-25T03:00:00Z", "command": "python benchmarks/perf.py", "runs": runs,
              "machine": {"cpu_model": "AMD EPYC", "cpu_count": 2}, "load_average": {"min": 1.0, "max": 2.5},
              "settings": {"model": "batchnorm", "dataset": "fashion-mnist", "epochs": 10, "overhead_epochs": 2,
                           "rounds": 3},
              "probe": _fake_probe(), "dataset_note": perf_report.dataset_note("fashion-mnist", 10),
              "summary": perf_report.summarize(runs, _fake_probe(), None, paired)}  # fmt: skip
    md = perf_report.render_markdown(report)
    for label in perf_report.LABELS.values():
        assert f"| {label} |" in md
    assert "| fast / seed samples/s | 5.000 | 5.000, 5.000, 4.235 | >= 4 | yes |" in md
    assert "| harness overhead, paired in one process | 0.050 | 0.050 | <= 0.02 | NO |" in md
    assert "| input chunk_gather / fast training | 7.5 | 300,000 / 40,000 samples/s | >= 10 | NO |" in md
    assert "Matmul peak (1024^2 fp32): 100.00 GFLOP/s" in md
    assert "load average 1.0-2.5 during the runs" in md and md.endswith("\n")


def test_bad_flag_is_one_line_exit_2_before_any_run(tmp_path: Path) -> None:
    proc = _run([str(PERF), "--out", str(tmp_path), "--epochs", "1"], timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "perf: error: --epochs must be >= 2, got 1"
    assert list(tmp_path.iterdir()) == []


# --- real TensorFlow ---------------------------------------------------------------------------


@pytest.mark.slow
def test_fastloop_reproduces_model_fit_exactly_without_xla() -> None:
    """Same data order, same steps, same metrics: bit-identical histories and weights for both inputs."""
    proc = _run(["-c", FASTLOOP_VS_FIT], timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for inp in ("numpy", "tfdata"):
        fit, compiled = out[f"{inp}-fit"], out[f"{inp}-compiled"]
        assert compiled["history"] == fit["history"], inp
        assert compiled["weights"] == fit["weights"], inp
        assert set(compiled["history"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        # The step timer saw every step exactly once (26 per epoch: 25 full batches + the partial one),
        # in 3 chunks of 8 + 1 of 1 + the partial batch = 5 samples per epoch. (model.fit reports
        # end_step = begin + steps_per_execution - 1 for its last, shorter execution too, so there
        # the timer counts 32 steps per epoch.)
        assert compiled["steps"] == 3 * 26
        assert compiled["samples"] == 3 * 5
    # The two input modes draw different orders (numpy: Keras's array adapter; tfdata: Dataset.shuffle).
    assert out["numpy-fit"]["history"] != out["tfdata-fit"]["history"]


@pytest.mark.slow
def test_perf_smoke_runs_all_four_configurations(tmp_path: Path) -> None:
    """A tiny `make perf`: real worker processes for (a)-(c), a bare process for (d), JSON and Markdown.

    The timeout is generous on purpose: under a busy CI machine this takes 5-10 times its idle time."""
    proc = _run([str(PERF), "--out", str(tmp_path), "--dataset", "mnist-5k", "--max-train-samples", "400",
                 "--epochs", "2", "--overhead-epochs", "2", "--seeds", "1", "--skip-probe", "--pairs", "1"],
                timeout=1800)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    (json_path,) = tmp_path.glob("perf-*.json")
    report = json.loads(json_path.read_text())
    runs = {r["config"]: r for r in report["runs"]}
    assert set(runs) == set(perf_report.CONFIGS)
    for config, r in runs.items():
        assert r["steady_samples_per_s"] > 0, config
        assert 0.0 <= r["test_accuracy"] <= 1.0, config
    # What ran is what each configuration claims, read back from TensorFlow by the worker / bare run.
    assert runs["fast"]["jit_compile"] is True and runs["fast"]["deterministic_ops"] is False
    assert runs["fast"]["steps_per_execution"] == 64 and runs["fast"]["input"] == "numpy"
    assert runs["seed"]["jit_compile"] is False and runs["seed"]["steps_per_execution"] == 1
    assert runs["harness"]["input"] == runs["bare"]["input"] == "tfdata"
    assert runs["bare"]["jit_compile"] is False and runs["bare"]["deterministic_ops"] is True
    assert runs["bare"]["peak_rss_mb"] is None  # no sampler in the bare run
    for config in ("seed", "harness", "fast"):
        result = json.loads(Path(runs[config]["result_file"]).read_text())
        assert result["status"] == "ok" and result["evidence"]["jit_compile"] == runs[config]["jit_compile"]
    summary = report["summary"]
    assert summary["accuracy"]["seeds"] == [0]
    assert summary["fast_over_seed"]["per_round"] == [
        pytest.approx(runs["fast"]["steady_samples_per_s"] / runs["seed"]["steady_samples_per_s"])]  # fmt: skip
    md = json_path.with_suffix(".md").read_text()
    assert "| fast / seed samples/s |" in md and "| harness overhead (d - b) / d |" in md
    assert "fast / seed samples/s" in proc.stdout  # the table is printed too
    # The paired check ran in its own child and its figure reached the summary and the table.
    assert len(report["paired_overhead"]["overhead_per_pair"]) == 1
    assert "| harness overhead, paired in one process |" in md
    # Both report files are written atomically: no temporary file is left behind.
    files = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert files == [json_path.name, json_path.with_suffix(".md").name]
