"""The seed experiment's claims as data (ClaimCheck.kind/holds/significant) and the gap answer (GapAnswer)."""

from __future__ import annotations

from harness.analysis.claims import BASELINE_VAL, BN_GAP, BN_TRAIN, ClaimCheck, bn_gap_answers, seed_claims
from harness.analysis.samples import label_runs
from harness.spec.run_spec import PathSpec
from harness.store.results import RunResult
from tests.factories import CPU, XLA, result


def _run(benchmark: str, path: PathSpec, seed: int, final_train: float, final_val: float, **kw: object) -> RunResult:
    return result(benchmark, path=path, seed=seed, epochs=5, final_train=final_train, val_acc=final_val,
                  test_acc=final_val - 0.02, **kw)  # fmt: skip


def _claims(results: list[RunResult]) -> dict[tuple[str, str], ClaimCheck]:
    return {(c.path, c.kind): c for c in seed_claims(label_runs(results))}


def test_seed_claims_per_path_with_claimed_and_measured_values() -> None:
    results = []
    for s in range(3):
        # cpu-fp32: BN gap 0.04 below baseline on every seed -> holds, outside seed noise.
        results.append(_run("baseline", CPU, s, 0.99, 0.92 + 0.01 * s))
        results.append(_run("batchnorm", CPU, s, 0.999, 0.969 + 0.01 * s))
        # cpu-fp32-xla: BN gap larger -> the claim fails there.
        results.append(_run("baseline", XLA, s, 0.97, 0.95))
        results.append(_run("batchnorm", XLA, s, 0.93, 0.85 + 0.01 * s))
    claims = _claims(results)
    assert len(claims) == 6  # three claims on each of the two paths
    val = claims[("cpu-fp32", BASELINE_VAL)]
    assert (val.claimed, val.measured, val.holds, val.n_seeds) == ("≥ 0.90", "0.930 ± 0.010 (n=3)", True, 3)
    gap = claims[("cpu-fp32", BN_GAP)]
    assert gap.holds is True and gap.significant is True and gap.n_seeds == 3
    # last-epoch gaps: baseline 0.99 - (0.92, 0.93, 0.94); BN 0.999 - (0.969, 0.979, 0.989)
    assert gap.measured == "BN 0.020 ± 0.010 (n=3) vs baseline 0.060 ± 0.010 (n=3)"
    assert claims[("cpu-fp32-xla", BN_GAP)].holds is False
    assert claims[("cpu-fp32-xla", BN_GAP)].significant is True
    train = claims[("cpu-fp32", BN_TRAIN)]
    assert (train.claimed, train.holds, train.n_seeds) == ("< 0.95", False, 3)  # 0.999 on every seed
    assert claims[("cpu-fp32-xla", BN_TRAIN)].holds is True
    (answer,) = bn_gap_answers(seed_claims(label_runs(results)))
    assert (answer.dataset, answer.answer) == ("mnist-5k", "mixed")
    assert (answer.yes, answer.no) == (["cpu-fp32"], ["cpu-fp32-xla"])
    assert answer.within_noise == [] and answer.single_seed == [] and answer.flags == []


def test_claims_say_when_one_seed_cannot_decide_or_a_model_is_missing() -> None:
    results = [
        _run("baseline", CPU, 0, 0.99, 0.93),
        _run("batchnorm", CPU, 0, 0.99, 0.95),
        _run("baseline", XLA, 0, 0.99, 0.94),
    ]
    claims = _claims(results)
    gap = claims[("cpu-fp32", BN_GAP)]
    assert gap.holds is True and gap.significant is None  # one seed cannot separate the models
    missing = claims[("cpu-fp32-xla", BN_GAP)]
    assert missing.holds is None and missing.significant is None  # needs both models
    assert claims[("cpu-fp32-xla", BN_TRAIN)].holds is None and claims[("cpu-fp32-xla", BN_TRAIN)].n_seeds == 0
    (answer,) = bn_gap_answers(list(claims.values()))
    assert (answer.answer, answer.yes, answer.no) == ("yes", ["cpu-fp32"], [])
    assert answer.single_seed == ["cpu-fp32"] and answer.within_noise == []


def test_synthetic_runs_are_flagged_in_the_claims_and_the_answer() -> None:
    results = [
        _run(b, CPU, s, 0.99, 0.93 + 0.01 * s, dataset="synthetic") for b in ("baseline", "batchnorm") for s in range(3)
    ]
    claims = seed_claims(label_runs(results))
    assert len(claims) == 3 and all(c.synthetic and c.dataset == "synthetic" for c in claims)
    (answer,) = bn_gap_answers(claims)
    assert answer.flags == ["synthetic data: the answer says nothing about MNIST"]
    real = seed_claims(label_runs([_run(b, CPU, 0, 0.99, 0.93) for b in ("baseline", "batchnorm")]))
    assert not any(c.synthetic for c in real) and bn_gap_answers(real)[0].flags == []


def test_other_datasets_are_flagged_as_not_what_the_seed_claimed() -> None:
    results = [
        _run(b, CPU, s, 0.99, 0.93 + 0.01 * s, dataset="fashion-mnist")
        for b in ("baseline", "batchnorm")
        for s in range(3)
    ]
    (answer,) = bn_gap_answers(seed_claims(label_runs(results)))
    assert answer.dataset == "fashion-mnist"
    assert answer.flags == ["the seed's claims were made for MNIST, not this dataset"]
