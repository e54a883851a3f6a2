"""Results history: one subdirectory per nightly run, trend data over runs, ``tfparity history``.

Layout (written by :func:`add_entry`, i.e. ``tfparity history DIR --add RESULTS...``)::

    HISTORY/
      20261125T021700Z-nightly/        one entry = one nightly run (<UTC stamp>-<label>)
        cpu/<run_id>.json              one subdirectory per machine (the result set's name)
        gpu/<run_id>.json

A trend series is one (machine, path, benchmark, dataset); its points are the entries, ordered by
time (the stamp in the entry's name, else the earliest ``started_utc`` of its results). Entries are
never overwritten: an entry is assembled in a hidden temporary directory and renamed into place.

An entry whose results cannot be loaded (e.g. written by an older schema) is skipped and listed in
``History.skipped`` with the reason, so one bad night does not hide the rest of the trend.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import logging
import math
import os
import re
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import safe_name
from harness.errors import UserError
from harness.results import ResultError, RunResult, load_result, result_files
from harness.timeutil import utc_stamp

log = logging.getLogger(__name__)

_ENTRY_RE = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<label>.+))?$")
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


class HistoryError(UserError, ValueError):
    """A history directory or an argument of ``tfparity history`` is unusable, explained in one line."""


@dataclass(frozen=True)
class HistoryEntry:
    """One nightly run: its results, with the machine (subdirectory) each result came from."""

    name: str
    label: str
    time: _dt.datetime
    results: list[tuple[str, RunResult]]  # (machine, result)


@dataclass
class History:
    root: str
    entries: list[HistoryEntry] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (entry name, reason)


def parse_utc(text: str) -> _dt.datetime:
    """Parse the harness's UTC timestamps (``2026-11-25T15:35:01Z``)."""
    return _dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.timezone.utc)


def _entry_time(name: str, results: list[tuple[str, RunResult]]) -> _dt.datetime | None:
    m = _ENTRY_RE.match(name)
    if m:
        return _dt.datetime.strptime(m["stamp"], STAMP_FORMAT).replace(tzinfo=_dt.timezone.utc)
    times = []
    for _, r in results:
        try:
            times.append(parse_utc(r.started_utc))
        except ValueError:
            continue
    return min(times) if times else None


def load_entry(path: Path) -> HistoryEntry:
    """Load one entry directory strictly (a bad result file raises :class:`ResultError`)."""
    results = []
    for f in result_files(path):
        rel = f.relative_to(path)
        machine = rel.parts[0] if len(rel.parts) > 1 else ""
        results.append((machine, load_result(f)))
    if not results:
        raise ResultError("no result files")
    time = _entry_time(path.name, results)
    if time is None:
        raise ResultError("no timestamp in the name and no parseable started_utc")
    m = _ENTRY_RE.match(path.name)
    label = (m["label"] or "") if m else path.name
    return HistoryEntry(name=path.name, label=label, time=time, results=results)


def load_history(root: str | os.PathLike[str]) -> History:
    """Every entry under ``root`` (oldest first); unloadable entries are skipped with the reason."""
    base = Path(root)
    if not base.is_dir():
        raise HistoryError(f"history directory {str(root)!r} does not exist or is not a directory")
    history = History(root=str(base))
    for sub in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            history.entries.append(load_entry(sub))
        except ResultError as exc:
            log.warning("skipping history entry %s: %s", sub.name, exc)
            history.skipped.append((sub.name, str(exc)))
    history.entries.sort(key=lambda e: (e.time, e.name))
    return history


def add_entry(root: str | os.PathLike[str], sources: list[str], *, label: str = "nightly",
              stamp: str | None = None) -> Path:
    """Copy result sets into a new entry ``<stamp>-<label>/<source name>/`` (atomic, never overwrites).

    Every result file is loaded (strictly) before anything is copied, so a history entry never
    holds a file the report could not read.
    """
    safe_name("label", label)
    stamp = stamp or utc_stamp()
    if not re.fullmatch(r"\d{8}T\d{6}Z", stamp):
        raise HistoryError(f"stamp must look like 20261125T021700Z, got {stamp!r}")
    base = Path(root)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HistoryError(f"cannot create history directory {str(root)!r}: {exc.strerror or exc}") from None
    names: dict[str, Path] = {}
    files: list[tuple[Path, Path]] = []  # (source file, path relative to the entry)
    for src in sources:
        sp = Path(src)
        if not sp.exists():
            raise HistoryError(f"no such results file or directory: {src!r}")
        machine = sp.stem if sp.is_file() else sp.resolve().name
        if machine in names and names[machine] != sp.resolve():
            raise HistoryError(f"two result sets are both named {machine!r} ({str(names[machine])!r} and {src!r}); "
                               "rename one directory")
        names[machine] = sp.resolve()
        found = result_files(sp)
        if not found:
            raise HistoryError(f"no result files found in {src!r}")
        for f in found:
            load_result(f)  # strict: refuse to archive what cannot be read back
            rel = Path(machine) / (f.relative_to(sp) if sp.is_dir() else Path(f.name))
            files.append((f, rel))
    final = base / f"{stamp}-{label}"
    if final.exists():
        raise HistoryError(f"history entry {str(final)!r} already exists; entries are never overwritten")
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=base))
    try:
        for f, rel in files:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, tmp / rel)
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, final)  # fails if final appeared meanwhile (non-empty dir) or is a file
        except OSError:
            raise HistoryError(f"history entry {str(final)!r} already exists; entries are never overwritten") from None
        tmp = None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def latest_entry(history: History, label: str | None = None) -> HistoryEntry | None:
    entries = [e for e in history.entries if label is None or e.label == label]
    return entries[-1] if entries else None


