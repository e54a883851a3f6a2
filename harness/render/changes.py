"""Change points over history as table cells and a table: the nights where a metric moved to a new level."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from harness.analysis.changepoints import METRICS, MIN_NIGHTS, ChangePoint, SeriesScan
from harness.render.table import Cell, Table


def _value(cp: ChangePoint, value: float) -> str:
    if cp.metric == "throughput":
        return f"{value:,.0f} samples/s"
    if cp.metric == "peak_rss":
        return f"{value:,.0f} MB"
    if cp.metric == "accuracy_delta":
        return f"{value:+.2f} pp".replace("-", "−")
    return f"{value:.2e}"


def change_text(cp: ChangePoint) -> str:
    """'−12.3 %' or '−1.20 pp'."""
    text = f"{cp.change:+.2f} pp" if cp.unit == "pp" else f"{cp.change:+.1f} %"
    return text.replace("-", "−")


def short(cp: ChangePoint) -> str:
    """'throughput −12.3 %' / 'test accuracy Δ −1.20 pp': what moved and by how much."""
    return f"{METRICS[cp.metric].label} {change_text(cp)}"


def shifts_by_row(scans: Sequence[SeriesScan]) -> dict[tuple[str, str], str]:
    """(entry, trend series) -> the change points starting at that night, for the history table's column.

    An accuracy-delta series ``"<series> − <reference path>"`` marks the row of ``<series>``.
    """
    marks: dict[tuple[str, str], list[str]] = defaultdict(list)
    for s in scans:
        for cp in s.change_points:
            row = cp.series.split(" − ")[0] if cp.metric == "accuracy_delta" else cp.series
            marks[(cp.entry, row)].append(short(cp))
    return {k: "; ".join(v) for k, v in marks.items()}


def change_points_table(scans: Sequence[SeriesScan]) -> Table:
    """Every change point: the first night of the new level, the series, the metric, the levels."""
    rows: list[list[Cell | str]] = [
        [
            cp.entry,
            cp.series,
            METRICS[cp.metric].label,
            f"{_value(cp, cp.before)} → {_value(cp, cp.after)}",
            change_text(cp),
            f"{cp.p_value:.3f}" if cp.p_value >= 0.001 else "<0.001",
        ]
        for s in scans
        for cp in s.change_points
    ]
    return Table(["first night of new level", "series", "metric", "level before → after", "change", "U p"], rows,
                 numeric=frozenset({4, 5}))  # fmt: skip


def scan_note(scans: Sequence[SeriesScan]) -> str:
    """One sentence on what was scanned and what could not be."""
    found = sum(len(s.change_points) for s in scans)
    analysed = [s for s in scans if s.analysed]
    short_series = len(scans) - len(analysed)
    text = (
        f"Change points (ruptures PELT, L1 cost, confirmed by a U test between the adjacent levels): {found} "
        f"in {len(analysed)} series scanned"
    )
    if short_series:
        text += f"; {short_series} series with fewer than {MIN_NIGHTS} nights not analysed (too few nights)"
    return text + "."
