"""The accuracy-curves figure: train vs validation accuracy per epoch, one panel per model x path."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from harness.render.plots import PALETTE, CurvePanel, empty_figure, new_figure, style_axes, to_png, with_tag


def _mean_band(rows: Sequence[Sequence[float | None]]) -> tuple[list[float], list[float], list[float]]:
    """Per-epoch mean, min and max over seeds; epochs missing in some seeds use the seeds present."""
    import numpy as np

    length = max(len(r) for r in rows)
    means, lows, highs = [], [], []
    for i in range(length):
        vals = [v for r in rows if i < len(r) and (v := r[i]) is not None and math.isfinite(v)]
        if vals:
            arr = np.asarray(vals, dtype=float)
            means.append(float(arr.mean()))
            lows.append(float(arr.min()))
            highs.append(float(arr.max()))
        else:
            means.append(math.nan)
            lows.append(math.nan)
            highs.append(math.nan)
    return means, lows, highs


def accuracy_curves_figure(panels: Sequence[CurvePanel]) -> Any:
    """Train vs validation accuracy per epoch, one panel per model x path.

    The mean over seeds is drawn as a line, the seed range (min-max) as a light band, and the
    area between the train and validation means is hatched: that area is the overfitting gap.
    Rows are models (and datasets), columns are paths, so a column compares models on one path.
    """
    if not panels:
        return empty_figure("No successful training runs: no accuracy curves to draw.")
    rows = sorted({(p.model, p.dataset) for p in panels})
    cols = sorted({p.path for p in panels})
    ncols = min(len(cols), 4)
    # Paths beyond four columns wrap onto extra rows of the same model.
    col_chunks = [cols[i : i + ncols] for i in range(0, len(cols), ncols)]
    width_in = max(3.4 * ncols, 6.5)
    fig = new_figure(width_in, 2.7 * len(rows) * len(col_chunks) + 0.7)
    axes = fig.subplots(len(rows) * len(col_chunks), ncols, squeeze=False, sharey=True)
    by_key = {(p.model, p.dataset, p.path): p for p in panels}
    handles: list[Any] = []
    for r, (model, dataset) in enumerate(rows):
        for c_chunk, chunk in enumerate(col_chunks):
            for c in range(ncols):
                ax = axes[r * len(col_chunks) + c_chunk][c]
                panel = by_key.get((model, dataset, chunk[c])) if c < len(chunk) else None
                if panel is None:
                    ax.axis("off")
                    continue
                drawn = _draw_panel(ax, panel, first_column=c == 0)
                if len(drawn) > len(handles):  # the seed-range band appears only with several seeds
                    handles = drawn
    if handles:
        # About 2.6 in per entry at this font size: wrap onto two rows rather than clip a narrow figure.
        ncol = max(1, min(len(handles), int(width_in / 2.6)))
        fig.legend(handles=handles, loc="outside lower center", ncols=ncol, fontsize=8, frameon=False)
    return fig


def _draw_panel(ax: Any, panel: CurvePanel, *, first_column: bool) -> list[Any]:
    """One model x path: mean curves, the seed band, the hatched gap; returns the legend handles."""
    style_axes(ax)
    tr_mean, tr_lo, tr_hi = _mean_band(panel.train_accuracy)
    va_mean, va_lo, va_hi = _mean_band(panel.val_accuracy)
    epochs = list(range(1, max(len(tr_mean), len(va_mean)) + 1))
    e_tr, e_va = epochs[: len(tr_mean)], epochs[: len(va_mean)]
    line = {"markersize": 3.5, "linewidth": 1.8}
    (h_tr,) = ax.plot(
        e_tr, tr_mean, color=PALETTE[0], linestyle="-", marker="o", label="train accuracy (mean over seeds)", **line
    )
    (h_va,) = ax.plot(
        e_va,
        va_mean,
        color=PALETTE[1],
        linestyle="--",
        marker="s",
        label="validation accuracy (mean over seeds)",
        **line,
    )
    handles = [h_tr, h_va]
    n = min(len(tr_mean), len(va_mean))
    handles.append(ax.fill_between(epochs[:n], va_mean[:n], tr_mean[:n], facecolor="none", edgecolor="#7f7f7f",
                                   hatch="///", linewidth=0, label="gap: train - validation"))  # fmt: skip
    if len(panel.train_accuracy) > 1:
        ax.fill_between(e_tr, tr_lo, tr_hi, color=PALETTE[0], alpha=0.15, linewidth=0)
        handles.append(ax.fill_between(e_va, va_lo, va_hi, color=PALETTE[1], alpha=0.15, linewidth=0,
                                       label="seed range (min-max)"))  # fmt: skip
    seeds = len(panel.train_accuracy)
    ax.set_title(
        f"{panel.model} · {panel.path}\n{with_tag(panel.dataset, panel.synthetic)}, {seeds} seed(s)", fontsize=9
    )
    ax.set_xlabel("epoch", fontsize=9)
    if first_column:
        ax.set_ylabel("accuracy (fraction)", fontsize=9)
    ax.tick_params(labelsize=8)
    if len(epochs) <= 12:
        ax.set_xticks(epochs)
    return handles


def accuracy_curves_png(panels: Sequence[CurvePanel]) -> bytes:
    """PNG of :func:`accuracy_curves_figure`."""
    return to_png(accuracy_curves_figure(panels))
