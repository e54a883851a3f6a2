"""The report's figures: its data grouped into plot inputs, rendered to PNG by :mod:`.plots` and :mod:`.curves`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.analysis.changepoints import scan
from harness.analysis.history import History, TrendRow, parse_utc, trend_rows
from harness.analysis.samples import Run, is_synthetic, steady_step_times_ms
from harness.analysis.summary import GroupRow, train_groups
from harness.render import curves, plots


@dataclass(frozen=True)
class Figure:
    name: str  # file stem, e.g. "accuracy_curves"
    title: str
    caption: str
    png: bytes


def figures(runs: Sequence[Run], rows: Sequence[GroupRow], history: History | None) -> list[Figure]:
    """Every figure of the report, in the order it shows them."""
    groups = train_groups(runs)
    multi_ds = len({r.dataset for r in rows}) > 1

    def label(group: str, bench: str, ds: str) -> str:
        return f"{group} · {bench}" + (f" · {ds}" if multi_ds else "")

    figs = [
        _curves_figure(groups),
        _throughput_figure([r for r in rows if r.throughput.mean is not None], label),
        _step_time_figure(groups, label),
        _memory_figure(rows, label),
    ]
    if history is not None:
        figs.append(trend_figure(history))
    return figs


Groups = dict[tuple[str, str, str], list[Run]]
Label = Callable[[str, str, str], str]


def _curves_figure(groups: Groups) -> Figure:
    panels = [
        plots.CurvePanel(model=b, path=g, dataset=ds,
                         train_accuracy=[[e.train_accuracy for e in r.result.epochs] for r in rs],
                         val_accuracy=[[e.val_accuracy for e in r.result.epochs] for r in rs],
                         synthetic=any(is_synthetic(r.result) for r in rs))
        for (g, b, ds), rs in groups.items() if any(r.result.epochs for r in rs)
    ]  # fmt: skip
    return Figure("accuracy_curves", "Train vs validation accuracy",
                  "Per model (rows) and path (columns): mean over seeds, seed range shaded; the hatched area "
                  "between the curves is the train/validation gap (overfitting).",
                  curves.accuracy_curves_png(panels))  # fmt: skip


def _throughput_figure(rows: Sequence[GroupRow], label: Label) -> Figure:
    bars = [plots.Bar(label=label(row.group, row.benchmark, row.dataset), value=row.throughput.mean or 0.0,
                      low=row.throughput.ci_low, high=row.throughput.ci_high, synthetic=row.synthetic, group=row.group)
            for row in rows]  # fmt: skip
    return Figure("throughput", "Throughput per path",
                  "Steady-state training throughput (warm-up excluded), one value per run (batch × 1000 / "
                  "the lower quartile of its steady step times); error bars are 95 % confidence intervals "
                  "over runs (none for a single run).",
                  plots.throughput_png(bars))  # fmt: skip


def _step_time_figure(groups: Groups, label: Label) -> Figure:
    dists = [plots.Distribution(label=label(g, b, ds), samples=[v for r in rs for v in steady_step_times_ms(r.result)],
                                synthetic=any(is_synthetic(r.result) for r in rs))
             for (g, b, ds), rs in groups.items()]  # fmt: skip
    return Figure("step_time", "Step-time distribution",
                  "Raw steady-state step times of all seeds: box = quartiles, whiskers = 1st-99th percentile.",
                  plots.step_time_png(dists))  # fmt: skip


def _memory_figure(rows: Sequence[GroupRow], label: Label) -> Figure:
    mem = [plots.MemoryBar(label=label(row.group, row.benchmark, row.dataset), peak_rss_mb=row.peak_rss_mb,
                           tf_peak_mb=row.tf_peak_mb, tf_device=row.tf_device, synthetic=row.synthetic)
           for row in rows]  # fmt: skip
    return Figure("memory", "Memory",
                  "Median over seeds of the peak process RSS and of TensorFlow's allocator peak on the device shown.",
                  plots.memory_png(mem))  # fmt: skip


def trend_series(history: History) -> list[plots.TrendSeries]:
    """The trend rows of a history as one plot series per series name, with its change points."""
    by_series: dict[str, list[TrendRow]] = {}
    for row in trend_rows(history):
        by_series.setdefault(row.series, []).append(row)
    panel = {"throughput": "throughput", "peak_rss": "peak_rss", "accuracy_delta": "test_accuracy"}
    changes: dict[str, list[tuple[str, dt.datetime]]] = {}
    for found in scan(history):
        for cp in found.change_points:
            if cp.metric in panel:
                name = cp.series.split(" − ")[0] if cp.metric == "accuracy_delta" else cp.series
                changes.setdefault(name, []).append((panel[cp.metric], parse_utc(cp.time_utc)))
    return [
        plots.TrendSeries(
            label=name + (" [synthetic data]" if any(r.synthetic for r in rs) else ""),
            times=[parse_utc(r.time_utc) for r in rs],
            throughput_samples_per_s=[r.throughput_samples_per_s for r in rs],
            test_accuracy=[r.test_accuracy for r in rs],
            peak_rss_mb=[r.peak_rss_mb for r in rs],
            changes=changes.get(name, []),
        )
        for name, rs in sorted(by_series.items())
    ]


def trend_figure(history: History) -> Figure:
    return Figure(
        "trend",
        "Trend over nightly runs",
        "Per path and model: steady throughput and peak RSS (medians over runs) and test accuracy "
        "(mean over seeds) of each history entry; dotted lines mark change points (the first night of a "
        "new level of throughput, memory or the accuracy difference to cpu-fp32).",
        plots.trend_png(trend_series(history)),
    )
