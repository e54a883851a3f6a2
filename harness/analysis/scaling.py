"""The scaling table: throughput per replica count and the efficiency T_N / (N x T_1), the run as the unit.

N counts the replicas in sync: on one host (``x2``) or one per worker container (``w2``), rows of their own.

A **series** is every group that differs only in its replica count: the same source, benchmark,
dataset, device, precision, XLA, execution settings and batch semantics (the global batch fixed,
or ``batch_per_replica``: weak scaling). Each run contributes one throughput, its own: the global
batch over its median steady step time; a row's throughput T_N is the median of its runs' values
(never the steps of several runs pooled: one process's steps are correlated, TF-FACTS). Speed-up
is T_N / T_1 and efficiency T_N / (N x T_1) against the series' one-replica row; without one they
are None (not guessed). TF-free.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from harness.analysis import stats
from harness.analysis.samples import Run, steady_step_times_ms


@dataclass(frozen=True)
class SeriesKey:
    """What a scaling series holds fixed (everything but the replica count)."""

    source: str
    benchmark: str
    dataset: str
    path: str  # the one-replica path's name, e.g. "cpu-fp32"
    execution: str
    batch_size: int
    batch_per_replica: bool

    @classmethod
    def of(cls, run: Run) -> SeriesKey:
        spec = run.spec
        one = dataclasses.replace(spec.path, replicas=1, workers=1)
        return cls(
            run.source,
            spec.benchmark,
            spec.dataset,
            one.name,
            spec.execution,
            spec.batch_size,
            spec.batch_per_replica,
        )

    @property
    def batch(self) -> str:
        """``global 32`` or ``32 per replica``."""
        return f"{self.batch_size} per replica" if self.batch_per_replica else f"global {self.batch_size}"


@dataclass(frozen=True)
class ScalingRow:
    """One replica count of one series."""

    series: SeriesKey
    replicas: int  # in sync: over all workers
    group: str
    global_batch_size: int
    run_samples_per_s: list[float]  # one value per run: global batch / its median steady step time
    samples_per_s: float | None  # T_N: the median over runs
    speedup: float | None  # T_N / T_1
    efficiency: float | None  # T_N / (N x T_1)
    workers: int = 1  # processes (containers) the replicas ran in

    @property
    def runs(self) -> int:
        return len(self.run_samples_per_s)


def run_throughput(run: Run) -> float | None:
    """Samples per second of one run: its global batch over its median steady step time (None: no steady steps)."""
    steps = steady_step_times_ms(run.result)
    if not steps:
        return None
    median_ms = stats.median(steps)
    if not median_ms:
        return None
    return run.spec.global_batch_size * 1000.0 / median_ms


def scaling_rows(runs: Sequence[Run]) -> list[ScalingRow]:
    """Rows of every series that has a run with two or more replicas (ok training runs only)."""
    # Keyed by (replicas in sync, workers): x2 (one process) and w2 (two containers) are rows of their own.
    series: dict[SeriesKey, dict[tuple[int, int], list[Run]]] = {}
    for run in runs:
        if run.result.ok and run.spec.mode == "train":
            count = (run.spec.path.replicas_in_sync, run.spec.path.workers)
            series.setdefault(SeriesKey.of(run), {}).setdefault(count, []).append(run)
    rows: list[ScalingRow] = []
    for key in sorted(series, key=_order):
        by_count = series[key]
        if max(n for n, _ in by_count) < 2:
            continue
        values = {c: [v for v in map(run_throughput, members) if v is not None] for c, members in by_count.items()}
        t1 = stats.median(values.get((1, 1), []))
        for n, workers in sorted(by_count):
            first = by_count[(n, workers)][0]
            tn = stats.median(values[(n, workers)])
            speedup = tn / t1 if tn is not None and t1 else None
            rows.append(
                ScalingRow(
                    series=key,
                    replicas=n,
                    group=first.group,
                    global_batch_size=first.spec.global_batch_size,
                    run_samples_per_s=values[(n, workers)],
                    samples_per_s=tn,
                    speedup=speedup,
                    efficiency=None if speedup is None else speedup / n,
                    workers=workers,
                )
            )
    return rows


def _order(key: SeriesKey) -> tuple[str, str, str, str, str, int, bool]:
    return (key.benchmark, key.dataset, key.path, key.source, key.execution, key.batch_size, key.batch_per_replica)
