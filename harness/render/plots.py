"""Report figures: plain data in, PNG bytes out (matplotlib, Agg, no global pyplot state).

Every function takes already-grouped data (the report module does the grouping and statistics)
and returns the bytes of one PNG. Figures are built on :class:`matplotlib.figure.Figure` with an
Agg canvas directly, so no GUI backend is ever touched and nothing leaks between calls.

Readable in light print: white background, dark text, an Okabe-Ito palette (colour-blind safe)
and, where lines are compared, distinct line styles and markers so that a grey-scale print still
separates them. Layout uses constrained layout, so labels do not overlap.
"""

from __future__ import annotations

import datetime as _dt
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


# Okabe-Ito: distinguishable for colour-blind readers and in grey-scale (varied luminance).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


LINESTYLES = ("-", "--", "-.", ":")


DPI = 110


SYNTHETIC_NOTE = "synthetic data"


@dataclass(frozen=True)
class CurvePanel:
    """Per-epoch train/val accuracy of one model on one path (one list per seed)."""

    model: str
    path: str
    dataset: str
    train_accuracy: list[list[float]]
    val_accuracy: list[list[float | None]]
    synthetic: bool = False


@dataclass(frozen=True)
class Bar:
    """One bar with an optional confidence interval (``low``/``high`` absolute, not deltas)."""

    label: str
    value: float
    low: float | None = None
    high: float | None = None
    synthetic: bool = False
    group: str = ""  # bars of one group (e.g. a path) share a colour


@dataclass(frozen=True)
class Distribution:
    """Raw samples of one group (e.g. steady-state step times in ms)."""

    label: str
    samples: list[float]
    synthetic: bool = False


@dataclass(frozen=True)
class MemoryBar:
    label: str
    peak_rss_mb: float | None
    tf_peak_mb: float | None
    tf_device: str = ""
    synthetic: bool = False


@dataclass(frozen=True)
class TrendSeries:
    """One path's values over history entries (times are UTC datetimes)."""

    label: str
    times: list[_dt.datetime]
    throughput_samples_per_s: list[float | None]
    test_accuracy: list[float | None]
    meta: dict[str, Any] = field(default_factory=dict)
    peak_rss_mb: list[float | None] = field(default_factory=list)
    # change points: (panel "throughput" | "peak_rss" | "test_accuracy", first night of the new level)
    changes: list[tuple[str, _dt.datetime]] = field(default_factory=list)


def new_figure(width_in: float, height_in: float) -> Any:
    """A Figure with an Agg canvas attached and constrained layout; no pyplot involved."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained", facecolor="white")
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    # bbox_inches="tight" grows the canvas rather than cut off a long label or legend.
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white", bbox_inches="tight", pad_inches=0.08)
    return buf.getvalue()


def style_axes(ax: Any) -> None:
    ax.set_facecolor("white")
    ax.grid(True, color="#d9d9d9", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def thousands(axis: Any) -> None:
    """Tick labels like 50,000 instead of 50000 (throughputs are read at a glance)."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))


def with_tag(text: str, synthetic: bool) -> str:
    return f"{text} [{SYNTHETIC_NOTE}]" if synthetic else text


def empty_figure(message: str, width_in: float = 6.0, height_in: float = 1.6) -> Any:
    """A small figure that says why there is nothing to plot (never a blank image)."""
    fig = new_figure(width_in, height_in)
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(
        0.5, 0.5, message, ha="center", va="center", fontsize=11, color="#333333", transform=ax.transAxes, wrap=True
    )
    return fig


