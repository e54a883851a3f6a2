"""Change points over history: the nights where throughput, memory or a parity metric shifted.

Detector (stats.md §5.4, evaluated there against e-divisive on 300-series banks): ``ruptures``'
PELT with the L1 (median) cost, ``min_size=3``, ``jump=1`` and penalty 1.5 ln(n), on robust
z-scores of the series ((x - median) / sigma, sigma = MAD of the first differences / (0.6745 sqrt 2),
insensitive to the shift itself). Each candidate is kept only if the adjacent segments differ by at
least the metric's minimum effect AND a two-sided Mann-Whitney U test between them gives p < 0.05.
Measured: 0-7 % false change points per series; a 15 % step found in 91-98 % of series at a quarter
of today's nightly noise, 19-33 % at today's noise. Series of fewer than 7 nights are not analysed.

Series (one value per night, :func:`harness.analysis.history.series_runs` names them):

=============  =====================================================  =====  ============
metric         nightly value                                          scale  min. effect
=============  =====================================================  =====  ============
throughput     median of the night's per-run throughputs              ln     5 %
peak_rss       median of the night's per-run peak RSS                 ln     1 %
accuracy_delta mean test accuracy minus the cpu-fp32 group's (pp)     pp     0.3 pp
probe_error    median loss relative error of the night's probes       ln     factor 2
=============  =====================================================  =====  ============
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.analysis import per_run, stats
from harness.analysis.history import History, HistoryEntry, series_runs
from harness.analysis.samples import Run

MIN_SIZE = 3  # a shift must persist for 3 nights
PENALTY_PER_LN_N = 1.5
MIN_NIGHTS = 2 * MIN_SIZE + 1
PROBE_ERROR_FLOOR = 1e-12  # an exact probe (error 0) as a finite log value


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    unit: str  # of the change: "%" (log metrics) or "pp"
    log: bool
    min_effect: float  # in ln units for log metrics, else in the metric's unit


METRICS = {
    "throughput": Metric("throughput", "throughput", "%", True, math.log(1.05)),
    "peak_rss": Metric("peak_rss", "peak RSS", "%", True, math.log(1.01)),
    "accuracy_delta": Metric("accuracy_delta", "test accuracy Δ", "pp", False, 0.3),
    "probe_error": Metric("probe_error", "probe loss rel. error", "%", True, math.log(2.0)),
}


@dataclass(frozen=True)
class ChangePoint:
    """A night where ``metric`` of ``series`` moved to a new level (kept after segment confirmation)."""

    metric: str
    series: str
    entry: str  # the first night of the new level
    time_utc: str
    before: float  # median of the segment before, in the metric's natural unit
    after: float  # median of the segment from ``entry`` on
    change: float  # % (log metrics) or pp
    unit: str
    p_value: float


@dataclass(frozen=True)
class SeriesScan:
    """One metric of one series over the nights it has values for."""

    metric: str
    series: str
    nights: int
    analysed: bool  # False: fewer than MIN_NIGHTS nights
    change_points: list[ChangePoint] = field(default_factory=list)


@dataclass(frozen=True)
class Level:
    """A kept change point: the first index of the new level and the adjacent segments' medians."""

    index: int
    before: float  # natural units (exp of the ln median for log metrics)
    after: float
    p_value: float


def find_levels(values: Sequence[float], *, log: bool, min_effect: float, alpha: float = stats.ALPHA) -> list[Level]:
    """The change points of stats.md §5.4's tested call, confirmed on their adjacent segments; [] below 7 values."""
    import ruptures

    x = np.log(np.asarray(values, dtype=float)) if log else np.asarray(values, dtype=float)
    if len(x) < MIN_NIGHTS:
        return []
    d = np.diff(x)
    dev = np.abs(d - _median(d))
    # Robust and shift-insensitive. Deterministic series (e.g. accuracy differences of seeded runs) can
    # have MAD 0; the mean absolute deviation (not the SD, which the shift itself inflates) is the
    # fallback there, and 1 for a constant series.
    sigma = _median(dev) / (0.6745 * math.sqrt(2)) or 1.2533 * float(np.mean(dev)) / math.sqrt(2) or 1.0
    z = ((x - _median(x)) / sigma).reshape(-1, 1)
    algo = ruptures.Pelt(model="l1", min_size=MIN_SIZE, jump=1).fit(z)
    cps = [int(c) for c in algo.predict(pen=PENALTY_PER_LN_N * math.log(len(x)))[:-1]]
    bounds, kept = [0, *cps, len(x)], []
    for i, cp in enumerate(cps):  # confirm each candidate on its adjacent segments
        left, right = x[bounds[i] : cp], x[cp : bounds[i + 2]]
        p = stats.mannwhitney_p(left, right, "two-sided")
        lm, rm = _median(left), _median(right)
        if abs(rm - lm) >= min_effect and p is not None and p < alpha:
            kept.append(Level(cp, math.exp(lm) if log else lm, math.exp(rm) if log else rm, p))
    return kept


