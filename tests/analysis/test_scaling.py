"""The scaling table from factory results with known step times (no TensorFlow): per-run throughput,
the median over runs, speed-up and efficiency T_N / (N x T_1), series kept apart."""

from __future__ import annotations

import pytest

from harness.analysis.samples import label_runs
from harness.analysis.scaling import run_throughput, scaling_rows
from harness.spec.run_spec import PathSpec
from tests.factories import CPU, result

X2 = PathSpec(replicas=2)
X4 = PathSpec(replicas=4)


def exact(path: PathSpec, throughputs: list[float], **kw: object) -> list:
    """One baseline run per throughput (seeds 0..), step times without noise."""
    return [
        result("baseline", path=path, seed=s, throughput=t, step_sd_frac=0.0, **kw) for s, t in enumerate(throughputs)
    ]


def test_throughput_is_per_run_and_a_row_is_the_median_over_runs() -> None:
    runs = label_runs(exact(CPU, [1000.0, 1200.0, 4000.0]) + exact(X2, [900.0, 1500.0, 1800.0]))
    assert [round(run_throughput(r)) for r in runs[:3]] == [1000, 1200, 4000]
    one, two = scaling_rows(runs)
    assert (one.replicas, two.replicas) == (1, 2) and (one.runs, two.runs) == (3, 3)
    assert one.samples_per_s == pytest.approx(1200.0)  # the median run, not the mean of all steps
    assert two.samples_per_s == pytest.approx(1500.0)
    assert two.speedup == pytest.approx(1.25) and two.efficiency == pytest.approx(0.625)
    assert one.speedup == pytest.approx(1.0) and one.efficiency == pytest.approx(1.0)
    assert two.group == "cpu-fp32-x2" and two.series.path == "cpu-fp32" and two.series.batch == "global 32"


def test_weak_scaling_counts_the_global_batch() -> None:
    # The factory's step time is 32 samples / throughput; a weak-scaling x2 step carries 64 samples.
    runs = label_runs(exact(CPU, [1000.0], batch_per_replica=True) + exact(X2, [1000.0], batch_per_replica=True))
    one, two = scaling_rows(runs)
    assert two.global_batch_size == 64 and two.samples_per_s == pytest.approx(2000.0)
    assert two.efficiency == pytest.approx(1.0) and two.series.batch == "32 per replica"


def test_series_are_kept_apart_and_need_a_replica_run() -> None:
    assert scaling_rows(label_runs(exact(CPU, [1000.0]))) == []  # no replicas: no table
    numpy = exact(X2, [500.0], input="numpy")
    rows = scaling_rows(label_runs(exact(CPU, [1000.0]) + exact(X4, [2000.0]) + numpy))
    by_key = {(r.series.execution, r.replicas): r for r in rows}
    assert set(by_key) == {("tfdata,spe1", 1), ("tfdata,spe1", 4), ("numpy,spe1", 2)}
    assert by_key["tfdata,spe1", 4].efficiency == pytest.approx(0.5)
    # Without a one-replica row the speed-up is unknown, not guessed.
    assert by_key["numpy,spe1", 2].speedup is None and by_key["numpy,spe1", 2].efficiency is None
    failed = result("baseline", path=X2, status="failed")
    assert scaling_rows(label_runs([failed] + exact(CPU, [1000.0]))) == []


def test_two_workers_and_two_replicas_are_rows_of_their_own_against_one_w1_row() -> None:
    compiled = {"loop": "compiled"}
    w2 = PathSpec(workers=2)
    runs = label_runs(
        exact(CPU, [1000.0], **compiled) + exact(X2, [1200.0], **compiled) + exact(w2, [400.0], **compiled)
    )
    rows = scaling_rows(runs)
    assert [(r.group, r.replicas, r.workers) for r in rows] == [
        ("cpu-fp32", 1, 1),
        ("cpu-fp32-x2", 2, 1),
        ("cpu-fp32-w2", 2, 2),
    ]
    assert rows[2].speedup == pytest.approx(0.4) and rows[2].efficiency == pytest.approx(0.2)
    assert rows[2].series == rows[0].series  # one series: everything but the replica/worker count fixed
