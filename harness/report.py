"""``tfparity report``: results + comparison in, Markdown and self-contained HTML out.

The renderers are pure: :func:`build_report` turns results, a comparison and (optionally) a
history into a :class:`Report` (tables, the seed experiment's claims, figures as PNG bytes);
:func:`render_markdown` and :func:`render_html` turn that into text. Only :func:`run_cli` and
:func:`write_report` touch the file system, and every file is written atomically (temp file in the
same directory, fsync, rename), so an existing report is replaced whole or not at all.

The verdict section is a function of a ``Comparison`` from :mod:`harness.compare` (duck-typed:
``verdict``, ``reference``, ``checks`` of ``Check(name, verdict, subject, summary, details)``).
TensorFlow is never imported here; matplotlib only when figures are drawn.
"""

from __future__ import annotations

import argparse
import base64
import html
import logging
import math
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import UserError
from harness.results import RunResult
from harness.timeutil import utc_now

if TYPE_CHECKING:  # pragma: no cover
    from harness.history import History

log = logging.getLogger(__name__)

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
PLOTS_DIR = "plots"

# The seed script's claims for MNIST (the "claimed" column of the seed-experiment table).
CLAIM_BASELINE_VAL_ACCURACY_MIN = 0.90
CLAIM_BN_TRAIN_ACCURACY_MAX = 0.95
CLAIM_DATASETS = ("mnist", "mnist-5k")  # the claims were made for MNIST; other datasets are flagged
BN_MODEL = "batchnorm"
BASELINE_MODEL = "baseline"

VERDICT_ORDER = {"FAIL": 0, "WARN": 1, "PASS": 2}


class ReportError(UserError, ValueError):
    """Bad report arguments (output directory, margin, ...), explained in one line."""


# --- statistics --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stat:
    """Summary of a sample: mean, sample sd and a 95 % confidence interval of the mean."""

    n: int
    mean: float | None
    sd: float | None
    ci_low: float | None
    ci_high: float | None
    method: str = "t"  # "t" over runs; "steps" (one run, from step times); "wilson" (one run, test set)

    @property
    def ci_half(self) -> float | None:
        if self.ci_low is None or self.ci_high is None:
            return None
        return (self.ci_high - self.ci_low) / 2


def describe(values: Iterable[float | None]) -> Stat:
    """Mean, sd (ddof=1) and a Student-t 95 % CI of the mean over the finite values."""
    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    n = len(vals)
    if n == 0:
        return Stat(0, None, None, None, None)
    mean = math.fsum(vals) / n
    if n == 1:
        return Stat(1, mean, None, None, None)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / (n - 1))
    from scipy import stats

    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return Stat(n, mean, sd, mean - half, mean + half)