# --- trend data --------------------------------------------------------------------------------


def _series_key(machine: str, r: RunResult) -> tuple[str, str, str, str]:
    s = r.run_spec
    return (machine, s.path.name, s.benchmark, s.dataset)


def _series_label(key: tuple[str, str, str, str], multi_machine: bool, multi_dataset: bool) -> str:
    machine, path, bench, ds = key
    label = f"{path} · {bench}"
    if multi_dataset:
        label += f" · {ds}"
    if multi_machine and machine:
        label += f" @ {machine}"
    return label


def _median(values: list[float]) -> float | None:
    vals = sorted(v for v in values if math.isfinite(v))
    if not vals:
        return None
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2


def trend_rows(history: History) -> list[dict[str, Any]]:
    """One row per entry x series: throughput (median over seeds) and test accuracy (mean)."""
    keys = {_series_key(m, r) for e in history.entries for m, r in e.results if r.run_spec.mode == "train"}
    multi_machine = len({k[0] for k in keys}) > 1
    multi_dataset = len({k[3] for k in keys}) > 1
    rows = []
    for e in history.entries:
        groups: dict[tuple[str, str, str, str], list[RunResult]] = defaultdict(list)
        for m, r in e.results:
            if r.run_spec.mode == "train":  # probe runs have no throughput or accuracy
                groups[_series_key(m, r)].append(r)
        for key in sorted(groups):
            runs = groups[key]
            ok = [r for r in runs if r.ok]
            thr = [r.timing.steady_throughput_samples_per_s for r in ok
                   if r.timing is not None and r.timing.steady_throughput_samples_per_s is not None]
            acc = [r.test_accuracy for r in ok if r.test_accuracy is not None and math.isfinite(r.test_accuracy)]
            rows.append({
                "entry": e.name, "time_utc": e.time.strftime("%Y-%m-%dT%H:%M:%SZ"), "key": key,
                "series": _series_label(key, multi_machine, multi_dataset),
                "synthetic": any(r.dataset is not None and r.dataset.synthetic for r in runs),
                "n_ok": len(ok), "n_failed": len(runs) - len(ok),
                "throughput_samples_per_s": _median(thr),
                "test_accuracy": (math.fsum(acc) / len(acc)) if acc else None,
            })
    return rows


def trend_series(history: History) -> list[Any]:
    """The rows of :func:`trend_rows` as one :class:`harness.plots.TrendSeries` per series."""
    from harness.plots import TrendSeries

    by_series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in trend_rows(history):
        by_series[row["series"]].append(row)
    out = []
    for label in sorted(by_series):
        rows = by_series[label]
        synthetic = any(r["synthetic"] for r in rows)
        out.append(TrendSeries(
            label=label + (" [synthetic data]" if synthetic else ""),
            times=[parse_utc(r["time_utc"]) for r in rows],
            throughput_samples_per_s=[r["throughput_samples_per_s"] for r in rows],
            test_accuracy=[r["test_accuracy"] for r in rows]))
    return out


# --- rendering ---------------------------------------------------------------------------------


def render_text(history: History) -> str:
    """A plain-text trend table for the terminal."""
    lines = [f"history {history.root}: {len(history.entries)} entries"
             + (f", {len(history.skipped)} skipped" if history.skipped else "")]
    rows = trend_rows(history)
    if rows:
        header = ("entry", "series", "runs", "samples/s", "test acc")
        table = [header] + [(r["entry"], r["series"], f"{r['n_ok']}/{r['n_ok'] + r['n_failed']}",
                             f"{r['throughput_samples_per_s']:,.0f}" if r["throughput_samples_per_s"] is not None
                             else "n/a",
                             f"{r['test_accuracy']:.4f}" if r["test_accuracy"] is not None else "n/a")
                            for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for row in table:
            lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in
                                   enumerate(zip(row, widths, strict=True))).rstrip())
    for name, why in history.skipped:
        lines.append(f"skipped {name}: {why}")
    return "\n".join(lines)


