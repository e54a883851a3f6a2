"""The report and the history page as GitHub-flavoured Markdown (figures linked, not embedded)."""

from __future__ import annotations

from collections.abc import Sequence

from harness.analysis.history import History
from harness.render.changes import change_points_table, scan_note
from harness.render.report import (
    TABLE_NOTES,
    Report,
    answer_sentence,
    checks_table,
    claims_table,
    failed_table,
    history_table,
    rows_table,
    sorted_checks,
    verdict_counts,
)
from harness.render.scaling import SCALING_NOTE, scaling_table


def report_markdown(report: Report, image_paths: dict[str, str] | None = None) -> str:
    """The report; figures link to ``image_paths[name]`` when given."""
    images = image_paths or {}
    out = [f"# {report.title}", "", f"Generated {report.generated_utc} from {report.n_results} result(s).", ""]
    out += [f"## Verdict: **{report.verdict}**", ""]
    if report.comparison is None:
        out += ["No comparison was run.", ""]
    else:
        out += [f"Reference path: `{report.comparison.reference}` · checks: {verdict_counts(report.comparison)}", ""]
        checks = sorted_checks(report.comparison)
        if checks:
            out += [*checks_table(checks).markdown(), ""]
    if report.any_synthetic:
        out += [
            "> **Synthetic data**: rows marked [synthetic data] were measured on generated data; their "
            "accuracies say nothing about MNIST.",
            "",
        ]
    out += ["## Per-path results", ""]
    out += rows_table(report.rows).markdown() if report.rows else ["No results."]
    out += ["", f"_{TABLE_NOTES}_", ""]
    if report.scaling:
        out += ["## Scaling (replicas)", "", *scaling_table(report.scaling).markdown(), "", f"_{SCALING_NOTE}_", ""]
    out += ["## The seed experiment: does BatchNormalization shrink the train/val gap, on every path?", ""]
    out += [f"- {answer_sentence(a)}" for a in report.answers] or ["- No baseline/batchnorm runs to answer it."]
    out.append("")
    if report.claims:
        out += [*claims_table(report.claims).markdown(), ""]
    plots = [f for f in report.figures if f.name != "trend"]
    if plots:
        out += ["## Plots", ""]
        for fig in plots:
            out += [f"### {fig.title}", ""]
            if fig.name in images:
                out += [f"![{fig.title}]({images[fig.name]})", ""]
            out += [f"_{fig.caption}_", ""]
    if report.history is not None:
        out += _history_section(report, images)
    if report.failed:
        out += ["## Failed runs", "", *failed_table(report.failed).markdown(), ""]
    out += ["## Environment and provenance", ""]
    if report.provenance is not None:
        out += report.provenance.markdown()
    out.append("")
    return "\n".join(out)


def _history_section(report: Report, images: dict[str, str]) -> list[str]:
    hist = report.history
    assert hist is not None
    out = ["## History", "", f"{_entries(hist)} in `{hist.root}`.", ""]
    trend = report.figure("trend")
    if trend is not None and "trend" in images:
        out += [f"![{trend.title}]({images['trend']})", "", f"_{trend.caption}_", ""]
    if report.history_rows:
        out += [*history_table(report.history_rows, report.history_scans).markdown(), ""]
    if report.history_scans:
        out += [scan_note(report.history_scans), ""]
        changes = change_points_table(report.history_scans)
        out += [*changes.markdown(), ""] if changes.rows else []
    out += [f"- skipped `{name}`: {why}" for name, why in hist.skipped]
    return out + ([""] if hist.skipped else [])


def _entries(history: History) -> str:
    n = len(history.entries)
    return f"{n} entr{'y' if n == 1 else 'ies'}"


def history_markdown(history: History, rows_md: list[str], trend_path: str, changes_md: Sequence[str] = ()) -> str:
    """``history.md``: the trend plot, the table of every entry x series, the change points."""
    out = [
        f"# tfparity history: {history.root}",
        "",
        f"{len(history.entries)} entries.",
        "",
        f"![Trend over nightly runs]({trend_path})",
        "",
        *rows_md,
        "",
        *changes_md,
    ]
    out += [f"- skipped {name}: {why}" for name, why in history.skipped]
    return "\n".join(out) + "\n"
