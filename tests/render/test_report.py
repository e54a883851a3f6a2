"""The report: its model (rows, claims, provenance, figures) and its Markdown and HTML renderings.

Results come from the one factory with known numbers, so every expected value below can be
computed by hand; the verdict comes from the real compare.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from harness.analysis.checks import Check, Comparison
from harness.analysis.compare import compare_results
from harness.render.html import report_html
from harness.render.markdown import report_markdown
from harness.render.report import (
    answer_sentence,
    build_report,
    checks_table,
    claims_table,
    failed_table,
    rows_table,
    sorted_checks,
)
from harness.render.table import Table
from harness.store.telemetry import Telemetry
from tests.factories import BF16, CPU, GPU, GPU_MIXED, SHA, XLA, gpu_telemetry, png_size, result, seed_suite
from tests.helpers import ROOT

SYNTHETIC_TAG = "synthetic data"


def by_header(table: Table) -> list[dict[str, str]]:
    """A table's rows as {header: cell text}."""
    return [dict(zip(table.headers, (c.text for c in row), strict=True)) for row in table.cells()]


# --- the report model ----------------------------------------------------------------------------


def test_single_run_gets_a_wilson_interval_and_no_throughput_interval() -> None:
    # Rule changed: a single run's steps are not independent samples of the run-to-run noise, so its
    # throughput gets no interval (it used to get one "from the spread of its steady step times").
    run = result("baseline", throughput=10_000.0, n_steps=600)
    (row,) = build_report([run], None, with_figures=False).rows
    # One value per run: batch x 1000 / the p25 of its steady step times (log-normal, SD 2 %, around 3.2 ms).
    p25 = float(np.percentile(run.timing.step_time_ms[100:], 25))
    assert row.throughput.n == 1 and row.throughput.mean == pytest.approx(32_000.0 / p25)
    assert row.throughput.mean == pytest.approx(10_000.0 * 1.0136, rel=0.005)  # exp(0.6745 x 0.02) above the median
    assert row.throughput.ci_low is None and row.throughput.ci_half is None
    assert row.test_accuracy.method == "wilson"
    assert row.test_accuracy.ci_low < 0.92 < row.test_accuracy.ci_high


def test_per_path_table_reports_mean_and_ci_over_seeds() -> None:
    results = [result("baseline", seed=s, val_acc=0.93, test_acc=acc, throughput=thr, step_sd_frac=0.0)
               for s, acc, thr in ((0, 0.90, 9000.0), (1, 0.92, 9500.0), (2, 0.94, 10000.0))]  # fmt: skip
    results.append(
        result("baseline", seed=3, status="failed", error="RuntimeError: injected fault in epoch 2\nTraceback ...")
    )
    rep = build_report(results, None, with_figures=False)
    (row,) = rep.rows
    assert (row.group, row.benchmark, row.seeds, row.n_failed) == ("cpu-fp32", "baseline", [0, 1, 2], 1)
    half = 4.302652729911275 * 0.02 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert row.test_accuracy.mean == pytest.approx(0.92) and row.test_accuracy.ci_half == pytest.approx(half)
    assert row.throughput.mean == pytest.approx(9500.0)
    assert row.throughput.ci_half == pytest.approx(4.302652729911275 * 500 / math.sqrt(3))
    assert row.gap.mean == pytest.approx(0.99 - 0.93)
    (cells,) = by_header(rows_table(rep.rows))
    assert cells["seeds"] == "3 (+1 failed)"
    assert cells["test accuracy ± 95 % CI"] == f"0.9200 ± {half:.4f}"
    assert cells["steady throughput (samples/s) ± 95 % CI"] == "9,500 ± 1,242"
    (failed,) = by_header(failed_table(rep.failed))
    assert (failed["status"], failed["error"]) == (
        "failed",
        "RuntimeError: injected fault in epoch 2",
    )  # first line only


