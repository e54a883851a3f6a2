"""Report figures: units, legends, no overlapping or clipped text, a figure even for empty input."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from harness.analysis.history import History, HistoryEntry
from harness.analysis.samples import label_runs, steady_step_times_ms
from harness.analysis.summary import group_rows, train_groups
from harness.render import curves, plots
from harness.render.figure_checks import overlapping_texts, texts_outside
from harness.render.figures import trend_series
from tests.factories import BF16, CPU, GPU_MIXED, XLA, png_size, result, seed_suite

T0 = dt.datetime(2026, 11, 20, 2, 17, tzinfo=dt.timezone.utc)


def _figure_for_tests(name: str) -> Any:
    runs = label_runs(seed_suite(paths=(CPU, XLA, BF16, GPU_MIXED)))
    rows = group_rows(runs)
    groups = train_groups(runs)
    makers = {
        "accuracy": lambda: curves.accuracy_curves_figure([
            plots.CurvePanel(b, g, ds, [[e.train_accuracy for e in r.result.epochs] for r in rs],
                             [[e.val_accuracy for e in r.result.epochs] for r in rs])
            for (g, b, ds), rs in groups.items()]),
        "throughput": lambda: plots.throughput_figure([
            plots.Bar(f"{r.group} · {r.benchmark}", r.throughput.mean, r.throughput.ci_low, r.throughput.ci_high,
                      group=r.group) for r in rows]),
        "step_time": lambda: plots.step_time_figure([
            plots.Distribution(f"{g} · {b}", [v for r in rs for v in steady_step_times_ms(r.result)])
            for (g, b, _), rs in groups.items()]),
        "memory": lambda: plots.memory_figure([
            plots.MemoryBar(f"{r.group} · {r.benchmark}", r.peak_rss_mb, r.tf_peak_mb, r.tf_device) for r in rows]),
        "trend": lambda: plots.trend_figure([
            plots.TrendSeries(f"cpu-fp32 · model{i}", [T0 + dt.timedelta(days=d) for d in range(5)],
                              [9000.0 + 100 * d * i for d in range(5)], [0.92 + 0.001 * d for d in range(5)],
                              peak_rss_mb=[1200.0 + 10 * i] * 5,
                              changes=[("throughput", T0 + dt.timedelta(days=2))] if i == 0 else [])
            for i in range(3)]),
    }  # fmt: skip
    return makers[name]()


@pytest.mark.parametrize("name", ["accuracy", "throughput", "step_time", "memory", "trend"])
def test_plots_have_units_legends_and_no_overlapping_text(name: str) -> None:
    fig = _figure_for_tests(name)
    assert overlapping_texts(fig) == []
    visible = [ax for ax in fig.axes if ax.axison]
    assert visible
    for ax in visible:
        if ax.get_xlabel():
            assert "(" in ax.get_xlabel() or ax.get_xlabel() == "epoch", ax.get_xlabel()
    assert any("(" in ax.get_xlabel() or "(" in ax.get_ylabel() for ax in visible)  # units on an axis
    assert fig.legends or any(ax.get_legend() for ax in visible)
    width, height = png_size(plots.to_png(fig))
    assert 500 < width < 2500 and 150 < height < 3000


def test_a_single_panel_figure_keeps_its_legend_inside() -> None:
    """One model on one path (a one-seed `make bench` of one model): the legend must not be clipped."""
    runs = [
        result("baseline", seed=0, epochs=5),
        result("baseline", seed=1, epochs=5, val_acc=0.92),
    ]  # 4 legend entries
    train = [[e.train_accuracy for e in r.epochs] for r in runs]
    val = [[e.val_accuracy for e in r.epochs] for r in runs]
    fig = curves.accuracy_curves_figure([plots.CurvePanel("baseline", "cpu-fp32", "mnist-5k", train, val)])
    assert texts_outside(fig) == []
    assert overlapping_texts(fig) == []


def test_overlap_check_catches_overlapping_text() -> None:
    fig = plots.new_figure(4, 3)
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, "first label here")
    ax.text(0.52, 0.5, "second label here")
    assert overlapping_texts(fig) == [("first label here", "second label here")]
    ax.text(1.3, 0.1, "far beyond the right edge")
    assert texts_outside(fig) == ["far beyond the right edge"]


def test_empty_inputs_give_an_explaining_figure_not_a_crash() -> None:
    for png in (curves.accuracy_curves_png([]), plots.throughput_png([]), plots.step_time_png([]),
                plots.memory_png([]), plots.trend_png([])):  # fmt: skip
        assert png_size(png)[0] > 100


def test_trend_series_follow_the_history_rows() -> None:
    """One plot series per trend series: its points are the entries, oldest first."""
    entries = [
        HistoryEntry(f"202611{20 + d}T021700Z-nightly", "nightly", T0 + dt.timedelta(days=d),
                     [("cpu", result("baseline", seed=s, throughput=thr + 100 * s, step_sd_frac=0.0)) for s in (0, 1)])
        for d, thr in enumerate([9000.0, 9400.0, 8000.0])
    ]  # fmt: skip
    (series,) = trend_series(History(root="h", entries=entries))
    assert series.label == "cpu-fp32 · baseline"
    assert series.times == [T0 + dt.timedelta(days=d) for d in range(3)]
    assert series.throughput_samples_per_s == [pytest.approx(9050.0), pytest.approx(9450.0), pytest.approx(8050.0)]
    assert series.peak_rss_mb == [1200.0] * 3 and series.changes == []  # 3 nights: too few to scan
