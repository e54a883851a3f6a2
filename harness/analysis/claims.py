"""The seed experiment's claims, as data: measured per dataset and group, decided on numbers.

The seed script claimed, for MNIST: the baseline reaches validation accuracy >= 0.90; adding
BatchNormalization shrinks the train/validation gap (less overfitting); the BN model's training
accuracy stays below 0.95. Each :class:`ClaimCheck` carries its ``kind``, whether it ``holds`` and,
for the gap claim, whether the difference is ``significant`` across seeds; renderers read these
fields, never the prose.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from harness.analysis.samples import Run, generalization_gap, is_synthetic
from harness.analysis.stats import Stat, describe
from harness.spec.benchmarks import mlp


def _threshold(value: float | None) -> float:
    assert value is not None  # the seed's threshold claims carry a value (harness.spec.benchmarks.mlp)
    return float(value)


# The claims are data on the seed's definitions (harness.spec.benchmarks.mlp); their numbers come from there.
CLAIM_BASELINE_VAL_ACCURACY_MIN = _threshold(mlp.BASELINE_VAL.value)
CLAIM_BN_TRAIN_ACCURACY_MAX = _threshold(mlp.BN_TRAIN.value)
CLAIM_DATASETS = mlp.CLAIM_DATASETS  # the claims were made for MNIST; other datasets are flagged
BN_MODEL = "batchnorm"
BASELINE_MODEL = "baseline"

BASELINE_VAL = mlp.BASELINE_VAL.kind
BN_GAP = mlp.BN_GAP.kind
BN_TRAIN = mlp.BN_TRAIN.kind


@dataclass(frozen=True)
class ClaimCheck:
    """One of the seed's claims, measured on one dataset x group."""

    kind: str  # BASELINE_VAL | BN_GAP | BN_TRAIN
    dataset: str
    path: str  # the group label
    synthetic: bool
    claim: str
    claimed: str
    measured: str
    holds: bool | None  # None: not measurable here (a model is missing)
    note: str = ""
    n_seeds: int = 0
    # BN_GAP only: the paired BN - baseline gap difference is outside seed noise (95 % CI excludes 0);
    # None when it cannot be told (one seed).
    significant: bool | None = None


def fmt_mean_sd(stat: Stat, digits: int = 3) -> str:
    if stat.n == 0 or stat.mean is None:
        return "n/a"
    if stat.sd is None:
        return f"{stat.mean:.{digits}f} (n=1)"
    return f"{stat.mean:.{digits}f} ± {stat.sd:.{digits}f} (n={stat.n})"


def seed_claims(runs: Sequence[Run]) -> list[ClaimCheck]:
    """The seed's three claims per dataset x group, each with claimed value, measured mean ± sd, holds."""
    groups: dict[tuple[str, str, str], list[Run]] = defaultdict(list)
    for run in runs:
        if run.result.ok and run.spec.mode == "train":
            groups[(run.spec.dataset, run.group, run.spec.benchmark)].append(run)
    checks: list[ClaimCheck] = []
    for ds, group in sorted({(d, g) for d, g, _b in groups}):
        base = sorted(groups.get((ds, group, BASELINE_MODEL), []), key=lambda r: r.spec.seed)
        bn = sorted(groups.get((ds, group, BN_MODEL), []), key=lambda r: r.spec.seed)
        if not base and not bn:
            continue
        synthetic = any(is_synthetic(r.result) for r in base + bn) or ds == "synthetic"
        checks += [
            _baseline_val(ds, group, synthetic, base),
            _bn_gap(ds, group, synthetic, base, bn),
            _bn_train(ds, group, synthetic, bn),
        ]
    return checks


def _last(runs: Sequence[Run], attr: str) -> list[float]:
    values = [getattr(r.result.epochs[-1], attr) for r in runs if r.result.epochs]
    return [float(v) for v in values if v is not None]


def _baseline_val(ds: str, group: str, synthetic: bool, base: list[Run]) -> ClaimCheck:
    vals = _last(base, "val_accuracy")
    st = describe(vals)
    holds = None if st.mean is None else st.mean >= CLAIM_BASELINE_VAL_ACCURACY_MIN
    reach = sum(v >= CLAIM_BASELINE_VAL_ACCURACY_MIN for v in vals)
    note = f"{reach}/{len(vals)} seeds reach it" if vals else "no baseline runs on this path"
    return ClaimCheck(
        BASELINE_VAL,
        ds,
        group,
        synthetic,
        "baseline reaches val accuracy ≥ 0.90 (last epoch)",
        f"≥ {CLAIM_BASELINE_VAL_ACCURACY_MIN:.2f}",
        fmt_mean_sd(st),
        holds,
        note,
        st.n,
    )


