"""Layout checks for figures (used by the tests): no overlapping text, nothing cut off the canvas."""

from __future__ import annotations

from typing import Any


def overlapping_texts(fig: Any) -> list[tuple[str, str]]:
    """Pairs of visible, non-empty text artists whose rendered boxes overlap (should be none).

    Used by the tests as the "no overlapping text" check; tick labels of shared axes that are
    hidden by matplotlib are not visible and are ignored.
    """
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = []
    for artist in fig.findobj(Text):
        if not artist.get_visible() or not artist.get_text().strip():
            continue
        axes = artist.axes
        if axes is not None and not axes.get_visible():
            continue
        bbox = artist.get_window_extent(renderer)
        if bbox.width <= 0 or bbox.height <= 0:
            continue
        boxes.append((artist.get_text(), bbox.shrunk(0.96, 0.9)))  # tolerate touching glyph boxes
    clashes = []
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            if boxes[i][1].overlaps(boxes[j][1]):
                clashes.append((boxes[i][0], boxes[j][0]))
    return clashes


def texts_outside(fig: Any) -> list[str]:
    """Visible texts that extend beyond the figure canvas (they would be cut off)."""
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    out = []
    for artist in fig.findobj(Text):
        if not artist.get_visible() or not artist.get_text().strip():
            continue
        b = artist.get_window_extent(renderer)
        if b.width <= 0:
            continue
        if b.x0 < box.x0 - 1 or b.x1 > box.x1 + 1 or b.y0 < box.y0 - 1 or b.y1 > box.y1 + 1:
            out.append(artist.get_text())
    return out
