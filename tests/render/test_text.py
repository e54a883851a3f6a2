"""Terminal text: compare's table and JSON, the history table's skipped entries."""

from __future__ import annotations

import json

from harness.analysis.compare import compare_results
from harness.analysis.history import History
from harness.render.text import comparison_json, comparison_text, history_text, result_text
from harness.store.telemetry import Telemetry
from tests.factories import BF16, CPU, GPU, GPU_TF32, gpu_telemetry, result, seeds

ACCS = [0.920, 0.905, 0.931]


def test_comparison_table_and_json_render_every_check() -> None:
    comp = compare_results(seeds(CPU, ACCS) + seeds(BF16, ACCS))
    lines = comparison_text(comp).splitlines()
    assert lines[0].startswith("tfparity compare: reference cpu-fp32")
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["VERDICT"])
    assert lines[header].split() == ["VERDICT", "CHECK", "SUBJECT", "SUMMARY"]
    rows = [line.split()[:2] for line in lines[header + 2 :] if line.split()[:1] in (["PASS"], ["WARN"], ["FAIL"])]
    assert rows == [[c.verdict.value, c.name] for c in comp.checks]  # one line per check, in order
    assert lines[-1].startswith(f"verdict: {comp.verdict.value}")
    data = json.loads(comparison_json(comp))
    assert data["reference"] == "cpu-fp32" and data["verdict"] == comp.verdict.value
    assert data["checks"] == [c.to_dict() for c in comp.checks]
    assert set(data["checks"][0]) == {"name", "verdict", "subject", "summary", "details"}
    assert data["group_info"]["cpu-mixed_bfloat16"]["runs"] == 3


def test_history_text_names_the_skipped_entries() -> None:
    h = History(root="h", skipped=[("20261119T021700Z-nightly", "x.json is not valid JSON")])
    lines = history_text(h, []).splitlines()
    assert lines[0] == "history h: 0 entries, 1 skipped"
    assert lines[-1] == "skipped 20261119T021700Z-nightly: x.json is not valid JSON"


def test_show_prints_gpu_facts_throttling_and_tf32() -> None:
    text = result_text(result(path=GPU_TF32, telemetry=gpu_telemetry(reasons=[0, 0x40, 0, 0])))
    lines = {line.split()[0] + (" " + line.split()[1] if line.startswith("gpu run") else ""): line
             for line in text.splitlines()}  # fmt: skip
    assert "TF32 True; loss scaling False" in lines["evidence"]
    assert (
        lines["gpu"].startswith("gpu        NVIDIA A100-SXM4-80GB GPU-513536b6") and "driver 535.54.03" in lines["gpu"]
    )
    assert "throttled: hw_thermal_slowdown 25%" in lines["gpu run"] and "energy 375 J" in lines["gpu run"]
    blind = result_text(result(path=GPU, telemetry=Telemetry(unavailable="NVML: NVML Shared Library Not Found")))
    assert "gpu        not recorded: NVML: NVML Shared Library Not Found" in blind.splitlines()
    assert "gpu " not in result_text(result(path=CPU))  # no GPU lines for a CPU run
