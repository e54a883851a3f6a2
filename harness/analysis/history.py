"""Results history: one subdirectory per nightly run, trend data over runs, ``tfparity history``.

Layout (written by :func:`add_entry`, i.e. ``tfparity history DIR --add RESULTS...``)::

    HISTORY/
      20261125T021700Z-nightly/        one entry = one nightly run (<UTC stamp>-<label>)
        cpu/<run_id>.json              one subdirectory per machine (the result set's name)
        cpu/.../noise.json             A/A noise floors measured with the results, when there are any
        gpu/<run_id>.json

A trend series is one (machine, group, benchmark, dataset) (:func:`series_runs`); its points are the
entries, ordered by time (the stamp in the entry's name, else the earliest ``started_utc`` of its results). Entries are
never overwritten: an entry is assembled in a hidden temporary directory and renamed into place.

An entry whose results cannot be loaded (e.g. written by an older schema) is skipped and listed in
``History.skipped`` with the reason, so one bad night does not hide the rest of the trend.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import re
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from harness.analysis import per_run
from harness.analysis.noise import noise_files
from harness.analysis.samples import Run, is_synthetic, label_runs
from harness.analysis.stats import mean, median
from harness.errors import HistoryError, ResultError
from harness.spec.validate import safe_name
from harness.store.results import RunResult, load_result, result_files
from harness.timeutil import utc_stamp

log = logging.getLogger(__name__)

_ENTRY_RE = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<label>.+))?$")


STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


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


def add_entry(
    root: str | os.PathLike[str], sources: list[str], *, label: str = "nightly", stamp: str | None = None
) -> Path:
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
            raise HistoryError(
                f"two result sets are both named {machine!r} ({str(names[machine])!r} and {src!r}); "
                "rename one directory"
            )
        names[machine] = sp.resolve()
        found = result_files(sp)
        if not found:
            raise HistoryError(f"no result files found in {src!r}")
        for f in found:
            load_result(f)  # strict: refuse to archive what cannot be read back
            rel = Path(machine) / (f.relative_to(sp) if sp.is_dir() else Path(f.name))
            files.append((f, rel))
        if sp.is_dir():  # the A/A noise floors measured with these results travel with them
            files += [(f, Path(machine) / f.relative_to(sp)) for f in noise_files(sp)]
    final = base / f"{stamp}-{label}"
    if final.exists():
        raise HistoryError(f"history entry {str(final)!r} already exists; entries are never overwritten")
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=base))
    done = False
    try:
        for f, rel in files:
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, work / rel)
        os.chmod(work, 0o755)
        try:
            os.rename(work, final)  # fails if final appeared meanwhile (non-empty dir) or is a file
        except OSError:
            raise HistoryError(f"history entry {str(final)!r} already exists; entries are never overwritten") from None
        done = True
    finally:
        if not done:
            shutil.rmtree(work, ignore_errors=True)
    return final


def latest_entry(history: History, label: str | None = None) -> HistoryEntry | None:
    entries = [e for e in history.entries if label is None or e.label == label]
    return entries[-1] if entries else None


@dataclass(frozen=True)
class TrendRow:
    """One history entry x one series (machine, group, benchmark, dataset)."""

    entry: str
    time_utc: str
    series: str
    synthetic: bool
    n_ok: int
    n_failed: int
    throughput_samples_per_s: float | None  # median over runs of the per-run throughput (per_run.throughput)
    test_accuracy: float | None  # mean over seeds
    peak_rss_mb: float | None = None  # median over runs


def series_runs(history: History, mode: str = "train") -> list[tuple[HistoryEntry, str, Run]]:
    """Every run of ``mode`` with its entry and series name: the one definition of a trend series.

    A series is a group of :mod:`harness.analysis.samples` (the machine, i.e. the entry's
    subdirectory, being the source) x benchmark x dataset, labelled over all entries at once so
    that a series keeps its name from night to night: ``"<group> · <benchmark>"`` (+ ``" · <dataset>"``
    when the history holds several datasets).
    """
    picked = [(e, m, r) for e in history.entries for m, r in e.results if r.run_spec.mode == mode]
    runs = label_runs([r for _, _, r in picked], [m or "-" for _, m, _ in picked])
    multi_dataset = len({run.spec.dataset for run in runs}) > 1
    return [
        (entry, f"{run.group} · {run.spec.benchmark}" + (f" · {run.spec.dataset}" if multi_dataset else ""), run)
        for (entry, _, _), run in zip(picked, runs, strict=True)
    ]


def trend_rows(history: History) -> list[TrendRow]:
    """One row per entry x series (:func:`series_runs`), oldest entry first."""
    cells: dict[tuple[str, str], list[RunResult]] = defaultdict(list)
    for entry, name, run in series_runs(history):
        cells[(entry.name, name)].append(run.result)
    rows = []
    for e in history.entries:
        for name in sorted(n for en, n in cells if en == e.name):
            members = cells[(e.name, name)]
            ok = [r for r in members if r.ok]
            rows.append(
                TrendRow(
                    entry=e.name,
                    time_utc=e.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    series=name,
                    synthetic=any(is_synthetic(r) for r in members),
                    n_ok=len(ok),
                    n_failed=len(members) - len(ok),
                    throughput_samples_per_s=median(per_run.values(ok, "throughput")),
                    test_accuracy=mean(r.test_accuracy for r in ok),
                    peak_rss_mb=median(per_run.values(ok, "peak_rss")),
                )
            )
    return rows
