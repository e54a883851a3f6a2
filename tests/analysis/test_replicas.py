"""x1 vs xN in compare: counterparts, the first-epoch numerical check, weak scaling not compared, the
one-replica reference preferred (factory results, no TensorFlow; real runs: tests/cli/test_run_replicas.py)."""

from __future__ import annotations

import pytest

from harness.analysis.checks import Check, Comparison, Verdict
from harness.analysis.compare import Tolerances, compare_results
from harness.analysis.replicas import DEFAULT_REPLICA_LOSS_TOL_REL, is_counterpart, relative
from harness.errors import CompareError
from harness.spec.run_spec import PathSpec, RunSpec
from tests.factories import CPU, result, seeds

X2 = PathSpec(replicas=2)
ACCS = [0.920, 0.905, 0.931]


def named(comparison: Comparison, name: str) -> list[Check]:
    return [c for c in comparison.checks if c.name == name]


def test_counterparts_share_the_optimisation_but_not_the_loop_or_sync_bn() -> None:
    x2 = RunSpec(path=X2)
    assert is_counterpart(x2, RunSpec())
    assert is_counterpart(x2.replace(loop="compiled", sync_batchnorm=True), RunSpec())
    assert not is_counterpart(x2, RunSpec(input="numpy"))  # another data order
    assert not is_counterpart(x2, RunSpec(deterministic=False))  # another numerical path on CPU
    assert not is_counterpart(x2.replace(batch_per_replica=True), RunSpec())  # global batch 64 vs 32
    assert not is_counterpart(RunSpec(), x2) and not is_counterpart(x2, x2)
    assert not is_counterpart(RunSpec(path=PathSpec(precision="mixed", replicas=2)), RunSpec())
    assert relative(1.01, 1.0) == pytest.approx(0.01) and relative(None, 1.0) is None


def test_x2_that_trains_the_same_numbers_passes_and_the_reference_stays_x1() -> None:
    # x2 given first: the reference is still the one-replica cpu-fp32 group.
    comp = compare_results(seeds(X2, ACCS) + seeds(CPU, ACCS))
    assert comp.reference == "cpu-fp32"
    (check,) = named(comp, "replicas")
    assert check.verdict == Verdict.PASS, check.summary
    assert check.subject == "batchnorm/mnist-5k: cpu-fp32-x2 vs cpu-fp32"
    assert check.details["max_rel_epoch1"] == 0.0 and sorted(check.details["per_seed"]) == [0, 1, 2]
    # ...and the usual reference checks judge the accuracies over seeds.
    assert {c.name for c in comp.checks if "x2 vs" in c.subject} >= {"accuracy-equivalence", "curves", "replicas"}


def test_first_epoch_losses_apart_fail_and_name_unsynchronised_bn_from_the_evidence() -> None:
    # Per-replica BN statistics: losses 6 % apart from the first epoch (as measured on mnist-5k).
    x2 = [result("batchnorm", path=X2, seed=s, test_acc=a, curve_shift=0.01) for s, a in enumerate(ACCS)]
    comp = compare_results(x2 + seeds(CPU, ACCS))
    (check,) = named(comp, "replicas")
    assert check.verdict == Verdict.FAIL and comp.verdict == Verdict.FAIL
    assert check.details["max_rel_epoch1"] > DEFAULT_REPLICA_LOSS_TOL_REL
    assert "not the one-device optimisation" in check.summary
    assert "statistics per replica" in check.summary and "--sync-bn on" in check.summary
    # Synchronised BN (recorded in evidence) gets no such hint: the cause is not known then.
    synced = [result("batchnorm", path=X2, seed=s, curve_shift=0.01, sync_batchnorm=True) for s in range(3)]
    (other,) = named(compare_results(synced + seeds(CPU, ACCS)), "replicas")
    assert other.verdict == Verdict.FAIL and "--sync-bn" not in other.summary


def test_the_tolerance_is_a_number_the_caller_sets() -> None:
    x2 = [result(path=X2, seed=s, curve_shift=0.003) for s in range(3)]  # ~3 % apart
    loose = compare_results(x2 + seeds(CPU, ACCS), tolerances=Tolerances(replica_loss_tol_rel=0.1))
    tight = compare_results(x2 + seeds(CPU, ACCS))
    assert named(loose, "replicas")[0].verdict == Verdict.PASS
    assert named(tight, "replicas")[0].verdict == Verdict.FAIL
    with pytest.raises(CompareError, match="replica_loss_tol_rel must be a positive number, got 0"):
        Tolerances(replica_loss_tol_rel=0)