def _bn_gap(ds: str, group: str, synthetic: bool, base: list[Run], bn: list[Run]) -> ClaimCheck:
    gap_base = {r.spec.seed: generalization_gap(r.result) for r in base}
    gap_bn = {r.spec.seed: generalization_gap(r.result) for r in bn}
    st_base, st_bn = describe(gap_base.values()), describe(gap_bn.values())
    claim, claimed = "BatchNormalization shrinks the train/val gap", "gap(BN) < gap(baseline)"
    measured = f"BN {fmt_mean_sd(st_bn)} vs baseline {fmt_mean_sd(st_base)}"
    if st_base.mean is None or st_bn.mean is None:
        return ClaimCheck(
            BN_GAP,
            ds,
            group,
            synthetic,
            claim,
            claimed,
            measured,
            None,
            "needs both baseline and batchnorm runs on this path",
        )
    paired = [
        b - a
        for s in sorted(set(gap_base) & set(gap_bn))
        if (a := gap_base[s]) is not None and (b := gap_bn[s]) is not None
    ]
    diff = describe(paired)
    holds = st_bn.mean < st_base.mean
    if diff.ci_low is None or diff.ci_high is None or diff.mean is None:
        note = f"Δ (BN − baseline) = {st_bn.mean - st_base.mean:+.3f}; one seed cannot separate the models"
        return ClaimCheck(BN_GAP, ds, group, synthetic, claim, claimed, measured, holds, note, diff.n, None)
    significant = diff.ci_high < 0 or diff.ci_low > 0
    note = (
        f"paired Δ (BN − baseline) = {diff.mean:+.3f}, 95 % CI [{diff.ci_low:+.3f}, {diff.ci_high:+.3f}] "
        f"over {diff.n} seeds: " + ("outside seed noise" if significant else "within seed noise")
    )
    return ClaimCheck(BN_GAP, ds, group, synthetic, claim, claimed, measured, holds, note, diff.n, significant)


def _bn_train(ds: str, group: str, synthetic: bool, bn: list[Run]) -> ClaimCheck:
    vals = _last(bn, "train_accuracy")
    st = describe(vals)
    holds = None if st.mean is None else st.mean < CLAIM_BN_TRAIN_ACCURACY_MAX
    below = sum(v < CLAIM_BN_TRAIN_ACCURACY_MAX for v in vals)
    note = f"{below}/{len(vals)} seeds stay below" if vals else "no batchnorm runs on this path"
    return ClaimCheck(
        BN_TRAIN,
        ds,
        group,
        synthetic,
        "BN model's train accuracy stays < 0.95 (less memorisation)",
        f"< {CLAIM_BN_TRAIN_ACCURACY_MAX:.2f}",
        fmt_mean_sd(st),
        holds,
        note,
        st.n,
    )


@dataclass(frozen=True)
class GapAnswer:
    """The answer to the seed's question for one dataset: does BN shrink the gap on every path?"""

    dataset: str
    answer: str  # "yes" (every path) | "no" (no path) | "mixed" (some paths) | "unanswerable"
    yes: list[str]  # groups where BN's gap is smaller
    no: list[str]
    within_noise: list[str]  # groups where the paired difference is inside seed noise
    single_seed: list[str]  # groups with one seed: the models cannot be separated
    flags: list[str]  # why the answer may not speak for MNIST (synthetic data, another dataset)


def bn_gap_answers(claims: Sequence[ClaimCheck]) -> list[GapAnswer]:
    """Per dataset: does BN shrink the train/val gap, on every path? (Decided on the claims' fields.)"""
    by_ds: dict[str, list[ClaimCheck]] = defaultdict(list)
    for c in claims:
        if c.kind == BN_GAP:
            by_ds[c.dataset].append(c)
    return [_answer(ds, by_ds[ds]) for ds in sorted(by_ds)]


def _answer(ds: str, cs: list[ClaimCheck]) -> GapAnswer:
    measured = [c for c in cs if c.holds is not None]
    flags = []
    if any(c.synthetic for c in cs):
        flags.append("synthetic data: the answer says nothing about MNIST")
    elif ds not in CLAIM_DATASETS:
        flags.append("the seed's claims were made for MNIST, not this dataset")
    yes = [c.path for c in measured if c.holds]
    no = [c.path for c in measured if not c.holds]
    if not measured:
        answer = "unanswerable"
    elif not no:
        answer = "yes"
    elif not yes:
        answer = "no"
    else:
        answer = "mixed"
    return GapAnswer(
        ds,
        answer,
        yes,
        no,
        [c.path for c in measured if c.significant is False],
        [c.path for c in measured if c.significant is None],
        flags,
    )