def test_synthetic_runs_are_flagged_wherever_shown() -> None:
    rep = build_report(seed_suite(paths=(CPU,), dataset="synthetic"), None, with_figures=False)
    assert rep.any_synthetic
    assert [row[2].tag for row in rows_table(rep.rows).cells()] == [SYNTHETIC_TAG] * 2
    assert [row[0].tag for row in claims_table(rep.claims).cells()] == [SYNTHETIC_TAG] * 3
    (answer,) = rep.answers
    assert answer.flags and all(flag in answer_sentence(answer) for flag in answer.flags)
    assert "> **Synthetic data**" in report_markdown(rep)
    assert report_html(rep).count('<span class="tag synthetic">synthetic data</span>') >= 2 + 3 + 1
    # and a real-data report says nothing of the kind
    real = build_report(seed_suite(paths=(CPU,)), None, with_figures=False)
    assert not real.any_synthetic
    assert "synthetic" not in report_markdown(real).lower()


def test_the_seed_question_is_answered_yes_only_with_enough_seeds() -> None:
    one = build_report(seed_suite(paths=(CPU, XLA), seeds=(0,)), None, with_figures=False)
    (answer,) = one.answers
    needed = answer.seeds_needed
    assert answer.answer == "not established" and needed is not None and needed > 1
    sentence = answer_sentence(answer)
    assert sentence.startswith(f"mnist-5k: **Not established** with 1 seed; need {needed}")
    assert "**Yes**" not in sentence and "cpu-fp32, cpu-fp32-xla" in sentence
    holds = {(row["path"], row["claim"]): row["holds"] for row in by_header(claims_table(one.claims))}
    assert "yes" not in holds.values()
    # Three seeds, BN's gap smaller by the same amount on each: established on both paths.
    three = build_report(seed_suite(paths=(CPU, XLA), seeds=(0, 1, 2)), None, with_figures=False)
    (answer,) = three.answers
    assert answer.answer == "yes" and answer.yes == ["cpu-fp32", "cpu-fp32-xla"]
    assert answer_sentence(answer) == "mnist-5k: **Yes** — BN's gap is smaller beyond seed noise on every path (2/2)."


def test_provenance_table_lists_build_devices_image_dataset_commit() -> None:
    env = {"backend": "docker", "container_image": "tfparity:gpu", "image_id": "sha256:" + "ab" * 32,
           "tensorflow_version": "2.21.0", "keras_version": "3.15.1",
           "tf_build_info": {"is_cuda_build": True, "cuda_version": "12.5.1", "cudnn_version": "9"},
           "python_version": "3.11.7", "platform": "Linux", "cpu_model": "Xeon", "cpu_count": 8,
           "gpus": [{"name": "NVIDIA L4", "driver": "550.54.15"}], "hostname": "gpu-1",
           "git_commit": "fedcba9876543210", "env": {}}  # fmt: skip
    rep = build_report([result(path=CPU), result(path=GPU_MIXED, env=env)], None, with_figures=False)
    table = rep.provenance
    assert table is not None and list(table.headers) == ["", "cpu-fp32", "gpu-mixed_float16"]
    prov = {row[0].text: dict(zip(table.headers[1:], (c.text for c in row[1:]), strict=True)) for row in table.cells()}
    gpu = {name: values["gpu-mixed_float16"] for name, values in prov.items()}
    assert gpu["TF build"] == "CUDA 12.5.1, cuDNN 9"
    assert "NVIDIA L4 (driver 550.54.15)" in gpu["devices"]
    assert gpu["image id"] == "sha256:abababababab"
    assert gpu["container image"] == "tfparity:gpu"
    assert gpu["git commit"] == "fedcba987654"
    assert gpu["dataset (sha256)"] == f"mnist-5k {SHA[:12]}"
    assert prov["TF build"]["cpu-fp32"] == "CPU build (no CUDA)"


# --- rendering -----------------------------------------------------------------------------------


def test_verdict_section_comes_first_and_uses_the_real_comparison() -> None:
    # The XLA path loses 8 points of test accuracy on every seed: compare must FAIL it.
    results = seed_suite(paths=(CPU,)) + [
        result(b, path=XLA, seed=s, epochs=5, final_train=0.99, val_acc=0.86 + 0.01 * s, test_acc=0.84 + 0.01 * s)
        for s in (0, 1, 2) for b in ("baseline", "batchnorm")
    ]  # fmt: skip
    comparison = compare_results(results)
    assert comparison.verdict == "FAIL"
    rep = build_report(results, comparison)
    assert rep.verdict == "FAIL"
    ordered = sorted_checks(comparison)  # FAIL checks are listed before WARN and PASS
    assert [c.verdict.rank for c in ordered] == sorted((c.verdict.rank for c in ordered), reverse=True)
    first = by_header(checks_table(ordered))[0]
    assert (first["verdict"], first["check"]) == ("FAIL", ordered[0].name)
    md = report_markdown(rep)
    assert md.index("## Verdict: **FAIL**") < md.index("## Per-path results") < md.index("## The seed experiment")
    page = report_html(rep)
    assert '<span class="verdict FAIL" id="verdict-value">Verdict: FAIL</span>' in page
    assert f"{comparison.counts()['PASS']} PASS check(s)" in page  # PASS checks folded away


