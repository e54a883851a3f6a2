"""The scaling table in the report: a row per replica count with speed-up and efficiency, in Markdown
and HTML, and no section when no run had replicas (factory results)."""

from __future__ import annotations

from harness.analysis.compare import compare_results
from harness.render.html import report_html
from harness.render.markdown import report_markdown
from harness.render.report import build_report
from harness.render.scaling import scaling_table
from harness.spec.run_spec import PathSpec
from tests.factories import CPU, result

X2 = PathSpec(replicas=2)


def runs(path: PathSpec, throughputs: list[float]) -> list:
    return [result("baseline", path=path, seed=s, throughput=t, step_sd_frac=0.0) for s, t in enumerate(throughputs)]


def test_report_shows_throughput_speedup_and_efficiency_per_replica_count() -> None:
    results = runs(CPU, [8000.0, 8400.0]) + runs(X2, [2000.0, 2200.0])
    report = build_report(results, compare_results(results), with_figures=False)
    table = scaling_table(report.scaling)
    assert [c.text for c in table.cells()[1]] == [
        "baseline", "mnist-5k", "cpu-fp32-x2", "tfdata,spe1", "global 32", "2", "1", "2", "2,100", "2,000–2,200",
        "×0.26", "13%",
    ]  # fmt: skip
    md = report_markdown(report)
    assert "## Scaling (replicas)" in md and "| ×0.26 | 13% |" in md and "T_N / (N × T_1)" in md
    html = report_html(report)
    assert '<section id="scaling">' in html and "2,000–2,200" in html


def test_no_scaling_section_without_replicas() -> None:
    results = runs(CPU, [8000.0])
    report = build_report(results, None, with_figures=False)
    assert report.scaling == []
    assert "Scaling" not in report_markdown(report) and 'id="scaling"' not in report_html(report)
