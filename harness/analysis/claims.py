"""The seed experiment's claims, as data: measured per dataset and group, decided on numbers over seeds.

The seed script claimed, for MNIST: the baseline reaches validation accuracy >= 0.90; adding
BatchNormalization shrinks the train/validation gap (less overfitting); the BN model's training
accuracy stays below 0.95. Each :class:`ClaimCheck` carries its ``kind`` and a ``decision``:

* ``holds`` / ``fails`` only with evidence over seeds: the paired BN - baseline gap difference has a
  95 % CI that excludes 0, or the 95 % CI of a thresholded value lies entirely on one side;
* ``inconclusive`` otherwise (one seed, or a CI that straddles 0 / the threshold), with the seeds a
  decision needs (:func:`harness.analysis.equivalence.seeds_to_detect`, 80 % power, from the
  observed SD, or with one seed the assumed seed SD of TF-FACTS);
* ``unmeasurable`` when a model is missing, or every run's split was degenerate (fewer samples than
  one batch in its training or validation part: :meth:`RunSpec.split_too_small`).

Renderers read these fields, never the prose.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.analysis.agreement import ASSUMED_SEED_SD_PP
from harness.analysis.equivalence import seeds_to_detect
from harness.analysis.samples import Run, generalization_gap, is_synthetic
from harness.analysis.stats import Stat, describe
from harness.spec.benchmarks import mlp


def _claimed_value(value: float | None) -> float:
    assert value is not None  # the seed's threshold claims carry a value (harness.spec.benchmarks.mlp)
    return float(value)


# The claims are data on the seed's definitions (harness.spec.benchmarks.mlp); their numbers come from there.
CLAIM_BASELINE_VAL_ACCURACY_MIN = _claimed_value(mlp.BASELINE_VAL.value)
CLAIM_BN_TRAIN_ACCURACY_MAX = _claimed_value(mlp.BN_TRAIN.value)
CLAIM_DATASETS = mlp.CLAIM_DATASETS  # the claims were made for MNIST; other datasets are flagged
BN_MODEL = "batchnorm"
BASELINE_MODEL = "baseline"

BASELINE_VAL = mlp.BASELINE_VAL.kind
BN_GAP = mlp.BN_GAP.kind
BN_TRAIN = mlp.BN_TRAIN.kind

HOLDS, FAILS, INCONCLUSIVE, UNMEASURABLE = "holds", "fails", "inconclusive", "unmeasurable"

# SDs assumed when one seed shows none (accuracy units, 0-1). An accuracy varies by
# ASSUMED_SEED_SD_PP from seed to seed (TF-FACTS: a 1-3 point spread over 5 seeds); the paired gap
# difference (BN - baseline) combines two models' validation accuracies, hence sqrt(2) times that.
ASSUMED_ACCURACY_SD = ASSUMED_SEED_SD_PP / 100.0
ASSUMED_GAP_DIFF_SD = math.sqrt(2.0) * ASSUMED_ACCURACY_SD


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
    decision: str  # HOLDS | FAILS | INCONCLUSIVE | UNMEASURABLE
    note: str = ""
    n_seeds: int = 0
    # The evidence over seeds: the 95 % CI excludes 0 (BN_GAP) or the threshold; None with < 2 seeds.
    significant: bool | None = None
    # The mean alone points towards the claim (what the point estimate says, established or not).
    leaning: bool | None = None
    # INCONCLUSIVE: seeds per path to decide with 80 % power; None when not computable (no difference).
    seeds_needed: int | None = None
    sd_source: str = "none"  # the SD behind seeds_needed: "observed" | "assumed" | "none"
    excluded_runs: int = 0  # runs left out: split smaller than one batch, or samples used not recorded

    @property
    def holds(self) -> bool | None:
        """True/False only when established over seeds; None when inconclusive or unmeasurable."""
        return {HOLDS: True, FAILS: False}.get(self.decision)


def fmt_mean_sd(stat: Stat, digits: int = 3) -> str:
    if stat.n == 0 or stat.mean is None:
        return "n/a"
    if stat.sd is None:
        return f"{stat.mean:.{digits}f} (n=1)"
    return f"{stat.mean:.{digits}f} ± {stat.sd:.{digits}f} (n={stat.n})"


def usable(run: Run) -> bool:
    """A run the claims may speak from: its training and validation parts each held one batch.

    The samples used are the recorded ones; without them, the dataset's when nothing limited the run;
    a limited run that did not record them is not used (what it trained on is unknown).
    """
    result, spec = run.result, run.spec
    if result.n_train_used is not None and result.n_val_used is not None:
        return not spec.split_too_small(result.n_train_used, result.n_val_used)
    if spec.max_train_samples is None and result.dataset is not None:
        return not spec.split_too_small(result.dataset.n_train - result.dataset.n_val, result.dataset.n_val)
    return spec.max_train_samples is None


def seed_claims(runs: Sequence[Run]) -> list[ClaimCheck]:
    """The seed's three claims per dataset x group, each with claimed value, measured mean ± sd, decision."""
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
        where = _Where(ds, group, synthetic)
        checks += [_baseline_val(where, base), _bn_gap(where, base, bn), _bn_train(where, bn)]
    return checks


