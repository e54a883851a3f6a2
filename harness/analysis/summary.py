"""Per-group rows: one benchmark on one dataset in one group, summarised over its seeds.

The run summary (``tfparity run``) and the report's per-path table are both built from
:func:`group_rows`, over the groups of :func:`harness.analysis.samples.label_runs`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from harness.analysis import per_run
from harness.analysis.samples import Run, generalization_gap, is_synthetic
from harness.analysis.stats import Stat, describe, median, wilson_interval

RowKey = tuple[str, str, str]  # (group label, benchmark, dataset)


@dataclass(frozen=True)
class GroupRow:
    """One line of a per-group table: a benchmark on a dataset in one group, over seeds."""

    group: str
    benchmark: str
    dataset: str
    synthetic: bool
    seeds: list[int]
    n_failed: int
    train_accuracy: Stat
    val_accuracy: Stat
    test_accuracy: Stat
    gap: Stat
    throughput: Stat
    compile_time_s: float | None
    step_time_ms_p50: float | None
    peak_rss_mb: float | None
    tf_peak_mb: float | None
    tf_device: str

    @property
    def n_ok(self) -> int:
        return len(self.seeds)


def train_groups(runs: Sequence[Run]) -> dict[RowKey, list[Run]]:
    """Successful training runs by (group, benchmark, dataset), sorted by seed, in a stable order.

    Numerics-probe runs (mode "probe") have no curves or throughput; compare judges them.
    """
    groups: dict[RowKey, list[Run]] = defaultdict(list)
    for run in runs:
        if run.result.ok and run.spec.mode == "train":
            groups[(run.group, run.spec.benchmark, run.spec.dataset)].append(run)
    return {k: sorted(groups[k], key=lambda r: r.spec.seed) for k in sorted(groups)}


def group_rows(runs: Sequence[Run]) -> list[GroupRow]:
    failed: dict[RowKey, int] = defaultdict(int)
    for run in runs:
        if not run.result.ok and run.spec.mode == "train":
            failed[(run.group, run.spec.benchmark, run.spec.dataset)] += 1
    groups = train_groups(runs)
    return [_row(key, groups.get(key, []), failed.get(key, 0)) for key in sorted(set(groups) | set(failed))]


def _row(key: RowKey, runs: list[Run], n_failed: int) -> GroupRow:
    group, bench, ds = key
    results = [r.result for r in runs]
    last = [r.epochs[-1] for r in results if r.epochs]
    return GroupRow(
        group=group,
        benchmark=bench,
        dataset=ds,
        synthetic=any(is_synthetic(r) for r in results) or ds == "synthetic",
        seeds=[r.spec.seed for r in runs],
        n_failed=n_failed,
        train_accuracy=describe(e.train_accuracy for e in last),
        val_accuracy=describe(e.val_accuracy for e in last),
        test_accuracy=_accuracy_stat(runs),
        gap=describe(generalization_gap(r) for r in results),
        throughput=_throughput_stat(runs),
        compile_time_s=median(r.timing.compile_time_s for r in results if r.timing is not None),
        step_time_ms_p50=median(r.timing.step_time_ms_p50 for r in results if r.timing is not None),
        peak_rss_mb=median(r.memory.peak_rss_mb for r in results if r.memory is not None),
        tf_peak_mb=median(r.memory.tf_peak_mb for r in results if r.memory is not None),
        tf_device=", ".join(sorted({r.memory.tf_device for r in results if r.memory is not None})),
    )


def _throughput_stat(runs: Sequence[Run]) -> Stat:
    """Throughput over runs: one value per run (batch x 1000 / p25 of its steady step times), a
    Student-t CI over those values. A single run has no interval: its steps are not independent
    samples of the run-to-run noise (one process can sit in a 2x slower mode throughout)."""
    return describe(per_run.values([r.result for r in runs], "throughput"))


def _accuracy_stat(runs: Sequence[Run]) -> Stat:
    stat = describe(r.result.test_accuracy for r in runs)
    if stat.n != 1 or stat.mean is None:
        return stat
    run = next(r for r in runs if r.result.test_accuracy is not None)
    if run.result.dataset is None or run.result.dataset.n_test <= 0:
        return stat
    low, high = wilson_interval(stat.mean, run.result.dataset.n_test)
    return Stat(1, stat.mean, None, low, high, method="wilson")