def write_history_report(history: History, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``OUT/history.md`` and a self-contained ``OUT/history.html`` with the trend plot (atomic writes)."""
    import base64
    import html as _html

    from harness import plots
    from harness.report import _CSS, _html_table, _md_table, prepare_output_dir, write_bytes_atomic

    out = prepare_output_dir(out_dir)
    png = plots.trend_png(trend_series(history))
    rows = trend_rows(history)
    headers = ["entry", "time (UTC)", "series", "runs ok", "steady throughput (samples/s)", "test accuracy"]
    cells = [[r["entry"], r["time_utc"], r["series"] + (" [synthetic]" if r["synthetic"] else ""),
              f"{r['n_ok']}/{r['n_ok'] + r['n_failed']}",
              f"{r['throughput_samples_per_s']:,.0f}" if r["throughput_samples_per_s"] is not None else "n/a",
              f"{r['test_accuracy']:.4f}" if r["test_accuracy"] is not None else "n/a"] for r in rows]
    skipped = [f"skipped {n}: {why}" for n, why in history.skipped]
    md = [f"# tfparity history: {history.root}", "", f"{len(history.entries)} entries.", "",
          "![Trend over nightly runs](plots/trend.png)", ""]
    md += _md_table(headers, cells) + [""] + [f"- {s}" for s in skipped]
    e = _html.escape
    page = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
            f"<title>tfparity history</title><style>{_CSS}</style></head><body>",
            f"<h1>tfparity history</h1><p><code>{e(history.root)}</code>: {len(history.entries)} entries.</p>",
            f'<figure><img alt="Trend over nightly runs" src="data:image/png;base64,'
            f'{base64.b64encode(png).decode("ascii")}"></figure>',
            _html_table(headers, cells, numeric=(3, 4, 5))]
    page += [f"<p>{e(s)}</p>" for s in skipped]
    page.append("</body></html>")
    write_bytes_atomic(out / "plots" / "trend.png", png)
    md_path = write_bytes_atomic(out / "history.md", ("\n".join(md) + "\n").encode("utf-8"))
    html_path = write_bytes_atomic(out / "history.html", ("\n".join(page) + "\n").encode("utf-8"))
    return md_path, html_path


# --- CLI ---------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``tfparity history DIR [-o OUT] [--add RESULTS... [--label NAME]] [--latest]``."""
    parser.add_argument("history_dir", metavar="DIR", help="history directory (one subdirectory per nightly run)")
    parser.add_argument("-o", "--output", default=None, metavar="OUT",
                        help="write OUT/history.md and OUT/history.html with the trend plot")
    parser.add_argument("--add", nargs="+", default=None, metavar="RESULTS",
                        help="first archive these result directories as a new entry (one subdirectory each)")
    parser.add_argument("--label", default=None,
                        help="with --add: label of the new entry (default: nightly); "
                             "with --latest: only consider entries with this label")
    parser.add_argument("--stamp", default=None, help="UTC stamp of the new entry (default: now), e.g. 20261125T021700Z")
    parser.add_argument("--latest", action="store_true",
                        help="only print the newest entry's directory (nothing if there is none) and exit")


def run_cli(args: argparse.Namespace) -> int:
    """Archive (optional), then print the trend table or the newest entry; write OUT if asked."""
    if args.add:
        entry = add_entry(args.history_dir, args.add, label=args.label or "nightly", stamp=args.stamp)
        print(f"added {entry}")
        if not args.output and not args.latest:
            return 0  # archiving is a pipeline step: no trend table unless asked for one
    elif args.stamp is not None:
        raise HistoryError("--stamp only applies together with --add")
    elif args.label is not None and not args.latest:
        raise HistoryError("--label only applies together with --add or --latest")
    if args.latest:
        if not Path(args.history_dir).exists():
            return 0  # no history yet: no baseline, which the caller treats as "nothing to compare"
        newest = latest_entry(load_history(args.history_dir), args.label)
        if newest is not None:
            print(Path(args.history_dir) / newest.name)
        return 0
    history = load_history(args.history_dir)
    print(render_text(history))
    if args.output:
        md, page = write_history_report(history, args.output)
        print(md)
        print(page)
    return 0