def test_no_shared_seed_is_a_warn() -> None:
    comp = compare_results([result(path=X2, seed=5)] + seeds(CPU, ACCS))
    (check,) = named(comp, "replicas")
    assert check.verdict == Verdict.WARN and "same seeds" in check.summary


def test_weak_scaling_is_not_compared_for_agreement_but_warned() -> None:
    weak = dict(batch_per_replica=True)
    x1 = [result(path=CPU, seed=s, **weak) for s in range(3)]
    x2 = [result(path=X2, seed=s, curve_shift=0.2, **weak) for s in range(3)]
    comp = compare_results(x1 + x2)
    (warn,) = named(comp, "agreement-not-compared")
    assert warn.verdict == Verdict.WARN and "global batch 64 vs 32" in warn.summary
    assert warn.details == {"global_batch_size": 64, "reference_global_batch_size": 32}
    assert not [c for c in comp.checks if "cpu-fp32-x2 vs" in c.subject and c is not warn]
    # Strong and weak scaling runs are different experiments: mixing them is refused.
    with pytest.raises(CompareError, match="batch_per_replica False vs True"):
        compare_results(seeds(CPU, ACCS) + x2)


def test_mixed_precision_on_replicas_is_gated_against_fp32_on_as_many_replicas() -> None:
    bf16_x2 = PathSpec(precision="mixed", replicas=2)
    comp = compare_results(seeds(CPU, ACCS) + seeds(X2, ACCS) + seeds(bf16_x2, ACCS))
    (gate,) = named(comp, "relative-gate")
    assert gate.subject.endswith("cpu-mixed_bfloat16-x2 vs cpu-fp32-x2")
    alone = compare_results(seeds(CPU, ACCS) + seeds(bf16_x2, ACCS))
    (missing,) = named(alone, "relative-gate")
    assert missing.verdict == Verdict.WARN and "no fp32 sibling (cpu-fp32-x2)" in missing.summary


def test_synchronised_bn_on_replicas_is_checked_against_synchronised_bn_on_one_device_when_there_is_one() -> None:
    plain = seeds(CPU, ACCS)
    x1_sync = [result(path=CPU, seed=s, test_acc=a, sync_batchnorm=True) for s, a in enumerate(ACCS)]
    x2_sync = [result(path=X2, seed=s, test_acc=a, sync_batchnorm=True) for s, a in enumerate(ACCS)]
    (check,) = named(compare_results(plain + x1_sync + x2_sync), "replicas")
    assert check.subject == "batchnorm/mnist-5k: cpu-fp32-x2 vs cpu-fp32[tfdata,spe1,syncbn]"
    (only,) = named(compare_results(plain + x2_sync), "replicas")  # without it: the plain one-device run
    assert only.subject == "batchnorm/mnist-5k: cpu-fp32-x2 vs cpu-fp32"


W2 = PathSpec(workers=2)


def test_w2_is_paired_with_the_one_worker_run_like_x2_and_checked_the_same_way() -> None:
    w2 = RunSpec(path=W2, loop="compiled")
    assert is_counterpart(w2, RunSpec()) and is_counterpart(w2, RunSpec(loop="compiled"))
    assert not is_counterpart(RunSpec(), w2) and not is_counterpart(w2, RunSpec(path=X2))
    comp = compare_results(seeds(W2, ACCS, loop="compiled") + seeds(CPU, ACCS, loop="compiled"))
    assert comp.reference == "cpu-fp32"  # the one-worker run, whatever the order
    (check,) = named(comp, "replicas")
    assert check.verdict == Verdict.PASS and check.subject == "batchnorm/mnist-5k: cpu-fp32-w2 vs cpu-fp32"
    assert not [c for c in comp.checks if c.name == "evidence" and c.verdict != Verdict.PASS]
    shifted = [result(path=W2, seed=s, test_acc=a, curve_shift=0.01, loop="compiled") for s, a in enumerate(ACCS)]
    (apart,) = named(compare_results(shifted + seeds(CPU, ACCS, loop="compiled")), "replicas")
    assert apart.verdict == Verdict.FAIL and "not the one-device optimisation" in apart.summary


def test_a_w2_result_whose_cluster_had_one_worker_fails_the_evidence_check() -> None:
    spec = RunSpec(path=W2, loop="compiled")
    one = result(path=W2, loop="compiled", evidence_overrides={"num_workers": 1})
    assert one.evidence is not None
    assert "TensorFlow's cluster has 1 worker(s), asked for 2" in one.evidence.mismatches(spec)
    assert result(path=W2, loop="compiled").evidence.mismatches(spec) == []  # type: ignore[union-attr]