def throughput_figure(bars: Sequence[Bar]) -> Any:
    """Steady-state throughput per path (horizontal bars, 95 % CI as error bars)."""
    if not bars:
        return empty_figure("No steady-state throughput measured.")
    fig = new_figure(7.5, 0.45 * len(bars) + 1.3)
    ax = fig.add_subplot()
    style_axes(ax)
    ys = list(range(len(bars)))[::-1]  # first bar at the top, like the table
    values = [b.value for b in bars]
    lower = [b.value - b.low if b.low is not None else 0.0 for b in bars]
    upper = [b.high - b.value if b.high is not None else 0.0 for b in bars]
    groups = list(dict.fromkeys(b.group or b.label for b in bars))
    colors = [PALETTE[groups.index(b.group or b.label) % len(PALETTE)] for b in bars]
    hatches = ["//" if b.synthetic else "" for b in bars]
    rects = ax.barh(ys, values, color=colors, alpha=0.85, height=0.6, edgecolor="#333333", linewidth=0.5)
    for rect, hatch in zip(rects, hatches, strict=True):
        rect.set_hatch(hatch)
    ax.errorbar(
        values,
        ys,
        xerr=[lower, upper],
        fmt="none",
        ecolor="#000000",
        elinewidth=1.2,
        capsize=4,
        label="95 % confidence interval",
    )
    ax.set_yticks(ys, [with_tag(b.label, b.synthetic) for b in bars], fontsize=8)
    ax.set_xlabel("steady-state throughput (samples/s, warm-up excluded)", fontsize=9)
    thousands(ax.xaxis)
    right = max((b.high or b.value) for b in bars)
    ax.set_xlim(0, right * 1.18)
    for y, b in zip(ys, bars, strict=True):
        ax.text((b.high or b.value) + right * 0.015, y, f"{b.value:,.0f}", va="center", fontsize=8)
    fig.legend(loc="outside lower center", fontsize=8, frameon=False)
    ax.set_title("Throughput per path", fontsize=10)
    return fig


def step_time_figure(dists: Sequence[Distribution]) -> Any:
    """Distribution of steady-state step times per path (box plots of the raw samples)."""
    dists = [d for d in dists if d.samples]
    if not dists:
        return empty_figure("No step-time samples recorded.")
    import numpy as np

    fig = new_figure(7.5, 0.45 * len(dists) + 1.3)
    ax = fig.add_subplot()
    style_axes(ax)
    data = [np.asarray(d.samples, dtype=float) for d in dists][::-1]
    labels = [with_tag(d.label, d.synthetic) for d in dists][::-1]
    ax.boxplot(
        data,
        orientation="horizontal",
        tick_labels=labels,
        widths=0.55,
        whis=(1, 99),
        showfliers=True,
        flierprops={"marker": ".", "markersize": 2, "alpha": 0.4, "markeredgecolor": "#555555"},
        medianprops={"color": PALETTE[1], "linewidth": 1.8},
        boxprops={"color": "#333333"},
        whiskerprops={"color": "#333333"},
        capprops={"color": "#333333"},
    )
    lo = min(float(d.min()) for d in data)
    hi = max(float(d.max()) for d in data)
    if lo > 0 and hi / lo > 20:  # a long tail would squash the boxes on a linear axis
        ax.set_xscale("log")
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlabel("step time (ms per training step)", fontsize=9)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig.legend(
        handles=[
            Line2D([], [], color=PALETTE[1], linewidth=1.8, label="median"),
            Patch(facecolor="white", edgecolor="#333333", label="box: p25-p75"),
            Line2D([], [], color="#333333", marker="|", markersize=8, label="whiskers: p1-p99"),
            Line2D([], [], color="#555555", marker=".", linestyle="none", label="outliers"),
        ],
        loc="outside lower center",
        ncols=4,
        fontsize=8,
        frameon=False,
    )
    ax.set_title("Step-time distribution (steady state)", fontsize=10)
    return fig


def memory_figure(bars: Sequence[MemoryBar]) -> Any:
    """Peak process RSS and TF allocator peak per path (grouped horizontal bars, MB)."""
    bars = [b for b in bars if b.peak_rss_mb is not None or b.tf_peak_mb is not None]
    if not bars:
        return empty_figure("No memory measurements recorded.")
    fig = new_figure(7.5, 0.6 * len(bars) + 1.4)
    ax = fig.add_subplot()
    style_axes(ax)
    ys = list(range(len(bars)))[::-1]
    h = 0.36
    rss = [b.peak_rss_mb or 0.0 for b in bars]
    tfp = [b.tf_peak_mb or 0.0 for b in bars]
    ax.barh(
        [y + h / 2 for y in ys],
        rss,
        height=h,
        color=PALETTE[0],
        label="peak process RSS (MB)",
        edgecolor="#333333",
        linewidth=0.5,
    )
    ax.barh(
        [y - h / 2 for y in ys],
        tfp,
        height=h,
        color=PALETTE[4],
        hatch="..",
        label="TF allocator peak (MB, device in label)",
        edgecolor="#333333",
        linewidth=0.5,
    )
    top = max(rss + tfp) or 1.0
    for y, b in zip(ys, bars, strict=True):
        if b.peak_rss_mb is not None:
            ax.text(b.peak_rss_mb + top * 0.01, y + h / 2, f"{b.peak_rss_mb:,.0f}", va="center", fontsize=7.5)
        ax.text(
            (b.tf_peak_mb or 0.0) + top * 0.01,
            y - h / 2,
            f"{b.tf_peak_mb:,.0f}" if b.tf_peak_mb is not None else "n/a",
            va="center",
            fontsize=7.5,
        )
    labels = [with_tag(f"{b.label} ({b.tf_device})" if b.tf_device else b.label, b.synthetic) for b in bars]
    ax.set_yticks(ys, labels, fontsize=8)
    ax.set_xlim(0, top * 1.15)
    ax.set_xlabel("memory (MB)", fontsize=9)
    fig.legend(loc="outside lower center", fontsize=8, frameon=False, ncols=2)
    ax.set_title("Peak memory per path", fontsize=10)
    return fig


