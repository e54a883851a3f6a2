"""One table model for every renderer: terminal (fixed width), Markdown and HTML share it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Cell:
    """A table cell: its text, an optional CSS class (HTML) and an optional tag (e.g. "synthetic data")."""

    text: str
    css: str = ""
    tag: str = ""

    def plain(self) -> str:
        return f"{self.text} [{self.tag}]" if self.tag else self.text


@dataclass(frozen=True)
class Table:
    """Headers and rows of cells; ``numeric`` columns are right-aligned (and tabular in HTML)."""

    headers: Sequence[str]
    rows: Sequence[Sequence[Cell | str]]
    numeric: frozenset[int] = field(default_factory=frozenset)
    css: str = ""  # class of the HTML table

    def cells(self) -> list[list[Cell]]:
        return [[c if isinstance(c, Cell) else Cell(str(c)) for c in row] for row in self.rows]

    def text(self, *, max_width: dict[int, int] | None = None) -> str:
        """Fixed-width columns separated by two spaces, a dashed rule under the header."""
        body = [[c.plain() for c in row] for row in self.cells()]
        limits = max_width or {}
        body = [[_clip(v, limits.get(i)) for i, v in enumerate(row)] for row in body]
        widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(self.headers)]
        last = len(widths) - 1

        def line(values: Sequence[str]) -> str:
            parts = [
                v.rjust(w) if i in self.numeric else (v if i == last else v.ljust(w))
                for i, (v, w) in enumerate(zip(values, widths, strict=True))
            ]
            return "  ".join(parts).rstrip()

        return "\n".join([line(self.headers), line(["-" * w for w in widths]), *(line(r) for r in body)])

    def markdown(self) -> list[str]:
        """GitHub-flavoured Markdown lines (pipes escaped)."""
        lines = [
            "| " + " | ".join(_md(h) for h in self.headers) + " |",
            "|" + "|".join("---:" if i in self.numeric else "---" for i in range(len(self.headers))) + "|",
        ]
        lines += ["| " + " | ".join(_md(c.plain()) for c in row) + " |" for row in self.cells()]
        return lines


def _clip(value: str, limit: int | None) -> str:
    if limit is None or len(value) <= limit:
        return value
    return value[: limit - 1] + "…"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
