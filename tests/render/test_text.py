"""Terminal text: compare's table and JSON, the history table's skipped entries."""

from __future__ import annotations

import json

from harness.analysis.compare import compare_results
from harness.analysis.history import History
from harness.render.text import comparison_json, comparison_text, history_text
from tests.factories import BF16, CPU, seeds

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
