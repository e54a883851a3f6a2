"""The claims benchmarks make about themselves, recorded as data in their results and measured per group
(no TensorFlow): thresholds, claims against another benchmark paired by seed, the seed's left to its own module."""

from __future__ import annotations

import dataclasses

from harness.analysis.benchmark_claims import all_claims, benchmark_claims
from harness.analysis.claims import FAILS, INCONCLUSIVE
from harness.analysis.samples import label_runs
from harness.spec.benchmarks import registry
from harness.store.results import BenchmarkInfo, RunResult
from tests.factories import CPU, XLA, result


def defined(r: RunResult) -> RunResult:
    """The result as the worker writes it: with its built-in definition and the claims it carries."""
    entry = registry.lookup(r.run_spec.benchmark)
    claims = {c.kind: c.to_dict() for c in entry.benchmark.claims}
    info = BenchmarkInfo(entry.benchmark.name, "built-in", entry.origin.ref, entry.origin.sha256, "0.1.0",
                         "package", claims)  # fmt: skip
    return dataclasses.replace(r, benchmark=info)


def test_a_claim_against_another_benchmark_is_paired_by_seed() -> None:
    # cnn beats the baseline by 2-3 pp on every seed (test accuracy), on cpu-fp32; not on cpu-fp32-xla.
    runs = [defined(result("cnn", seed=s, test_acc=0.95 + 0.01 * s)) for s in range(3)]
    runs += [defined(result("baseline", seed=s, test_acc=0.92 + 0.01 * s + 0.005 * (s % 2))) for s in range(3)]
    runs += [defined(result(b, path=XLA, seed=0, test_acc=0.9)) for b in ("cnn", "baseline")]
    checks = [c for c in benchmark_claims(label_runs(runs)) if c.kind == "cnn_beats_mlp"]
    by_path = {c.path: c for c in checks}
    fp32 = by_path["cpu-fp32"]
    assert fp32.holds is True and fp32.significant is True and fp32.n_seeds == 3
    assert fp32.claimed == "test_accuracy > test_accuracy(baseline)" and "outside seed noise" in fp32.note
    xla = by_path["cpu-fp32-xla"]
    # One seed decides nothing (as for the seed's claims): not "fails", but how many seeds would.
    assert xla.decision == INCONCLUSIVE and xla.holds is None and xla.significant is None
    assert "one seed cannot separate them" in xla.note and "not established with 1 seed" in xla.note


def test_a_threshold_claim_and_the_seeds_own_stay_apart() -> None:
    runs = [defined(result("baseline", seed=s, val_acc=0.89 + 0.02 * s)) for s in range(2)]
    runs += [defined(result("cnn", seed=0, test_acc=0.97))]
    labelled = label_runs(runs)
    own = benchmark_claims(labelled)
    assert {c.kind for c in own} == {"cnn_beats_mlp"}  # baseline's claim is the seed's: claims.py measures it
    assert {c.kind for c in all_claims(labelled)} >= {"baseline_val_accuracy", "cnn_beats_mlp"}
    plugin = dataclasses.replace(
        runs[2],
        benchmark=BenchmarkInfo("cnn", "file", "/p.py:X", "ab" * 32, None, "host", {
            "fast": {"kind": "fast", "text": "t", "metric": "test_accuracy", "op": ">=", "value": 0.98, "than": None,
                     "datasets": ["fashion-mnist"]}}),
    )  # fmt: skip
    (check,) = benchmark_claims(label_runs([plugin]))
    assert check.decision == INCONCLUSIVE and check.claimed == "test_accuracy >= 0.98" and check.path == CPU.name
    assert check.note.startswith("claimed for fashion-mnist; 0/1 seeds hold; one seed: not established with 1 seed")
    # Three seeds whose 95 % CI lies below the threshold: FAILS, established.
    three = [dataclasses.replace(plugin, run_id=f"{plugin.run_id}-{s}", spec={**plugin.spec, "seed": s},
                                 test_accuracy=0.960 + 0.001 * s) for s in range(3)]  # fmt: skip
    (check,) = benchmark_claims(label_runs(three))
    assert check.decision == FAILS and check.holds is False and check.significant is True
