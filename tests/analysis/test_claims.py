"""The seed experiment's claims as data (ClaimCheck.decision/significant/seeds_needed) and the gap
answer (GapAnswer): a claim is established only with evidence over seeds, otherwise it says how many
seeds the decision needs."""

from __future__ import annotations

import dataclasses
import statistics

import pytest

from harness.analysis.claims import (
    ASSUMED_ACCURACY_SD,
    ASSUMED_GAP_DIFF_SD,
    BASELINE_VAL,
    BN_GAP,
    BN_TRAIN,
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    UNMEASURABLE,
    ClaimCheck,
    bn_gap_answers,
    seed_claims,
)
from harness.analysis.equivalence import seeds_to_detect
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
    # 0.92, 0.93, 0.94: 95 % CI 0.930 ± 4.30 * 0.01 / sqrt(3) = [0.905, 0.955], entirely >= 0.90
    assert (val.claimed, val.measured, val.decision, val.n_seeds) == ("≥ 0.90", "0.930 ± 0.010 (n=3)", HOLDS, 3)
    assert val.holds is True and val.significant is True
    gap = claims[("cpu-fp32", BN_GAP)]
    assert gap.decision == HOLDS and gap.holds is True and gap.significant is True and gap.n_seeds == 3
    # last-epoch gaps: baseline 0.99 - (0.92, 0.93, 0.94); BN 0.999 - (0.969, 0.979, 0.989)
    assert gap.measured == "BN 0.020 ± 0.010 (n=3) vs baseline 0.060 ± 0.010 (n=3)"
    assert claims[("cpu-fp32-xla", BN_GAP)].decision == FAILS and claims[("cpu-fp32-xla", BN_GAP)].holds is False
    assert claims[("cpu-fp32-xla", BN_GAP)].significant is True
    train = claims[("cpu-fp32", BN_TRAIN)]
    assert (train.claimed, train.decision, train.n_seeds) == ("< 0.95", FAILS, 3)  # 0.999 on every seed
    assert claims[("cpu-fp32-xla", BN_TRAIN)].decision == HOLDS  # 0.93 on every seed
    (answer,) = bn_gap_answers(seed_claims(label_runs(results)))
    assert (answer.dataset, answer.answer) == ("mnist-5k", "mixed")
    assert (answer.yes, answer.no) == (["cpu-fp32"], ["cpu-fp32-xla"])
    assert answer.undecided == [] and answer.seeds_needed is None and answer.flags == []


def test_one_seed_establishes_nothing_and_says_how_many_seeds_are_needed() -> None:
    results = [
        _run("baseline", CPU, 0, 0.99, 0.93),
        _run("batchnorm", CPU, 0, 0.99, 0.95),
        _run("baseline", XLA, 0, 0.99, 0.94),
    ]
    claims = _claims(results)
    gap = claims[("cpu-fp32", BN_GAP)]
    # BN's gap is smaller on this one seed (0.04 vs 0.06), but one seed cannot separate the models.
    assert gap.decision == INCONCLUSIVE and gap.holds is None and gap.significant is None and gap.leaning is True
    needed = seeds_to_detect(ASSUMED_GAP_DIFF_SD, -0.02)
    assert needed is not None and needed > 1
    assert (gap.seeds_needed, gap.sd_source, gap.n_seeds) == (needed, "assumed", 1)
    assert f"not established with 1 seed; need {needed}" in gap.note
    # Threshold claims from one seed do not hold either, however far from the threshold.
    val = claims[("cpu-fp32", BASELINE_VAL)]
    assert val.decision == INCONCLUSIVE and val.holds is None
    assert val.seeds_needed == seeds_to_detect(ASSUMED_ACCURACY_SD, 0.93 - 0.90)
    missing = claims[("cpu-fp32-xla", BN_GAP)]
    assert missing.decision == UNMEASURABLE and missing.holds is None  # needs both models
    assert claims[("cpu-fp32-xla", BN_TRAIN)].decision == UNMEASURABLE
    assert claims[("cpu-fp32-xla", BN_TRAIN)].n_seeds == 0
    (answer,) = bn_gap_answers(list(claims.values()))
    assert (answer.answer, answer.yes, answer.no) == ("not established", [], [])
    assert (answer.undecided, answer.leaning_yes) == (["cpu-fp32"], ["cpu-fp32"])
    assert (answer.n_seeds, answer.seeds_needed) == (1, needed)