@dataclass(frozen=True)
class _Where:
    dataset: str
    group: str
    synthetic: bool


def _split_usable(runs: list[Run]) -> tuple[list[Run], int]:
    kept = [r for r in runs if usable(r)]
    return kept, len(runs) - len(kept)


def _excluded_note(excluded: int) -> str:
    if not excluded:
        return ""
    return f"; {excluded} run(s) excluded: training or validation part smaller than one batch (or not recorded)"


def _threshold(
    kind: str, where: _Where, runs: list[Run], values: Callable[[list[Run]], list[float]], claim: str, above: bool
) -> ClaimCheck:
    """A claim that a per-seed value stays on one side of a threshold (>= when ``above``, else <)."""
    threshold = CLAIM_BASELINE_VAL_ACCURACY_MIN if above else CLAIM_BN_TRAIN_ACCURACY_MAX
    kept, excluded = _split_usable(runs)
    vals = values(kept)
    st = describe(vals)
    claimed = f"≥ {threshold:.2f}" if above else f"< {threshold:.2f}"
    base = (kind, where.dataset, where.group, where.synthetic, claim, claimed, fmt_mean_sd(st))
    more = _excluded_note(excluded)
    if st.mean is None:
        missing = "no baseline runs" if above else "no batchnorm runs"
        return ClaimCheck(*base, UNMEASURABLE, f"{missing} on this path{more}", excluded_runs=excluded)

    def side(x: float) -> bool:
        return x >= threshold if above else x < threshold

    count = sum(side(v) for v in vals)
    tally = f"{count}/{len(vals)} seeds {'reach it' if above else 'stay below'}"
    leaning = side(st.mean)
    if st.ci_low is not None and st.ci_high is not None and side(st.ci_low) == side(st.ci_high):
        ci = f"95 % CI [{st.ci_low:.3f}, {st.ci_high:.3f}]"
        decision = HOLDS if side(st.ci_low) else FAILS
        return ClaimCheck(*base, decision, f"{tally}; {ci}{more}", st.n, True, leaning, excluded_runs=excluded)
    sd, source = (st.sd, "observed") if st.sd else (ASSUMED_ACCURACY_SD, "assumed")
    needed = seeds_to_detect(sd, st.mean - threshold)
    why = "one seed" if st.n == 1 else f"95 % CI [{st.ci_low:.3f}, {st.ci_high:.3f}] straddles {threshold:.2f}"
    note = f"{tally}; {why}: {not_established(st.n, needed)}{more}"
    significant = None if st.n < 2 else False
    return ClaimCheck(*base, INCONCLUSIVE, note, st.n, significant, leaning, needed, source, excluded)


def _last(runs: Sequence[Run], attr: str) -> list[float]:
    values = [getattr(r.result.epochs[-1], attr) for r in runs if r.result.epochs]
    return [float(v) for v in values if v is not None]


def _baseline_val(where: _Where, base: list[Run]) -> ClaimCheck:
    claim = "baseline reaches val accuracy ≥ 0.90 (last epoch)"
    return _threshold(BASELINE_VAL, where, base, lambda rs: _last(rs, "val_accuracy"), claim, above=True)


def _bn_train(where: _Where, bn: list[Run]) -> ClaimCheck:
    claim = "BN model's train accuracy stays < 0.95 (less memorisation)"
    return _threshold(BN_TRAIN, where, bn, lambda rs: _last(rs, "train_accuracy"), claim, above=False)