def wilson_interval(p: float, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score 95 % interval of an accuracy measured on ``n`` test samples."""
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def steady_step_times_ms(result: RunResult) -> list[float]:
    """The raw step-time samples after warm-up (each sample is ms per step)."""
    t = result.timing
    if t is None or not t.step_time_ms:
        return []
    skip = math.ceil(t.warmup_steps / max(t.steps_per_sample, 1))
    steady = t.step_time_ms[skip:]
    return [v for v in steady if math.isfinite(v) and v > 0]


def _throughput_stat(runs: Sequence[RunResult]) -> Stat:
    """Throughput over seeds; a single run gets a CI from the spread of its steady step times."""
    values = [r.timing.steady_throughput_samples_per_s for r in runs if r.timing is not None]
    stat = describe(values)
    if stat.n != 1:
        return stat
    run = next(r for r in runs if r.timing is not None and r.timing.steady_throughput_samples_per_s is not None)
    steps = describe(steady_step_times_ms(run))
    if steps.n < 2 or not steps.mean or steps.ci_half is None:
        return stat
    # Relative precision of the mean step time carries over to its reciprocal (throughput).
    rel = steps.ci_half / steps.mean
    assert stat.mean is not None
    return Stat(1, stat.mean, None, stat.mean / (1 + rel), stat.mean / max(1 - rel, 1e-9), method="steps")


def _accuracy_stat(runs: Sequence[RunResult]) -> Stat:
    stat = describe(r.test_accuracy for r in runs)
    if stat.n != 1:
        return stat
    run = next(r for r in runs if r.test_accuracy is not None)
    if run.dataset is None or run.dataset.n_test <= 0 or stat.mean is None:
        return stat
    low, high = wilson_interval(stat.mean, run.dataset.n_test)
    return Stat(1, stat.mean, None, low, high, method="wilson")


def _median(values: Iterable[float | None]) -> float | None:
    vals = sorted(float(v) for v in values if v is not None and math.isfinite(v))
    if not vals:
        return None
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2


def last_epoch(result: RunResult) -> Any | None:
    return result.epochs[-1] if result.epochs else None


def generalization_gap(result: RunResult) -> float | None:
    """Train accuracy minus validation accuracy at the last epoch (recorded or derived)."""
    if result.generalization_gap is not None:
        return result.generalization_gap
    ep = last_epoch(result)
    if ep is None or ep.val_accuracy is None:
        return None
    return ep.train_accuracy - ep.val_accuracy


# --- grouping ----------------------------------------------------------------------------------


GroupNames = dict[int, str]  # id(result) -> group label, when results come from several sources


def path_name(result: RunResult, names: GroupNames | None = None) -> str:
    """The group a result belongs to: its path name, or compare's ``source:path`` label."""
    if names and id(result) in names:
        return names[id(result)]
    return result.run_spec.path.name


def group_names(results: Sequence[RunResult], labels: Sequence[str] | None) -> GroupNames | None:
    """compare's grouping: a path seen in two sources (local vs docker) becomes ``source:path``."""
    if labels is None:
        return None
    if len(labels) != len(results):
        raise ValueError(f"labels must name the source of every result: {len(labels)} for {len(results)}")
    sources: dict[str, set[str]] = defaultdict(set)
    for r, label in zip(results, labels, strict=True):
        sources[r.run_spec.path.name].add(label)
    return {id(r): (f"{label}:{r.run_spec.path.name}" if len(sources[r.run_spec.path.name]) > 1
                    else r.run_spec.path.name)
            for r, label in zip(results, labels, strict=True)}


def is_synthetic(result: RunResult) -> bool:
    return bool(result.dataset is not None and result.dataset.synthetic) or result.run_spec.dataset == "synthetic"


def group_results(results: Iterable[RunResult],
                  names: GroupNames | None = None) -> dict[tuple[str, str, str], list[RunResult]]:
    """Successful training results keyed by (path, benchmark, dataset), in a stable order.

    Numerics-probe runs (mode "probe") have no curves or throughput; compare judges them.
    """
    groups: dict[tuple[str, str, str], list[RunResult]] = defaultdict(list)
    for r in results:
        spec = r.run_spec
        if r.ok and spec.mode == "train":
            groups[(path_name(r, names), spec.benchmark, spec.dataset)].append(r)
    return {k: sorted(groups[k], key=lambda r: r.run_spec.seed) for k in sorted(groups)}


@dataclass(frozen=True)
class PathRow:
    """One line of the per-path table: a benchmark on a dataset on a path, over seeds."""

    path: str
    benchmark: str
    dataset: str
    synthetic: bool
    seeds: list[int]
    n_failed: int
    test_accuracy: Stat
    gap: Stat
    throughput: Stat
    compile_time_s: float | None
    step_time_ms_p50: float | None
    peak_rss_mb: float | None
    tf_peak_mb: float | None
    tf_device: str


def path_rows(results: Sequence[RunResult], names: GroupNames | None = None) -> list[PathRow]:
    failed: dict[tuple[str, str, str], int] = defaultdict(int)
    for r in results:
        if not r.ok:
            s = r.run_spec
            failed[(path_name(r, names), s.benchmark, s.dataset)] += 1
    rows = []
    groups = group_results(results, names)
    for key in sorted(set(groups) | set(failed)):
        runs = groups.get(key, [])
        p, bench, ds = key
        devices = sorted({r.memory.tf_device for r in runs if r.memory is not None})
        rows.append(PathRow(
            path=p, benchmark=bench, dataset=ds, synthetic=any(is_synthetic(r) for r in runs) or ds == "synthetic",
            seeds=[r.run_spec.seed for r in runs], n_failed=failed.get(key, 0),
            test_accuracy=_accuracy_stat(runs),
            gap=describe(generalization_gap(r) for r in runs),
            throughput=_throughput_stat(runs),
            compile_time_s=_median(r.timing.compile_time_s for r in runs if r.timing is not None),
            step_time_ms_p50=_median(r.timing.step_time_ms_p50 for r in runs if r.timing is not None),
            peak_rss_mb=_median(r.memory.peak_rss_mb for r in runs if r.memory is not None),
            tf_peak_mb=_median(r.memory.tf_peak_mb for r in runs if r.memory is not None),
            tf_device=", ".join(devices),
        ))
    return rows


# --- the seed experiment's claims --------------------------------------------------------------


@dataclass(frozen=True)
class ClaimCheck:
    """One of the seed's claims, measured on one dataset x path."""

    dataset: str
    path: str
    synthetic: bool
    claim: str
    claimed: str
    measured: str
    holds: bool | None  # None: not measurable here (a model is missing)
    note: str = ""


def _last_values(runs: Sequence[RunResult], attr: str) -> list[float]:
    out = []
    for r in runs:
        ep = last_epoch(r)
        v = getattr(ep, attr, None) if ep is not None else None
        if v is not None and math.isfinite(v):
            out.append(float(v))
    return out


def fmt_num(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def fmt_mean_sd(stat: Stat, digits: int = 3) -> str:
    if stat.n == 0 or stat.mean is None:
        return "n/a"
    if stat.sd is None:
        return f"{stat.mean:.{digits}f} (n=1)"
    return f"{stat.mean:.{digits}f} ± {stat.sd:.{digits}f} (n={stat.n})"


def seed_claims(results: Sequence[RunResult], names: GroupNames | None = None) -> list[ClaimCheck]:
    """The seed's three claims, per dataset x path, each with claimed value, measured mean ± sd, holds."""
    groups = group_results(results, names)
    keys = sorted({(ds, p) for (p, _b, ds) in groups})
    checks: list[ClaimCheck] = []
    for ds, p in keys:
        base = groups.get((p, BASELINE_MODEL, ds), [])
        bn = groups.get((p, BN_MODEL, ds), [])
        synthetic = any(is_synthetic(r) for r in base + bn) or ds == "synthetic"
        if not base and not bn:
            continue
        # 1. baseline val accuracy >= 0.90 (last epoch)
        vals = _last_values(base, "val_accuracy")
        st = describe(vals)
        holds = None if st.mean is None else st.mean >= CLAIM_BASELINE_VAL_ACCURACY_MIN
        note = (f"{sum(v >= CLAIM_BASELINE_VAL_ACCURACY_MIN for v in vals)}/{len(vals)} seeds reach it"
                if vals else "no baseline runs on this path")
        checks.append(ClaimCheck(ds, p, synthetic, "baseline reaches val accuracy ≥ 0.90 (last epoch)",
                                 f"≥ {CLAIM_BASELINE_VAL_ACCURACY_MIN:.2f}", fmt_mean_sd(st), holds, note))
        # 2. BN gap smaller than baseline gap
        gap_base = {r.run_spec.seed: generalization_gap(r) for r in base}
        gap_bn = {r.run_spec.seed: generalization_gap(r) for r in bn}
        st_base = describe(gap_base.values())
        st_bn = describe(gap_bn.values())
        if st_base.mean is None or st_bn.mean is None:
            holds, note = None, "needs both baseline and batchnorm runs on this path"
        else:
            holds = st_bn.mean < st_base.mean
            paired = [gap_bn[s] - gap_base[s] for s in sorted(set(gap_base) & set(gap_bn))
                      if gap_bn[s] is not None and gap_base[s] is not None]
            diff = describe(paired)
            if diff.ci_low is not None and diff.ci_high is not None:
                significant = diff.ci_high < 0 or diff.ci_low > 0
                note = (f"paired Δ (BN − baseline) = {diff.mean:+.3f}, 95 % CI [{diff.ci_low:+.3f}, "
                        f"{diff.ci_high:+.3f}] over {diff.n} seeds: "
                        + ("outside seed noise" if significant else "within seed noise"))
            else:
                note = f"Δ (BN − baseline) = {st_bn.mean - st_base.mean:+.3f}; one seed cannot separate the models"
        checks.append(ClaimCheck(ds, p, synthetic, "BatchNormalization shrinks the train/val gap",
                                 "gap(BN) < gap(baseline)",
                                 f"BN {fmt_mean_sd(st_bn)} vs baseline {fmt_mean_sd(st_base)}", holds, note))
        # 3. BN train accuracy < 0.95
        vals = _last_values(bn, "train_accuracy")
        st = describe(vals)
        holds = None if st.mean is None else st.mean < CLAIM_BN_TRAIN_ACCURACY_MAX
        note = (f"{sum(v < CLAIM_BN_TRAIN_ACCURACY_MAX for v in vals)}/{len(vals)} seeds stay below"
                if vals else "no batchnorm runs on this path")
        checks.append(ClaimCheck(ds, p, synthetic, "BN model's train accuracy stays < 0.95 (less memorisation)",
                                 f"< {CLAIM_BN_TRAIN_ACCURACY_MAX:.2f}", fmt_mean_sd(st), holds, note))
    return checks


def bn_gap_answer(claims: Sequence[ClaimCheck]) -> list[str]:
    """One sentence per dataset: does BN shrink the train/val gap, on every path?"""
    lines = []
    by_ds: dict[str, list[ClaimCheck]] = defaultdict(list)
    for c in claims:
        if c.claim.startswith("BatchNormalization shrinks"):
            by_ds[c.dataset].append(c)
    for ds in sorted(by_ds):
        cs = by_ds[ds]
        measured = [c for c in cs if c.holds is not None]
        flags = []
        if any(c.synthetic for c in cs):
            flags.append("synthetic data: the answer says nothing about MNIST")
        elif ds not in CLAIM_DATASETS:
            flags.append("the seed's claims were made for MNIST, not this dataset")
        suffix = f" ({'; '.join(flags)})" if flags else ""
        if not measured:
            lines.append(f"{ds}: cannot be answered — no path has both baseline and batchnorm runs{suffix}.")
            continue
        yes = [c.path for c in measured if c.holds]
        no = [c.path for c in measured if not c.holds]
        noisy = [c.path for c in measured if "within seed noise" in c.note]
        single = [c.path for c in measured if "cannot separate" in c.note]
        if not no:
            text = f"{ds}: **Yes** — BN's gap is smaller on every path ({len(yes)}/{len(measured)})"
        elif not yes:
            text = f"{ds}: **No** — BN's gap is not smaller on any path (0/{len(measured)}; {', '.join(no)})"
        else:
            text = (f"{ds}: **No, not on every path** — smaller on {len(yes)}/{len(measured)} "
                    f"({', '.join(yes)}), not on {', '.join(no)}")
        if noisy:
            text += f"; the difference is within seed noise on {', '.join(noisy)}"
        if single:
            text += f"; one seed only on {', '.join(single)}: run more seeds to separate the models"
        lines.append(text + suffix + ".")
    return lines


# --- provenance --------------------------------------------------------------------------------


def _distinct(values: Iterable[Any]) -> str:
    """Distinct non-empty values in first-seen order ("n/a" only when there is none)."""
    seen: list[str] = []
    for v in values:
        if v in (None, "", "n/a", [], {}):
            continue
        s = str(v)
        if s not in seen:
            seen.append(s)
    return "; ".join(seen) if seen else "n/a"


def _tf_build(env: dict[str, Any]) -> str:
    info = env.get("tf_build_info") or {}
    if not isinstance(info, dict) or not info:
        return "n/a"
    if info.get("is_cuda_build"):
        return f"CUDA {info.get('cuda_version', '?')}, cuDNN {info.get('cudnn_version', '?')}"
    return "CPU build (no CUDA)"


def _devices(r: RunResult) -> str:
    parts = []
    if r.evidence is not None and r.evidence.physical_devices:
        parts.append(", ".join(r.evidence.physical_devices))
    gpus = r.environment.get("gpus") or []
    if isinstance(gpus, list):
        for g in gpus:
            if isinstance(g, dict):
                parts.append(f"{g.get('name', '?')} (driver {g.get('driver', '?')})")
    cpu = r.environment.get("cpu_model")
    if cpu:
        parts.append(f"{cpu} × {r.environment.get('cpu_count', '?')}")
    return " · ".join(parts) if parts else "n/a"


def _short(value: Any, n: int) -> Any:
    return value[:n] if isinstance(value, str) else value


PROVENANCE_FIELDS = ("backend", "TF / Keras", "TF build", "devices", "container image", "image id",
                     "dataset (sha256)", "git commit", "host", "Python / platform", "started (UTC)")


def provenance_rows(results: Sequence[RunResult],
                    names: GroupNames | None = None) -> list[tuple[str, dict[str, str]]]:
    """Per path: the environment the runs actually had (distinct values joined)."""
    by_path: dict[str, list[RunResult]] = defaultdict(list)
    for r in results:
        by_path[path_name(r, names)].append(r)
    out = []
    for p in sorted(by_path):
        # Failed runs often lack evidence/dataset; they describe the path only if nothing succeeded.
        runs = [r for r in by_path[p] if r.ok] or by_path[p]
        envs = [r.environment for r in runs]

        def ds_text(r: RunResult) -> str | None:
            if r.dataset is None:
                return None
            flag = " [synthetic]" if r.dataset.synthetic else ""
            return f"{r.dataset.name} {r.dataset.sha256[:12]}{flag}"

        starts = sorted(r.started_utc for r in runs)
        out.append((p, {
            "backend": _distinct(e.get("backend") for e in envs),
            "TF / Keras": _distinct(f"{e.get('tensorflow_version', '?')} / {e.get('keras_version', '?')}" for e in envs),
            "TF build": _distinct(_tf_build(e) for e in envs),
            "devices": _distinct(_devices(r) for r in runs),
            "container image": _distinct(e.get("container_image") for e in envs),
            "image id": _distinct(_short(e.get("image_id"), 19) for e in envs),
            "dataset (sha256)": _distinct(ds_text(r) for r in runs),
            "git commit": _distinct(_short(e.get("git_commit"), 12) for e in envs),
            "host": _distinct(e.get("hostname") for e in envs),
            "Python / platform": _distinct(f"{e.get('python_version', '?')} / {e.get('platform', '?')}" for e in envs),
            "started (UTC)": f"{starts[0]} … {starts[-1]}" if starts[0] != starts[-1] else starts[0],
        }))
    return out


# --- the report model --------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    name: str  # file stem, e.g. "accuracy_curves"
    title: str
    caption: str
    png: bytes


@dataclass
class Report:
    title: str
    generated_utc: str
    n_results: int
    comparison: Any | None
    rows: list[PathRow]
    claims: list[ClaimCheck]
    answer: list[str]
    provenance: list[tuple[str, dict[str, str]]]
    failed: list[RunResult]
    figures: list[Figure] = field(default_factory=list)
    history: Any | None = None  # harness.history.History
    history_rows: list[dict[str, Any]] = field(default_factory=list)
    names: GroupNames | None = None

    @property
    def verdict(self) -> str:
        return getattr(self.comparison, "verdict", None) or "NONE"

    @property
    def any_synthetic(self) -> bool:
        return any(r.synthetic for r in self.rows)


def _figures(results: Sequence[RunResult], rows: Sequence[PathRow], history: History | None,
             names: GroupNames | None = None) -> list[Figure]:
    from harness import plots

    groups = group_results(results, names)
    panels = [plots.CurvePanel(model=b, path=p, dataset=ds,
                               train_accuracy=[[e.train_accuracy for e in r.epochs] for r in runs],
                               val_accuracy=[[e.val_accuracy for e in r.epochs] for r in runs],
                               synthetic=any(is_synthetic(r) for r in runs))
              for (p, b, ds), runs in groups.items() if any(r.epochs for r in runs)]
    bars = [plots.Bar(label=f"{row.path} · {row.benchmark}" + (f" · {row.dataset}" if _multi_ds(rows) else ""),
                      value=row.throughput.mean, low=row.throughput.ci_low, high=row.throughput.ci_high,
                      synthetic=row.synthetic, group=row.path)
            for row in rows if row.throughput.mean is not None]
    dists = [plots.Distribution(label=f"{p} · {b}" + (f" · {ds}" if _multi_ds(rows) else ""),
                                samples=[v for r in runs for v in steady_step_times_ms(r)],
                                synthetic=any(is_synthetic(r) for r in runs))
             for (p, b, ds), runs in groups.items()]
    mem = [plots.MemoryBar(label=f"{row.path} · {row.benchmark}" + (f" · {row.dataset}" if _multi_ds(rows) else ""),
                           peak_rss_mb=row.peak_rss_mb, tf_peak_mb=row.tf_peak_mb, tf_device=row.tf_device,
                           synthetic=row.synthetic)
           for row in rows]
    figs = [
        Figure("accuracy_curves", "Train vs validation accuracy",
               "Per model (rows) and path (columns): mean over seeds, seed range shaded; the hatched area "
               "between the curves is the train/validation gap (overfitting).",
               plots.accuracy_curves_png(panels)),
        Figure("throughput", "Throughput per path",
               "Steady-state training throughput (warm-up excluded); error bars are 95 % confidence "
               "intervals over seeds (or over steady steps for a single run).",
               plots.throughput_png(bars)),
        Figure("step_time", "Step-time distribution",
               "Raw steady-state step times of all seeds: box = quartiles, whiskers = 1st-99th percentile.",
               plots.step_time_png(dists)),
        Figure("memory", "Memory",
               "Median over seeds of the peak process RSS and of TensorFlow's allocator peak on the device shown.",
               plots.memory_png(mem)),
    ]
    if history is not None:
        from harness.history import trend_series

        figs.append(Figure("trend", "Trend over nightly runs",
                           "Per path and model: steady throughput (median over seeds) and test accuracy "
                           "(mean over seeds) of each history entry.",
                           plots.trend_png(trend_series(history))))
    return figs


def _multi_ds(rows: Sequence[PathRow]) -> bool:
    return len({r.dataset for r in rows}) > 1


def build_report(results: Sequence[RunResult], comparison: Any | None, *, history: History | None = None,
                 labels: Sequence[str] | None = None, title: str = "tfparity report",
                 generated_utc: str | None = None, with_figures: bool = True) -> Report:
    """Everything the report shows, computed once; the renderers only format it.

    ``labels`` (one source per result, as given to ``compare_results``) splits a path that was
    measured in two sources (local vs docker) into ``source:path`` groups, as compare does.
    """
    names = group_names(results, labels)
    rows = path_rows(results, names)
    claims = seed_claims(results, names)
    history_rows: list[dict[str, Any]] = []
    if history is not None:
        from harness.history import trend_rows

        history_rows = trend_rows(history)
    report = Report(
        title=title, generated_utc=generated_utc or utc_now(), n_results=len(results), comparison=comparison,
        rows=rows, claims=claims, answer=bn_gap_answer(claims), provenance=provenance_rows(results, names),
        failed=[r for r in results if not r.ok], history=history, history_rows=history_rows, names=names)
    if with_figures:
        report.figures = _figures(results, rows, history, names)
    return report


# --- shared formatting -------------------------------------------------------------------------


def _checks(comparison: Any | None) -> list[Any]:
    checks = list(getattr(comparison, "checks", None) or [])
    return sorted(checks, key=lambda c: VERDICT_ORDER.get(getattr(c, "verdict", ""), 3))


def _verdict_counts(comparison: Any | None) -> str:
    counts: dict[str, int] = defaultdict(int)
    for c in _checks(comparison):
        counts[c.verdict] += 1
    return ", ".join(f"{counts[v]} {v}" for v in ("FAIL", "WARN", "PASS") if counts.get(v)) or "no checks"


def _pm(stat: Stat, digits: int, thousands: bool = False) -> str:
    if stat.mean is None:
        return "n/a"
    f = f"{{:,.{digits}f}}" if thousands else f"{{:.{digits}f}}"
    text = f.format(stat.mean)
    if stat.ci_half is not None:
        text += " ± " + f.format(stat.ci_half)
        if stat.method != "t":
            text += " †" if stat.method == "steps" else " ‡"
    return text


def _row_cells(row: PathRow) -> list[str]:
    seeds = f"{len(row.seeds)}" + (f" (+{row.n_failed} failed)" if row.n_failed else "")
    mem = fmt_num(row.tf_peak_mb, 0) + (f" ({row.tf_device})" if row.tf_device else "")
    return [
        row.path, row.benchmark, row.dataset + (" [synthetic]" if row.synthetic else ""), seeds,
        _pm(row.test_accuracy, 4), fmt_mean_sd(row.gap).replace(f" (n={row.gap.n})", "") if row.gap.n else "n/a",
        _pm(row.throughput, 0, thousands=True), fmt_num(row.compile_time_s, 2), fmt_num(row.step_time_ms_p50, 2),
        fmt_num(row.peak_rss_mb, 0), mem,
    ]


ROW_HEADERS = ["path", "model", "dataset", "seeds", "test accuracy ± 95 % CI", "train/val gap ± sd",
               "steady throughput (samples/s) ± 95 % CI", "compile time (s)", "step p50 (ms)",
               "peak RSS (MB)", "TF peak (MB, device)"]

TABLE_NOTES = ("CI over seeds (Student t). † single run: CI from the spread of its steady step times. "
               "‡ single run: Wilson interval over the test set. Gap = train − validation accuracy at the "
               "last epoch. Compile time, step p50 and memory are medians over seeds.")


def _yes_no(holds: bool | None) -> str:
    return "n/a" if holds is None else ("yes" if holds else "no")


def _first_line(text: str | None, limit: int = 200) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


# --- Markdown ----------------------------------------------------------------------------------


def _md_escape(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_md_escape(h) for h in headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(report: Report, image_paths: dict[str, str] | None = None) -> str:
    """The report as GitHub-flavoured Markdown; figures link to ``image_paths[name]`` when given."""
    cmp = report.comparison
    out = [f"# {report.title}", "",
           f"Generated {report.generated_utc} from {report.n_results} result(s).", ""]
    out += [f"## Verdict: **{report.verdict}**", ""]
    if cmp is None:
        out += ["No comparison was run.", ""]
    else:
        ref = getattr(cmp, "reference", None)
        out += [f"Reference path: `{ref}` · checks: {_verdict_counts(cmp)}", ""]
        checks = _checks(cmp)
        if checks:
            out += _md_table(["verdict", "check", "subject", "summary"],
                             [[c.verdict, c.name, c.subject, c.summary] for c in checks])
            out.append("")
    if report.any_synthetic:
        out += ["> **Synthetic data**: rows marked [synthetic] were measured on generated data; their "
                "accuracies say nothing about MNIST.", ""]
    out += ["## Per-path results", ""]
    out += _md_table(ROW_HEADERS, [_row_cells(r) for r in report.rows]) if report.rows else ["No results."]
    out += ["", f"_{TABLE_NOTES}_", ""]
    out += ["## The seed experiment: does BatchNormalization shrink the train/val gap, on every path?", ""]
    out += [f"- {line}" for line in report.answer] or ["- No baseline/batchnorm runs to answer it."]
    out.append("")
    if report.claims:
        out += _md_table(["dataset", "path", "claim", "claimed", "measured (mean ± sd over seeds)", "holds", "note"],
                         [[c.dataset + (" [synthetic]" if c.synthetic else ""), c.path, c.claim, c.claimed,
                           c.measured, _yes_no(c.holds), c.note] for c in report.claims])
        out.append("")
    if report.figures:
        out += ["## Plots", ""]
        for fig in report.figures:
            if fig.name == "trend":
                continue
            out += [f"### {fig.title}", ""]
            if image_paths and fig.name in image_paths:
                out += [f"![{fig.title}]({image_paths[fig.name]})", ""]
            out += [f"_{fig.caption}_", ""]
    if report.history is not None:
        out += _md_history(report, image_paths)
    if report.failed:
        out += ["## Failed runs", ""]
        out += _md_table(["run", "path", "status", "error"],
                         [[r.run_id, path_name(r, report.names), r.status, _first_line(r.error)]
                          for r in report.failed])
        out.append("")
    out += ["## Environment and provenance", ""]
    if report.provenance:
        paths = [p for p, _ in report.provenance]
        out += _md_table(["", *paths], [[f, *[vals[f] for _, vals in report.provenance]] for f in PROVENANCE_FIELDS])
    out.append("")
    return "\n".join(out)


def _history_headers(report: Report) -> list[str]:
    return ["entry", "time (UTC)", "series", "runs", "steady throughput (samples/s)", "test accuracy"]


def _history_cells(row: dict[str, Any]) -> list[str]:
    return [row["entry"], row["time_utc"], row["series"], str(row["n_ok"]) + (f" (+{row['n_failed']} failed)"
                                                                            if row["n_failed"] else ""),
            f"{row['throughput_samples_per_s']:,.0f}" if row["throughput_samples_per_s"] is not None else "n/a",
            fmt_num(row["test_accuracy"], 4)]


def _md_history(report: Report, image_paths: dict[str, str] | None) -> list[str]:
    hist = report.history
    out = ["## History", "", f"{len(hist.entries)} entr{'y' if len(hist.entries) == 1 else 'ies'} in "
           f"`{hist.root}`.", ""]
    trend = next((f for f in report.figures if f.name == "trend"), None)
    if trend is not None and image_paths and "trend" in image_paths:
        out += [f"![{trend.title}]({image_paths['trend']})", "", f"_{trend.caption}_", ""]
    if report.history_rows:
        out += _md_table(_history_headers(report), [_history_cells(r) for r in report.history_rows])
        out.append("")
    for skipped in hist.skipped:
        out.append(f"- skipped `{skipped[0]}`: {skipped[1]}")
    if hist.skipped:
        out.append("")
    return out


# --- HTML --------------------------------------------------------------------------------------

_CSS = """
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;color:#1a1a1a;background:#fff;margin:2em auto;
max-width:1200px;padding:0 1em;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #bbb;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.86em}
th,td{border:1px solid #bbb;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f0f0f0}td:first-child,table.ids3 td:nth-child(-n+3),table.ids2 td:nth-child(-n+2){white-space:nowrap}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.verdict{display:inline-block;font-size:1.5em;font-weight:bold;padding:.3em .8em;border:3px solid;border-radius:6px}
.PASS{color:#0a5a2a;border-color:#1b7a3c;background:#e6f4ea}.WARN{color:#6b4a00;border-color:#b07d00;background:#fff4d6}
.FAIL{color:#8a1111;border-color:#b3261e;background:#fde7e7}.NONE{color:#333;border-color:#888;background:#f3f3f3}
.tag{font-size:.8em;font-weight:bold;padding:0 .3em;border:1px solid;border-radius:3px}
.synthetic{color:#6b4a00;border-color:#b07d00;background:#fff4d6}
.yes{color:#0a5a2a;font-weight:bold}.no{color:#8a1111;font-weight:bold}
.note{color:#444;font-size:.85em}figure{margin:1em 0;page-break-inside:avoid}
figure img{max-width:100%;height:auto;border:1px solid #ddd}figcaption{font-size:.85em;color:#444}
details{margin:.4em 0}summary{cursor:pointer;color:#0a5a2a}
.banner{border-left:5px solid #b07d00;background:#fff8e6;padding:.4em .8em}
@media print{body{margin:0;max-width:none}h2{page-break-after:avoid}}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _html_table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, raw: bool = False,
                numeric: Sequence[int] = (), css_class: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, c in enumerate(row):
            cls = ' class="num"' if i in numeric else ""
            cells.append(f"<td{cls}>{c if raw else _e(c)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cls = f' class="{css_class}"' if css_class else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _img(fig: Figure) -> str:
    data = base64.b64encode(fig.png).decode("ascii")
    return (f'<figure id="fig-{_e(fig.name)}"><img alt="{_e(fig.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(fig.caption)}</figcaption></figure>")


def _synthetic_tag(flag: bool) -> str:
    return ' <span class="tag synthetic">synthetic data</span>' if flag else ""


def _md_bold_to_html(text: str) -> str:
    parts = _e(text).split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))


def _html_checks(checks: Sequence[Any]) -> str:
    return _html_table(["verdict", "check", "subject", "summary"],
                       [[f'<span class="tag {_e(c.verdict)}">{_e(c.verdict)}</span>', _e(c.name), _e(c.subject),
                         _e(c.summary)] for c in checks], raw=True)


def render_html(report: Report) -> str:
    """A self-contained HTML page: inline CSS, figures as data: URIs, no scripts, no network."""
    cmp = report.comparison
    v = report.verdict
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{_e(report.title)} — {_e(v)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{_e(report.title)}</h1>",
             f'<p class="note">Generated {_e(report.generated_utc)} from {report.n_results} result(s).</p>',
             '<section id="verdict"><h2>Verdict</h2>',
             f'<p><span class="verdict {_e(v)}" id="verdict-value">Verdict: {_e(v)}</span></p>']
    if cmp is None:
        parts.append("<p>No comparison was run.</p>")
    else:
        parts.append(f"<p>Reference path: <code>{_e(getattr(cmp, 'reference', None))}</code> · checks: "
                     f"{_e(_verdict_counts(cmp))}</p>")
        checks = _checks(cmp)
        # FAIL/WARN checks are what a reader needs first; PASS checks are folded away (no script).
        loud = [c for c in checks if c.verdict != "PASS"]
        quiet = [c for c in checks if c.verdict == "PASS"]
        if loud:
            parts.append(_html_checks(loud))
        if quiet:
            parts.append(f"<details><summary>{len(quiet)} PASS check(s)</summary>{_html_checks(quiet)}</details>")
    parts.append("</section>")
    if report.any_synthetic:
        parts.append('<p class="banner"><strong>Synthetic data:</strong> rows marked '
                     '<span class="tag synthetic">synthetic data</span> were measured on generated data; their '
                     "accuracies say nothing about MNIST.</p>")
    parts.append('<section id="paths"><h2>Per-path results</h2>')
    if report.rows:
        rows = []
        for r in report.rows:
            cells = [_e(c) for c in _row_cells(r)]
            cells[2] = _e(r.dataset) + _synthetic_tag(r.synthetic)
            rows.append(cells)
        parts.append(_html_table(ROW_HEADERS, rows, raw=True, numeric=range(3, 11), css_class="ids3"))
    else:
        parts.append("<p>No results.</p>")
    parts.append(f'<p class="note">{_e(TABLE_NOTES)}</p></section>')
    parts.append('<section id="seed"><h2>The seed experiment: does BatchNormalization shrink the train/val gap, '
                 "on every path?</h2><ul>")
    parts += [f"<li>{_md_bold_to_html(line)}</li>" for line in report.answer] or [
        "<li>No baseline/batchnorm runs to answer it.</li>"]
    parts.append("</ul>")
    if report.claims:
        parts.append(_html_table(
            ["dataset", "path", "claim", "claimed", "measured (mean ± sd over seeds)", "holds", "note"],
            [[_e(c.dataset) + _synthetic_tag(c.synthetic), _e(c.path), _e(c.claim), _e(c.claimed), _e(c.measured),
              f'<span class="{_yes_no(c.holds)}">{_yes_no(c.holds)}</span>', f'<span class="note">{_e(c.note)}</span>']
             for c in report.claims], raw=True, css_class="ids2"))
    parts.append("</section>")
    figs = [f for f in report.figures if f.name != "trend"]
    if figs:
        parts.append('<section id="plots"><h2>Plots</h2>')
        for fig in figs:
            parts.append(f"<h3>{_e(fig.title)}</h3>{_img(fig)}")
        parts.append("</section>")
    if report.history is not None:
        hist = report.history
        parts.append(f'<section id="history"><h2>History</h2><p>{len(hist.entries)} '
                     f"entr{'y' if len(hist.entries) == 1 else 'ies'} in <code>{_e(hist.root)}</code>.</p>")
        trend = next((f for f in report.figures if f.name == "trend"), None)
        if trend is not None:
            parts.append(_img(trend))
        if report.history_rows:
            parts.append(_html_table(_history_headers(report), [_history_cells(r) for r in report.history_rows],
                                     numeric=(3, 4, 5)))
        if hist.skipped:
            parts.append("<ul>" + "".join(f"<li>skipped <code>{_e(n)}</code>: {_e(why)}</li>"
                                          for n, why in hist.skipped) + "</ul>")
        parts.append("</section>")
    if report.failed:
        parts.append('<section id="failed"><h2>Failed runs</h2>')
        parts.append(_html_table(["run", "path", "status", "error"],
                                 [[r.run_id, path_name(r, report.names), r.status, _first_line(r.error)]
                                  for r in report.failed]))
        parts.append("</section>")
    parts.append('<section id="provenance"><h2>Environment and provenance</h2>')
    if report.provenance:
        paths = [p for p, _ in report.provenance]
        parts.append(_html_table(["", *paths],
                                 [[f, *[vals[f] for _, vals in report.provenance]] for f in PROVENANCE_FIELDS]))
    parts.append("</section></body></html>")
    return "\n".join(parts) + "\n"


# --- files and CLI -----------------------------------------------------------------------------


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Temp file in the same directory, fsync, rename: readers see the old file or the new one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a report is meant to be read
        os.replace(tmp, path)
        tmp = ""
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
    return path


def prepare_output_dir(out_dir: str | os.PathLike[str]) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ReportError(f"report output {str(out)!r} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / PLOTS_DIR).mkdir(exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot create report directory {str(out)!r}: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK):
        raise ReportError(f"report directory {str(out)!r} is not writable")
    return out


def write_report(report: Report, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write plots/*.png, report.md and report.html (each atomically); returns (md, html) paths."""
    out = prepare_output_dir(out_dir)
    image_paths = {}
    try:
        for fig in report.figures:
            write_bytes_atomic(out / PLOTS_DIR / f"{fig.name}.png", fig.png)
            image_paths[fig.name] = f"{PLOTS_DIR}/{fig.name}.png"
        md = write_bytes_atomic(out / REPORT_MD, render_markdown(report, image_paths).encode("utf-8"))
        page = write_bytes_atomic(out / REPORT_HTML, render_html(report).encode("utf-8"))
    except OSError as exc:
        raise ReportError(f"cannot write report in {str(out)!r}: {exc.strerror or exc}") from None
    return md, page


def _margin(value: str) -> float:
    try:
        margin = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of percentage points, got {value!r}") from None
    if not math.isfinite(margin) or margin <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of percentage points, got {value!r}")
    return margin


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``tfparity report RESULTS... -o DIR [--reference PATH] [--margin-pp X] [--history DIR] [--baseline DIR]``."""
    parser.add_argument("results", nargs="+", metavar="RESULTS",
                        help="result directories or files (searched recursively); each argument is one source, "
                             "as for 'tfparity compare'")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="directory for report.md, report.html and plots/ (created; files replaced atomically)")
    parser.add_argument("--reference", default=None, metavar="PATH",
                        help="reference group for the agreement checks (default: compare's, the cpu-fp32 path)")
    parser.add_argument("--margin-pp", type=_margin, default=1.0, metavar="PP",
                        help="accuracy equivalence margin in percentage points (default: 1.0)")
    parser.add_argument("--history", default=None, metavar="DIR",
                        help="history directory (one subdirectory per nightly run) for a trend section")
    parser.add_argument("--baseline", default=None, metavar="DIR",
                        help="baseline results: include compare's regression checks in the verdict")
    parser.add_argument("--title", default="tfparity report", help="report title")


def run_cli(args: argparse.Namespace) -> int:
    """Load, compare, render, write. Prints the two report paths; 0 even when the verdict is FAIL."""
    from harness.compare import compare_results, source_labels
    from harness.results import load_results

    # Same grouping as `tfparity compare A B`: each argument is one source, labelled the same way.
    loaded = [load_results([t]) for t in args.results]
    sources = source_labels(list(args.results), loaded)
    results = [r for rs in loaded for r in rs]
    labels = [label for label, rs in zip(sources, loaded, strict=True) for _ in rs]
    baseline = baseline_labels = None
    if args.baseline:
        baseline, baseline_labels = _load_baseline(args.baseline, sources)
    comparison = compare_results(results, reference=args.reference, margin_pp=args.margin_pp, labels=labels,
                                 baseline=baseline, baseline_labels=baseline_labels)
    history = None
    if args.history:
        from harness.history import load_history

        history = load_history(args.history)
    report = build_report(results, comparison, history=history, labels=labels, title=args.title)
    md, page = write_report(report, args.output)
    log.info("report verdict %s for %d results", report.verdict, len(results))
    print(md)
    print(page)
    return 0


def _load_baseline(target: str, sources: Sequence[str]) -> tuple[list[RunResult], list[str]]:
    """Baseline results with the source label each one pairs with.

    A history entry holds one subdirectory per machine (``cpu/``, ``gpu/``), named like the
    current sources, so a result under ``<baseline>/<source>/`` is labelled ``<source>``. With one
    source on both sides everything pairs with it (as ``tfparity compare --baseline`` does);
    otherwise the result's backend is its label.
    """
    from harness.results import ResultError, load_result, result_files

    base = Path(target)
    files = result_files(base)
    if not files:
        raise ResultError(f"no result files found in {target!r}")
    results, labels = [], []
    for f in files:
        r = load_result(f)
        rel = f.relative_to(base).parts if base.is_dir() else ()
        if len(rel) > 1 and rel[0] in sources:
            label = rel[0]
        elif len(set(sources)) == 1:
            label = sources[0]
        else:
            label = str(r.environment.get("backend") or "local")
        results.append(r)
        labels.append(label)
    return results, labels