def test_a_difference_within_seed_noise_needs_the_seeds_its_observed_sd_says() -> None:
    # Paired gap differences (BN - baseline) of -0.02, +0.01, -0.015: mean -0.0083, CI straddles 0.
    bn_vals = [0.95, 0.92, 0.945]
    results = [_run("baseline", CPU, s, 0.99, 0.93) for s in range(3)]
    results += [_run("batchnorm", CPU, s, 0.99, v) for s, v in enumerate(bn_vals)]
    gap = _claims(results)[("cpu-fp32", BN_GAP)]
    diffs = [0.93 - v for v in bn_vals]
    assert gap.decision == INCONCLUSIVE and gap.significant is False and gap.sd_source == "observed"
    expected = seeds_to_detect(statistics.stdev(diffs), statistics.mean(diffs))
    assert expected is not None and expected > 3
    assert gap.seeds_needed == expected
    assert f"not established with 3 seeds; need {expected}" in gap.note


def test_a_threshold_inside_the_ci_is_inconclusive() -> None:
    # Baseline validation accuracy 0.89, 0.91, 0.905: mean 0.9017, 95 % CI ~[0.876, 0.928] straddles 0.90.
    results = [_run("baseline", CPU, s, 0.99, v) for s, v in enumerate([0.89, 0.91, 0.905])]
    val = _claims(results)[("cpu-fp32", BASELINE_VAL)]
    assert val.decision == INCONCLUSIVE and val.holds is None and val.leaning is True and val.significant is False
    assert val.seeds_needed is not None and val.seeds_needed > 3 and val.sd_source == "observed"
    assert "straddles 0.90" in val.note


def test_runs_with_less_than_a_batch_in_either_part_answer_no_claim() -> None:
    # `--max-train-samples 5` trained on 4 and validated on 1 sample: nothing to learn from.
    tiny = [dataclasses.replace(_run(b, CPU, s, 1.0, 1.0, max_train_samples=5), n_train_used=4, n_val_used=1)
            for b in ("baseline", "batchnorm") for s in range(3)]  # fmt: skip
    claims = _claims(tiny)
    assert {c.decision for c in claims.values()} == {UNMEASURABLE}
    assert claims[("cpu-fp32", BN_GAP)].excluded_runs == 6 and claims[("cpu-fp32", BN_TRAIN)].excluded_runs == 3
    (answer,) = bn_gap_answers(list(claims.values()))
    assert answer.answer == "unanswerable"
    # A limited run that recorded a usable split is used; one that recorded nothing is not.
    fine = dataclasses.replace(_run("baseline", CPU, 0, 0.99, 0.93, max_train_samples=640), n_train_used=512,
                               n_val_used=128)  # fmt: skip
    unknown = _run("baseline", XLA, 0, 0.99, 0.93, max_train_samples=640)
    claims = _claims([fine, unknown])
    assert claims[("cpu-fp32", BASELINE_VAL)].n_seeds == 1
    assert claims[("cpu-fp32-xla", BASELINE_VAL)].decision == UNMEASURABLE


@pytest.mark.parametrize("dataset", ["synthetic", "fashion-mnist"])
def test_other_data_is_flagged_in_the_answer(dataset: str) -> None:
    results = [
        _run(b, CPU, s, 0.99, 0.93 + 0.01 * s, dataset=dataset) for b in ("baseline", "batchnorm") for s in range(3)
    ]
    claims = seed_claims(label_runs(results))
    assert len(claims) == 3 and all(c.dataset == dataset for c in claims)
    assert all(c.synthetic for c in claims) == (dataset == "synthetic")
    (answer,) = bn_gap_answers(claims)
    expected = {
        "synthetic": "synthetic data: the answer says nothing about MNIST",
        "fashion-mnist": "the seed's claims were made for MNIST, not this dataset",
    }
    assert answer.flags == [expected[dataset]]
    real = seed_claims(label_runs([_run(b, CPU, 0, 0.99, 0.93) for b in ("baseline", "batchnorm")]))
    assert not any(c.synthetic for c in real) and bn_gap_answers(real)[0].flags == []


def test_models_run_on_different_seeds_cannot_be_paired() -> None:
    gap = _claims([_run("baseline", CPU, 0, 0.99, 0.93), _run("batchnorm", CPU, 1, 0.99, 0.95)])[("cpu-fp32", BN_GAP)]
    assert (gap.decision, gap.n_seeds, gap.seeds_needed) == (INCONCLUSIVE, 0, None)
    (answer,) = bn_gap_answers([gap])
    assert (answer.answer, answer.n_seeds, answer.seeds_needed) == ("not established", 0, None)