def _bn_gap(where: _Where, base: list[Run], bn: list[Run]) -> ClaimCheck:
    """BN's gap smaller than the baseline's: decided on the paired (per-seed) gap differences."""
    (base, out_a), (bn, out_b) = _split_usable(base), _split_usable(bn)
    excluded, more = out_a + out_b, _excluded_note(out_a + out_b)
    gap_base = {r.spec.seed: generalization_gap(r.result) for r in base}
    gap_bn = {r.spec.seed: generalization_gap(r.result) for r in bn}
    st_base, st_bn = describe(gap_base.values()), describe(gap_bn.values())
    measured = f"BN {fmt_mean_sd(st_bn)} vs baseline {fmt_mean_sd(st_base)}"
    head = (BN_GAP, where.dataset, where.group, where.synthetic, "BatchNormalization shrinks the train/val gap")
    base_fields = (*head, "gap(BN) < gap(baseline)", measured)
    if st_base.mean is None or st_bn.mean is None:
        note = f"needs both baseline and batchnorm runs on this path{more}"
        return ClaimCheck(*base_fields, UNMEASURABLE, note, excluded_runs=excluded)
    paired = [
        b - a
        for s in sorted(set(gap_base) & set(gap_bn))
        if (a := gap_base[s]) is not None and (b := gap_bn[s]) is not None
    ]
    diff = describe(paired)
    if diff.mean is None:
        note = f"no seed has both models' gaps: the difference cannot be paired{more}"
        return ClaimCheck(*base_fields, INCONCLUSIVE, note, 0, None, None, None, "none", excluded)
    leaning = diff.mean < 0
    if diff.ci_low is not None and diff.ci_high is not None and (diff.ci_high < 0 or diff.ci_low > 0):
        ci = f"95 % CI [{diff.ci_low:+.3f}, {diff.ci_high:+.3f}]"
        note = f"paired Δ (BN − baseline) = {diff.mean:+.3f}, {ci} over {diff.n} seeds: outside seed noise{more}"
        decision = HOLDS if leaning else FAILS
        return ClaimCheck(*base_fields, decision, note, diff.n, True, leaning, excluded_runs=excluded)
    sd, source = (diff.sd, "observed") if diff.sd else (ASSUMED_GAP_DIFF_SD, "assumed")
    needed = seeds_to_detect(sd, diff.mean)
    if diff.n == 1:
        why = "one seed cannot separate the models"
    else:
        why = f"95 % CI [{diff.ci_low:+.3f}, {diff.ci_high:+.3f}] over {diff.n} seeds: within seed noise"
    note = f"paired Δ (BN − baseline) = {diff.mean:+.3f}; {why}; {not_established(diff.n, needed)}{more}"
    significant = None if diff.n < 2 else False
    return ClaimCheck(*base_fields, INCONCLUSIVE, note, diff.n, significant, leaning, needed, source, excluded)


def seeds_text(n: int) -> str:
    return f"{n} seed" + ("" if n == 1 else "s")


def not_established(n: int, needed: int | None) -> str:
    """``not established with N seed(s); need M`` (or why M cannot be given).

    With the observed SD and effect, M is always above N: a CI that includes 0 at N seeds means
    ``|d|/se(N) < t(0.975)``, below the ``t(0.975) + t(0.80)`` that 80 % power needs.
    """
    if needed is None:
        return (
            f"not established with {seeds_text(n)}; the difference is too small to establish with any practical number"
        )
    return f"not established with {seeds_text(n)}; need {needed}"


@dataclass(frozen=True)
class GapAnswer:
    """The answer to the seed's question for one dataset: does BN shrink the gap on every path?"""

    dataset: str
    # "yes" (established on every path) | "no" (larger on every decided path) | "mixed" | "not established"
    # (nothing against it, but some path undecided) | "unanswerable" (no path has both models)
    answer: str
    yes: list[str]  # groups where BN's gap is smaller beyond seed noise
    no: list[str]  # groups where it is larger beyond seed noise
    undecided: list[str]  # groups where the seeds do not establish either
    leaning_yes: list[str]  # undecided groups whose mean gap is smaller (not established)
    n_seeds: int  # the fewest seeds among the undecided groups (0 when none)
    seeds_needed: int | None  # the most seeds an undecided group needs (None: not computable / none undecided)
    flags: list[str]  # why the answer may not speak for MNIST (synthetic data, another dataset)


def bn_gap_answers(claims: Sequence[ClaimCheck]) -> list[GapAnswer]:
    """Per dataset: does BN shrink the train/val gap, on every path? (Decided on the claims' fields.)"""
    by_ds: dict[str, list[ClaimCheck]] = defaultdict(list)
    for c in claims:
        if c.kind == BN_GAP:
            by_ds[c.dataset].append(c)
    return [_answer(ds, by_ds[ds]) for ds in sorted(by_ds)]


def _answer(ds: str, cs: list[ClaimCheck]) -> GapAnswer:
    flags = []
    if any(c.synthetic for c in cs):
        flags.append("synthetic data: the answer says nothing about MNIST")
    elif ds not in CLAIM_DATASETS:
        flags.append("the seed's claims were made for MNIST, not this dataset")
    yes = [c.path for c in cs if c.decision == HOLDS]
    no = [c.path for c in cs if c.decision == FAILS]
    open_ = [c for c in cs if c.decision == INCONCLUSIVE]
    if no:
        answer = "mixed" if yes else "no"
    elif open_:
        answer = "not established"
    else:
        answer = "yes" if yes else "unanswerable"
    needed = [c.seeds_needed for c in open_]
    return GapAnswer(
        dataset=ds,
        answer=answer,
        yes=yes,
        no=no,
        undecided=[c.path for c in open_],
        leaning_yes=[c.path for c in open_ if c.leaning],
        n_seeds=min((c.n_seeds for c in open_), default=0),
        seeds_needed=None if not needed or None in needed else max(n for n in needed if n is not None),
        flags=flags,
    )
