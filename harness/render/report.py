"""The report's content, computed once: tables, the seed experiment's answer, figures, provenance.

:func:`build_report` turns results, a comparison and (optionally) a history into a
:class:`Report` whose parts are :class:`~harness.render.table.Table`s, sentences and PNG figures;
:mod:`harness.render.markdown` and :mod:`harness.render.html` only lay them out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.analysis.benchmark_claims import all_claims
from harness.analysis.checks import Check, Comparison, Verdict
from harness.analysis.claims import ClaimCheck, GapAnswer, bn_gap_answers
from harness.analysis.history import History, TrendRow, trend_rows
from harness.analysis.samples import Run, label_runs
from harness.analysis.stats import Stat
from harness.analysis.summary import GroupRow, group_rows
from harness.render.figures import Figure, figures
from harness.render.provenance import provenance_table
from harness.render.table import Cell, Table
from harness.store.results import RunResult
from harness.timeutil import utc_now

TABLE_NOTES = (
    "CI over seeds (Student t). † single run: CI from the spread of its steady step times. "
    "‡ single run: Wilson interval over the test set. Gap = train − validation accuracy at the "
    "last epoch. Compile time, step p50 and memory are medians over seeds."
)


SYNTHETIC_TAG = "synthetic data"


@dataclass
class Report:
    title: str
    generated_utc: str
    n_results: int
    comparison: Comparison | None
    rows: list[GroupRow]
    claims: list[ClaimCheck]
    answers: list[GapAnswer]
    provenance: Table | None
    failed: list[Run]
    figures: list[Figure] = field(default_factory=list)
    history: History | None = None
    history_rows: list[TrendRow] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return self.comparison.verdict.value if self.comparison is not None else "NONE"

    @property
    def any_synthetic(self) -> bool:
        return any(r.synthetic for r in self.rows)

    def figure(self, name: str) -> Figure | None:
        return next((f for f in self.figures if f.name == name), None)


def build_report(
    results: Sequence[RunResult],
    comparison: Comparison | None,
    *,
    history: History | None = None,
    sources: Sequence[str] | None = None,
    title: str = "tfparity report",
    generated_utc: str | None = None,
    with_figures: bool = True,
) -> Report:
    """Everything the report shows; ``sources`` (one per result, as given to compare) group it as compare does."""
    runs = label_runs(results, sources)
    rows = group_rows(runs)
    claims = all_claims(runs)  # the seed's, then those the benchmarks make about themselves
    report = Report(
        title=title,
        generated_utc=generated_utc or utc_now(),
        n_results=len(results),
        comparison=comparison,
        rows=rows,
        claims=claims,
        answers=bn_gap_answers(claims),
        provenance=provenance_table(runs),
        failed=[r for r in runs if not r.result.ok],
        history=history,
        history_rows=trend_rows(history) if history is not None else [],
    )
    if with_figures:
        report.figures = figures(runs, rows, history)
    return report


def answer_sentence(a: GapAnswer) -> str:
    """The seed question's answer for one dataset, with **bold** (Markdown) on the verdict word."""
    suffix = f" ({'; '.join(a.flags)})" if a.flags else ""
    n = len(a.yes) + len(a.no)
    if a.answer == "unanswerable":
        return f"{a.dataset}: cannot be answered — no path has both baseline and batchnorm runs{suffix}."
    if a.answer == "yes":
        text = f"{a.dataset}: **Yes** — BN's gap is smaller on every path ({len(a.yes)}/{n})"
    elif a.answer == "no":
        text = f"{a.dataset}: **No** — BN's gap is not smaller on any path (0/{n}; {', '.join(a.no)})"
    else:
        text = (
            f"{a.dataset}: **No, not on every path** — smaller on {len(a.yes)}/{n} ({', '.join(a.yes)}), "
            f"not on {', '.join(a.no)}"
        )
    if a.within_noise:
        text += f"; the difference is within seed noise on {', '.join(a.within_noise)}"
    if a.single_seed:
        text += f"; one seed only on {', '.join(a.single_seed)}: run more seeds to separate the models"
    return text + suffix + "."


def sorted_checks(comparison: Comparison | None) -> list[Check]:
    """FAIL first, then WARN, then PASS (stable within a verdict)."""
    checks = list(comparison.checks) if comparison is not None else []
    return sorted(checks, key=lambda c: -c.verdict.rank)