def change_points(values: Sequence[float], *, log: bool, min_effect: float, alpha: float = stats.ALPHA) -> list[int]:
    """Indexes of the first value of each new level."""
    return [level.index for level in find_levels(values, log=log, min_effect=min_effect, alpha=alpha)]


def scan(history: History) -> list[SeriesScan]:
    """Every metric of every series, scanned for change points (series sorted by name, metrics in METRICS order)."""
    series = nightly_series(history)
    return [_scan(metric, name, points) for (metric, name), points in sorted(series.items(), key=_order)]


Points = list[tuple[HistoryEntry, float]]


def _order(item: tuple[tuple[str, str], Points]) -> tuple[str, int]:
    (metric, name), _ = item
    return name, list(METRICS).index(metric)


def _scan(metric: str, name: str, points: Points) -> SeriesScan:
    m = METRICS[metric]
    if len(points) < MIN_NIGHTS:
        return SeriesScan(metric, name, len(points), False)
    found = []
    for level in find_levels([v for _, v in points], log=m.log, min_effect=m.min_effect):
        entry = points[level.index][0]
        change = 100 * (level.after / level.before - 1) if m.log else level.after - level.before
        found.append(ChangePoint(metric, name, entry.name, entry.time.strftime("%Y-%m-%dT%H:%M:%SZ"), level.before,
                                 level.after, change, m.unit, level.p_value))  # fmt: skip
    return SeriesScan(metric, name, len(points), True, found)


def nightly_series(history: History) -> dict[tuple[str, str], Points]:
    """(metric, series name) -> [(entry, value)] for the nights the series has a value, oldest first."""
    out: dict[tuple[str, str], Points] = defaultdict(list)
    by_cell: dict[tuple[str, str], list[Run]] = defaultdict(list)
    entries: dict[str, HistoryEntry] = {}
    for entry, name, run in series_runs(history):
        entries[entry.name] = entry
        if run.result.ok:
            by_cell[(entry.name, name)].append(run)
    for e in history.entries:
        for (entry_name, name), runs in sorted(by_cell.items()):
            if entry_name != e.name:
                continue
            for metric in ("throughput", "peak_rss"):
                value = stats.median(per_run.values([r.result for r in runs], metric))
                if value is not None:
                    out[(metric, name)].append((e, value))
        for name, value in _accuracy_deltas(e, by_cell).items():
            out[("accuracy_delta", name)].append((e, value))
    for entry, name, run in series_runs(history, mode="probe"):
        probe = run.result.extra.get("probe") if run.result.ok else None
        err = probe.get("loss_rel_err") if isinstance(probe, dict) else None
        if isinstance(err, (int, float)) and math.isfinite(err):
            out[("probe_error", name)].append((entry, max(float(err), PROBE_ERROR_FLOOR)))
    return {k: _median_per_night(v) for k, v in out.items()}


def _median(values: Sequence[float] | np.ndarray) -> float:
    """stats.median of a sample that is never empty here (segments of >= MIN_SIZE values, a night's runs)."""
    found = stats.median(values)
    return math.nan if found is None else found


def _median_per_night(points: Points) -> Points:
    nights: dict[str, list[float]] = defaultdict(list)
    first: dict[str, HistoryEntry] = {}
    for entry, value in points:
        nights[entry.name].append(value)
        first.setdefault(entry.name, entry)
    return [(first[name], _median(values)) for name, values in nights.items()]


def _accuracy_deltas(entry: HistoryEntry, by_cell: dict[tuple[str, str], list[Run]]) -> dict[str, float]:
    """Per non-reference series of this night: its mean test accuracy minus the reference's (pp).

    The reference of a (machine, benchmark, dataset) is its group on the cpu-fp32 path (XLA off),
    the first by label when several execution settings ran it.
    """
    cells = {name: runs for (e, name), runs in by_cell.items() if e == entry.name}
    units: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for name, runs in cells.items():
        units[(runs[0].source, *runs[0].unit)].append(name)
    deltas = {}
    for names in units.values():
        refs = sorted(n for n in names if cells[n][0].spec.path.name == "cpu-fp32")
        if not refs:
            continue
        ref_acc = stats.mean(r.result.test_accuracy for r in cells[refs[0]])
        for name in names:
            acc = stats.mean(r.result.test_accuracy for r in cells[name])
            if name != refs[0] and acc is not None and ref_acc is not None:
                deltas[f"{name} − {refs[0].split(' · ')[0]}"] = 100 * (acc - ref_acc)
    return deltas
