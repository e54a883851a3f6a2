"""The scaling table as a :class:`~harness.render.table.Table`: throughput per replica count, speed-up and
efficiency T_N / (N x T_1) (the numbers are :mod:`harness.analysis.scaling`'s)."""

from __future__ import annotations

from collections.abc import Sequence

from harness.analysis.scaling import ScalingRow
from harness.render.table import Table

SCALING_HEADERS = (
    "benchmark",
    "dataset",
    "path",
    "execution",
    "batch",
    "replicas",
    "workers",
    "runs",
    "samples/s (median)",
    "per run",
    "speed-up",
    "efficiency",
)

SCALING_NOTE = (
    "Throughput per run = global batch / the run's median steady step time; a row's value is the median "
    "over its runs. Speed-up T_N / T_1 and efficiency T_N / (N × T_1) against the one-replica row of the "
    "same path, execution and batch semantics (— without one). 'global B': the global batch stays B (strong "
    "scaling, the same optimisation); 'B per replica': the global batch is N × B (weak scaling)."
)


def _thousands(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _range(values: Sequence[float]) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return _thousands(values[0])
    return f"{_thousands(min(values))}–{_thousands(max(values))}"


def scaling_table(rows: Sequence[ScalingRow]) -> Table:
    """One line per series x replica count."""
    body = [
        [
            row.series.benchmark,
            row.series.dataset,
            row.group,
            row.series.execution,
            row.series.batch,
            str(row.replicas),
            str(row.workers),
            str(row.runs),
            _thousands(row.samples_per_s),
            _range(row.run_samples_per_s),
            "—" if row.speedup is None else f"×{row.speedup:.2f}",
            "—" if row.efficiency is None else f"{row.efficiency:.0%}",
        ]
        for row in rows
    ]
    return Table(SCALING_HEADERS, body, numeric=frozenset(range(5, 12)), css="scaling")
