"""The report's content, computed once: tables, the seed experiment's answer, figures, provenance.

:func:`build_report` turns results, a comparison and (optionally) a history into a
:class:`Report` whose parts are :class:`~harness.render.table.Table`s, sentences and PNG figures;
:mod:`harness.render.markdown` and :mod:`harness.render.html` only lay them out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.analysis.benchmark_claims import all_claims
from harness.analysis.changepoints import SeriesScan, scan
from harness.analysis.checks import Check, Comparison, Verdict
from harness.analysis.claims import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    UNMEASURABLE,
    ClaimCheck,
    GapAnswer,
    bn_gap_answers,
)
from harness.analysis.history import History, TrendRow, trend_rows
from harness.analysis.samples import Run, label_runs
from harness.analysis.scaling import ScalingRow, scaling_rows
from harness.analysis.stats import Stat
from harness.analysis.summary import GroupRow, group_rows
from harness.render.changes import shifts_by_row
from harness.render.figures import Figure, figures
from harness.render.provenance import provenance_table
from harness.render.table import Cell, Table
from harness.store.results import RunResult
from harness.timeutil import utc_now

TABLE_NOTES = (
    "CI over seeds (Student t). ‡ single run: Wilson interval over the test set. Throughput: one value "
    "per run (batch × 1000 / the lower quartile of its steady step times, the value speed verdicts use), "
    "mean and Student-t CI over runs; a single run has no interval (its steps are not independent samples). "
    "Gap = train − validation accuracy at the last epoch. Compile time, step p50 and memory are medians over seeds."
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
    scaling: list[ScalingRow] = field(default_factory=list)  # empty unless some run had replicas
    history_scans: list[SeriesScan] = field(default_factory=list)  # change points per series and metric

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
        scaling=scaling_rows(runs),
        history_scans=scan(history) if history is not None else [],
    )
    if with_figures:
        report.figures = figures(runs, rows, history)
    return report


def answer_sentence(a: GapAnswer) -> str:
    """The seed question's answer for one dataset, with **bold** (Markdown) on the verdict word.

    "Yes" only when BN's gap is smaller beyond seed noise on every path; fewer seeds than the
    decision needs read "not established with N seed(s); need M".
    """
    suffix = f" ({'; '.join(a.flags)})" if a.flags else ""
    if a.answer == "unanswerable":
        return f"{a.dataset}: cannot be answered — no path has both baseline and batchnorm runs{suffix}."
    if a.answer == "yes":
        text = f"{a.dataset}: **Yes** — BN's gap is smaller beyond seed noise on every path ({len(a.yes)}/{len(a.yes)})"
    elif a.answer == "no":
        text = f"{a.dataset}: **No** — BN's gap is larger beyond seed noise on {', '.join(a.no)}"
    elif a.answer == "mixed":
        text = (
            f"{a.dataset}: **No, not on every path** — smaller beyond seed noise on {', '.join(a.yes)}, "
            f"larger on {', '.join(a.no)}"
        )
    else:
        text = f"{a.dataset}: **Not established** {undecided_text(a)}"
        if a.yes:
            text += f"; smaller beyond seed noise on {', '.join(a.yes)}"
        return text + suffix + "."
    if a.undecided:
        text += f"; not established {undecided_text(a)}"
    return text + suffix + "."


def undecided_text(a: GapAnswer) -> str:
    """``with N seed(s); need M (on PATHS)``: the paths the seeds do not decide, and where the mean leans."""
    if a.n_seeds == 0:  # baseline and batchnorm ran on different seeds: nothing to pair
        return f"(on {', '.join(a.undecided)}): no seed ran both models; run both on the same seeds"
    seeds = f"{a.n_seeds} seed" + ("" if a.n_seeds == 1 else "s")
    need = f"need {a.seeds_needed}" if a.seeds_needed is not None else "the difference is too small to establish"
    text = f"with {seeds}; {need} (on {', '.join(a.undecided)})"
    if a.leaning_yes:
        text += f"; the mean gap is smaller on {', '.join(a.leaning_yes)}, but within seed noise"
    return text


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
    """``mean ± CI half-width`` with the CI method's mark (``‡`` Wilson)."""
    if stat.mean is None:
        return "n/a"
    f = f"{{:,.{digits}f}}" if thousands else f"{{:.{digits}f}}"
    text = f.format(stat.mean)
    if stat.ci_half is not None:
        text += " ± " + f.format(stat.ci_half)
        if stat.method == "wilson":
            text += " ‡"
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


def holds_text(c: ClaimCheck) -> str:
    """``yes`` / ``no`` only when established over seeds; otherwise why not, with the seeds needed."""
    if c.decision == HOLDS:
        return "yes"
    if c.decision == FAILS:
        return "no"
    if c.decision == INCONCLUSIVE:
        need = f"; need {c.seeds_needed}" if c.seeds_needed is not None else ""
        return f"not established ({c.n_seeds} seed{'' if c.n_seeds == 1 else 's'}{need})"
    return "n/a"


HOLDS_CSS = {HOLDS: "yes", FAILS: "no", INCONCLUSIVE: "inconclusive", UNMEASURABLE: "n/a"}


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
                Cell(holds_text(c), css=HOLDS_CSS[c.decision]),
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


def history_table(rows: Sequence[TrendRow], scans: Sequence[SeriesScan] = ()) -> Table:
    """Every entry x series; the last column marks the change points that start at that night."""
    marks = shifts_by_row(scans)
    return Table(
        ["entry", "time (UTC)", "series", "runs", "steady throughput (samples/s)", "peak RSS (MB)", "test accuracy",
         "change point"],
        [
            [
                r.entry,
                r.time_utc,
                Cell(r.series, tag=SYNTHETIC_TAG if r.synthetic else ""),
                str(r.n_ok) + (f" (+{r.n_failed} failed)" if r.n_failed else ""),
                "n/a" if r.throughput_samples_per_s is None else f"{r.throughput_samples_per_s:,.0f}",
                "n/a" if r.peak_rss_mb is None else f"{r.peak_rss_mb:,.0f}",
                num(r.test_accuracy, 4),
                Cell(marks.get((r.entry, r.series), ""), css="shift"),
            ]
            for r in rows
        ],
        numeric=frozenset({3, 4, 5, 6}),
    )  # fmt: skip


def first_line(text: str | None, limit: int = 200) -> str:
    stripped = (text or "").strip()
    line = stripped.splitlines()[0] if stripped else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


__all__ = ["TABLE_NOTES", "Figure", "Report", "Verdict", "build_report"]