def trend_figure(series: Sequence[TrendSeries]) -> Any:
    """Throughput, peak RSS and test accuracy per path over history entries (stacked panels, shared x);
    a dotted vertical line in the series' colour marks each change point (the first night of a new level)."""
    series = [s for s in series if s.times]
    if not series:
        return empty_figure("No history entries with successful runs: no trend to draw.")
    import matplotlib.dates as mdates
    from matplotlib.lines import Line2D

    fig = new_figure(8.0, 7.4 + 0.18 * len(series))
    axes = dict(zip(("throughput", "peak_rss", "test_accuracy"), fig.subplots(3, 1, sharex=True), strict=True))
    for ax in axes.values():
        style_axes(ax)
    for i, s in enumerate(series):
        _trend_lines(axes, s, {
            "color": PALETTE[i % len(PALETTE)], "marker": MARKERS[i % len(MARKERS)],
            "linestyle": LINESTYLES[i % len(LINESTYLES)], "linewidth": 1.5, "markersize": 5,
        })  # fmt: skip
    axes["throughput"].set_ylabel("steady throughput\n(samples/s)", fontsize=9)
    axes["peak_rss"].set_ylabel("peak RSS\n(MB, median over runs)", fontsize=9)
    axes["test_accuracy"].set_ylabel("test accuracy\n(fraction, mean over seeds)", fontsize=9)
    axes["test_accuracy"].set_xlabel("nightly run (UTC)", fontsize=9)
    axes["throughput"].set_ylim(bottom=0)
    thousands(axes["throughput"].yaxis)
    thousands(axes["peak_rss"].yaxis)
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    axes["test_accuracy"].xaxis.set_major_locator(locator)
    axes["test_accuracy"].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    axes["throughput"].set_title("Trend over nightly runs", fontsize=10)
    handles, labels = [], []
    for ax in axes.values():
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if any(s.changes for s in series):
        handles.append(Line2D([], [], color="0.3", linestyle=":", linewidth=1.2))
        labels.append("change point (first night of a new level)")
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 3), fontsize=8, frameon=False)
    return fig


def _trend_lines(axes: dict[str, Any], s: TrendSeries, style: dict[str, Any]) -> None:
    """One series' points on each panel, and its change points as dotted vertical lines."""
    columns = {"throughput": s.throughput_samples_per_s, "peak_rss": s.peak_rss_mb, "test_accuracy": s.test_accuracy}
    for panel, values in columns.items():
        pts = [(t, v) for t, v in zip(s.times, values, strict=False) if v is not None]
        if pts:
            axes[panel].plot([p[0] for p in pts], [p[1] for p in pts], label=s.label, **style)
    for panel, when in s.changes:
        axes[panel].axvline(when, color=style["color"], linestyle=":", linewidth=1.2)


def throughput_png(bars: Sequence[Bar]) -> bytes:
    """PNG of :func:`throughput_figure`."""
    return to_png(throughput_figure(bars))


def step_time_png(dists: Sequence[Distribution]) -> bytes:
    """PNG of :func:`step_time_figure`."""
    return to_png(step_time_figure(dists))


def memory_png(bars: Sequence[MemoryBar]) -> bytes:
    """PNG of :func:`memory_figure`."""
    return to_png(memory_figure(bars))


def trend_png(series: Sequence[TrendSeries]) -> bytes:
    """PNG of :func:`trend_figure`."""
    return to_png(trend_figure(series))
