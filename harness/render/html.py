"""The report and the history page as self-contained HTML, rendered by Jinja2 (autoescaping on).

Self-contained: inline CSS, figures as ``data:`` URIs, no scripts, no network. The templates live
in ``harness/render/templates/``; they receive the :class:`~harness.render.report.Report` and its
:class:`~harness.render.table.Table`s, never pre-built HTML.
"""

from __future__ import annotations

import base64
import functools
import re
from typing import Any

import jinja2
from markupsafe import Markup, escape

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
from harness.render.table import Table


@functools.lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.render", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["data_uri"] = lambda png: "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    env.filters["bold"] = _bold
    return env


def _bold(text: str) -> Markup:
    """``**x**`` (Markdown bold, as the answer sentences use it) as <strong>, everything escaped."""
    parts = re.split(r"\*\*", str(text))
    return Markup("").join(Markup("<strong>%s</strong>") % p if i % 2 else escape(p) for i, p in enumerate(parts))


def report_html(report: Report) -> str:
    checks = sorted_checks(report.comparison)
    context: dict[str, Any] = {
        "report": report,
        "counts": verdict_counts(report.comparison),
        "loud": checks_table([c for c in checks if c.verdict.value != "PASS"]),
        "quiet": checks_table([c for c in checks if c.verdict.value == "PASS"]),
        "rows": rows_table(report.rows),
        "notes": TABLE_NOTES,
        "answers": [answer_sentence(a) for a in report.answers],
        "claims": claims_table(report.claims),
        "plots": [f for f in report.figures if f.name != "trend"],
        "trend": report.figure("trend"),
        "history_rows": history_table(report.history_rows, report.history_scans),
        "history_changes": change_points_table(report.history_scans),
        "history_note": scan_note(report.history_scans) if report.history_scans else "",
        "failed": failed_table(report.failed),
        "scaling": scaling_table(report.scaling),
        "scaling_note": SCALING_NOTE,
    }
    return _env().get_template("report.html.j2").render(**context)


def history_html(history: History, table: Table, trend_png: bytes, changes: Table | None = None, note: str = "") -> str:
    # The table goes in as ``rows``: a context variable named ``table`` would shadow the template's table macro.
    return (
        _env()
        .get_template("history.html.j2")
        .render(history=history, rows=table, trend_png=trend_png, changes=changes, note=note)
    )