def verdict_counts(comparison: Comparison | None) -> str:
    counts = comparison.counts() if comparison is not None else {}
    return ", ".join(f"{counts[v]} {v}" for v in ("FAIL", "WARN", "PASS") if counts.get(v)) or "no checks"


def checks_table(checks: Sequence[Check]) -> Table:
    return Table(
        ["verdict", "check", "subject", "summary"],
        [[Cell(c.verdict.value, css=f"tag {c.verdict.value}"), c.name, c.subject, c.summary] for c in checks],
    )


def pm(stat: Stat, digits: int, thousands: bool = False) -> str:
    """``mean ± CI half-width`` with the CI method's mark (``†`` steps, ``‡`` Wilson)."""
    if stat.mean is None:
        return "n/a"
    f = f"{{:,.{digits}f}}" if thousands else f"{{:.{digits}f}}"
    text = f.format(stat.mean)
    if stat.ci_half is not None:
        text += " ± " + f.format(stat.ci_half)
        if stat.method != "t":
            text += " †" if stat.method == "steps" else " ‡"
    return text


def num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def sd_text(stat: Stat, digits: int = 3) -> str:
    if stat.n == 0 or stat.mean is None:
        return "n/a"
    return f"{stat.mean:.{digits}f}" + (f" ± {stat.sd:.{digits}f}" if stat.sd is not None else "")


ROW_HEADERS = [
    "path",
    "model",
    "dataset",
    "seeds",
    "test accuracy ± 95 % CI",
    "train/val gap ± sd",
    "steady throughput (samples/s) ± 95 % CI",
    "compile time (s)",
    "step p50 (ms)",
    "peak RSS (MB)",
    "TF peak (MB, device)",
]


def rows_table(rows: Sequence[GroupRow]) -> Table:
    def cells(row: GroupRow) -> list[Cell | str]:
        seeds = f"{row.n_ok}" + (f" (+{row.n_failed} failed)" if row.n_failed else "")
        mem = num(row.tf_peak_mb, 0) + (f" ({row.tf_device})" if row.tf_device else "")
        return [
            row.group,
            row.benchmark,
            Cell(row.dataset, tag=SYNTHETIC_TAG if row.synthetic else ""),
            seeds,
            pm(row.test_accuracy, 4),
            sd_text(row.gap),
            pm(row.throughput, 0, thousands=True),
            num(row.compile_time_s, 2),
            num(row.step_time_ms_p50, 2),
            num(row.peak_rss_mb, 0),
            mem,
        ]

    return Table(ROW_HEADERS, [cells(r) for r in rows], numeric=frozenset(range(3, 11)), css="ids3")


def yes_no(holds: bool | None) -> str:
    return "n/a" if holds is None else ("yes" if holds else "no")


def claims_table(claims: Sequence[ClaimCheck]) -> Table:
    return Table(
        ["dataset", "path", "claim", "claimed", "measured (mean ± sd over seeds)", "holds", "note"],
        [
            [
                Cell(c.dataset, tag=SYNTHETIC_TAG if c.synthetic else ""),
                c.path,
                c.claim,
                c.claimed,
                c.measured,
                Cell(yes_no(c.holds), css=yes_no(c.holds)),
                Cell(c.note, css="note"),
            ]
            for c in claims
        ],
        css="ids2",
    )


def failed_table(failed: Sequence[Run]) -> Table:
    return Table(
        ["run", "path", "status", "error"],
        [[r.result.run_id, r.group, r.result.status, first_line(r.result.error)] for r in failed],
    )


def history_table(rows: Sequence[TrendRow]) -> Table:
    return Table(
        ["entry", "time (UTC)", "series", "runs", "steady throughput (samples/s)", "test accuracy"],
        [
            [
                r.entry,
                r.time_utc,
                Cell(r.series, tag=SYNTHETIC_TAG if r.synthetic else ""),
                str(r.n_ok) + (f" (+{r.n_failed} failed)" if r.n_failed else ""),
                "n/a" if r.throughput_samples_per_s is None else f"{r.throughput_samples_per_s:,.0f}",
                num(r.test_accuracy, 4),
            ]
            for r in rows
        ],
        numeric=frozenset({3, 4, 5}),
    )


def first_line(text: str | None, limit: int = 200) -> str:
    stripped = (text or "").strip()
    line = stripped.splitlines()[0] if stripped else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


__all__ = ["TABLE_NOTES", "Figure", "Report", "Verdict", "build_report"]