def test_html_is_self_contained_and_embeds_every_figure() -> None:
    rep = build_report(seed_suite(paths=(CPU, XLA, BF16)), None)
    page = report_html(rep)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page
    srcs = re.findall(r'src="([^"]+)"', page)
    assert len(srcs) == len(rep.figures) == 4
    for src, fig in zip(srcs, rep.figures, strict=True):
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1])
        assert data == fig.png
        width, height = png_size(data)
        assert width > 300 and height > 100


def test_text_is_escaped_in_html_and_markdown() -> None:
    check = Check("evidence", "FAIL", "a|b", "<img src=x onerror=alert(1)> | pipe")
    comparison = Comparison(reference="cpu-fp32", groups=["cpu-fp32"], checks=[check], margin_pp=1.0)
    rep = build_report([result()], comparison, with_figures=False)
    page = report_html(rep)
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "a\\|b" in report_markdown(rep)


def test_report_modules_import_without_tensorflow_or_matplotlib() -> None:
    """The TF-free core: importing the report, its renderers and plots loads neither TF nor matplotlib (lazy)."""
    modules = ("harness.render.report", "harness.render.html", "harness.render.markdown", "harness.render.figures",
               "harness.render.plots", "harness.analysis.history")  # fmt: skip
    code = (f"import sys, importlib; [importlib.import_module(m) for m in {modules!r}]; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules))")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_provenance_shows_gpu_facts_training_telemetry_and_throttling() -> None:
    hot = gpu_telemetry(reasons=[0, 0x4, 0x4, 0x0], watts=200.0, interval_s=0.5)
    cpu_facts = Telemetry(unavailable="CPU path: GPUs are not sampled", cpu_governors=["performance"], cpu_boost=False)
    cpu = result(path=CPU, telemetry=cpu_facts)
    trained = dataclasses.replace(result(path=GPU, telemetry=hot), n_train_used=3200)
    rep = build_report([cpu, trained], compare_results([cpu]), with_figures=False)
    table = rep.provenance
    prov = {row[0].text: dict(zip(table.headers[1:], (c.text for c in row[1:]), strict=True)) for row in table.cells()}
    gpu = {name: values["gpu-fp32"] for name, values in prov.items()}
    assert gpu["GPU (NVML / nvidia-smi)"] == "NVIDIA A100-SXM4-80GB (GPU-513536b6…, cc 8.0, 81920 MB)"
    assert gpu["GPU driver"] == "535.54.03 (CUDA 12.2; read through nvml)"
    assert gpu["GPU settings"] == (
        "power limit 400 W, persistence on, ECC on, application clocks n/a, max clocks 1410/1593 MHz"
    )
    # 3 intervals of 0.5 s at 200 W = 300 J for 3,200 samples x 3 epochs = 32 samples/J.
    assert gpu["GPU during training (per run)"] == (
        "SM 1410 MHz, util 97 %, mem 2600 MB, 63 °C max, 200 W mean, 300 J (32.0 samples/J)"
    )
    assert gpu["GPU throttling (share of samples)"] == "sw_power_cap 50%"
    # Every GPU field of the CPU path is n/a; its CPU settings are shown.
    assert prov["GPU (NVML / nvidia-smi)"]["cpu-fp32"] == "n/a" and prov["GPU driver"]["cpu-fp32"] == "n/a"
    assert prov["CPU power"]["cpu-fp32"] == "governor performance, boost off"
    md = report_markdown(rep, {})
    assert "sw_power_cap 50%" in md and "NVIDIA A100-SXM4-80GB" in md
    assert "sw_power_cap 50%" in report_html(rep)
