"""Agreement checks between a group and the reference: accuracy equivalence across seeds, learning
curves, the mixed/XLA relative gate, and the numerics probe against float64."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from harness.analysis import equivalence
from harness.analysis.checks import Check, Verdict, fmt, fmt_p
from harness.analysis.samples import Run, metric_vector, per_seed_pp
from harness.analysis.stats import Z_975

# Seed-to-seed SD of test accuracy assumed for the seed estimate when it cannot be observed (one
# seed): TF-FACTS measured a 1-3 point spread over 5 seeds on Fashion-MNIST.
ASSUMED_SEED_SD_PP = 1.5
DEFAULT_MARGIN_PP = 1.0
DEFAULT_CURVE_TOL_PP = 2.0
DEFAULT_LOSS_TOL_REL = 0.10
# Each curve metric with its unit, as data: accuracies are compared in percentage points against
# curve_tol_pp, losses relative to the reference's loss (never decided by reading the name).
CURVE_UNITS = {"train_loss": "loss", "train_accuracy": "pp", "val_loss": "loss", "val_accuracy": "pp"}
CURVE_METRICS = tuple(CURVE_UNITS)


def identical_outcomes(a: Any, b: Any) -> bool:
    return metric_vector(a) == metric_vector(b)


def _aligned(a: dict[int, float], b: dict[int, float]) -> tuple[list[float], list[float], bool, list[int]]:
    """Pair by seed when at least one seed is shared (only shared seeds are used); else unpaired."""
    common = sorted(set(a) & set(b))
    if common:
        return [a[s] for s in common], [b[s] for s in common], True, common
    return list(a.values()), list(b.values()), False, []


@dataclass
class _Accuracy:
    """One accuracy comparison in the making: the estimate and what every summary line repeats."""

    subject: str
    metric: str
    margin: float
    est: equivalence.DiffEstimate
    details: dict[str, Any]
    n_desc: str

    @property
    def head(self) -> str:
        return f"Δ {fmt(self.est.mean, '.2f', True)} pp"

    def check(self, verdict: Verdict, summary: str) -> Check:
        return Check("accuracy-equivalence", verdict, f"{self.subject} ({self.metric})", summary, self.details)


def check_accuracy(subject: str, metric: str, g: list[Run], r: list[Run], margin: float) -> Check | None:
    """Equivalence of per-seed ``metric`` (pp) within ``±margin``: TOST over seeds, paired by seed."""
    a, b = per_seed_pp([x.result for x in g], metric), per_seed_pp([x.result for x in r], metric)
    if not a or not b:
        if metric == "val_accuracy":
            return None  # no validation split: nothing to compare
        summary = f"no {metric} values to compare ({len(a)} vs {len(b)} seeds)"
        return Check("accuracy-equivalence", Verdict.WARN, f"{subject} ({metric})", summary, {"metric": metric})
    xa, xb, paired, common = _aligned(a, b)
    est = equivalence.difference(xa, xb, margin=margin, paired=paired, assumed_sd=ASSUMED_SEED_SD_PP)
    details = {"metric": metric, "unit": "pp", "seeds": common if paired else None, "a_pp": xa, "b_pp": xb}
    details.update(est.to_dict())
    plural = "s" if est.n_a != 1 else ""
    n_desc = f"{est.n_a} paired seed{plural}" if paired else f"{est.n_a} vs {est.n_b} unpaired seeds"
    unmatched = sorted(set(a) ^ set(b)) if paired else []
    if unmatched:  # pairing by seed uses only the shared seeds; say so rather than drop silently
        n_desc += f" ({len(unmatched)} unmatched seed{'s' if len(unmatched) != 1 else ''} not used)"
        details["unmatched_seeds"] = unmatched
    case = _Accuracy(subject, metric, margin, est, details, n_desc)
    if est.exact and est.decision == "equivalent" and len(xa) == 1:
        single = _single_seed(case, [x for x in g if x.spec.seed in common], [x for x in r if x.spec.seed in common])
        if single is not None:
            return single
    if est.exact:
        return _exact(case)
    return _tested(case)


def _single_seed(case: _Accuracy, g: list[Run], r: list[Run]) -> Check | None:
    """One seed with equal accuracy may be a coincidence (accuracy is quantised): only call it identical
    when every metric of the pair is bit-identical."""
    if g and r and identical_outcomes(g[0].result, r[0].result):
        return None
    needed = equivalence.seeds_needed(ASSUMED_SEED_SD_PP, case.margin, paired=case.est.paired)
    case.details.update(seeds_needed=needed, sd_source="assumed")
    return case.check(
        Verdict.WARN,
        f"{case.head} on 1 seed only: cannot decide equivalence within ±{case.margin:g} pp; needs "
        f"≥{needed} seeds per path (assumed seed SD {ASSUMED_SEED_SD_PP:g} pp)",
    )


def _exact(case: _Accuracy) -> Check:
    """Zero variance: decided on the exact difference."""
    verdict = Verdict.PASS if case.est.decision == "equivalent" else Verdict.FAIL
    kind = "identical results" if case.est.mean == 0 else "constant difference"
    rel = "inside" if verdict == Verdict.PASS else "beyond"
    return case.check(
        verdict, f"{case.head} exactly ({kind}, zero variance over {case.n_desc}), {rel} ±{case.margin:g} pp"
    )


def _tested(case: _Accuracy) -> Check:
    """The TOST decision, or why there is none."""
    est, margin = case.est, case.margin
    ci = f"95% CI {fmt(est.ci_low, '.2f', True)}..{fmt(est.ci_high, '.2f', True)}"
    sd = f"SD {fmt(est.sd)} pp" if est.sd is not None else "SD n/a"
    if est.seeds_needed is not None:
        needs = f"±{margin:g} pp needs ≥{est.seeds_needed} seeds per path at this SD"
    else:
        needs = f"±{margin:g} pp not reachable at this spread"
    if est.sd_source == "assumed":
        needs += f" (assumed seed SD {ASSUMED_SEED_SD_PP:g} pp)"
    if est.decision == "equivalent":
        tost = f"TOST {fmt_p(est.tost_p)} → equivalent within ±{margin:g} pp"
        return case.check(Verdict.PASS, f"{case.head} ({ci}), {tost}; {case.n_desc}, {sd}; {needs}")
    if est.decision == "different":
        beyond = f"lies beyond ±{margin:g} pp ({fmt_p(est.beyond_p)})"
        return case.check(Verdict.FAIL, f"{case.head} ({ci}) {beyond}; {case.n_desc}, {sd}")
    if est.ci_low is None:  # one seed, or a constant nonzero difference on two: no usable SD
        return _without_sd(case, needs)
    return case.check(
        Verdict.WARN,
        f"{case.head} ({ci}), TOST {fmt_p(est.tost_p)}: too few seeds to decide ({case.n_desc}, {sd}); {needs}",
    )


def _without_sd(case: _Accuracy, needs: str) -> Check:
    """Without an observed SD, a difference far beyond what seed noise could produce is still a
    failure: judge it against the assumed seed SD (difference of two independent seeds)."""
    est = case.est
    why = "constant Δ, SD not observable" if est.sd == 0 else "no SD from one seed"
    se_assumed = ASSUMED_SEED_SD_PP * math.sqrt(2.0) / math.sqrt(max(est.n_a, 1))
    limit = case.margin + Z_975 * se_assumed
    case.details["assumed_limit_pp"] = limit
    if est.mean is not None and abs(est.mean) > limit:
        return case.check(
            Verdict.FAIL,
            f"{case.head} ({case.n_desc}; {why}) is beyond ±{limit:.2f} pp, the margin plus 1.96 × the "
            f"assumed seed noise ({ASSUMED_SEED_SD_PP:g} pp SD per path)",
        )
    return case.check(Verdict.WARN, f"{case.head}: too few seeds to decide ({case.n_desc}; {why}); {needs}")


def _mean_curves(runs: list[Run], seeds: list[int] | None) -> dict[str, list[float | None]]:
    chosen = [x for x in runs if seeds is None or x.spec.seed in seeds]
    curves: dict[str, list[float | None]] = {}
    n_epochs = min((len(x.result.epochs) for x in chosen), default=0)
    for metric in CURVE_METRICS:
        values: list[float | None] = []
        for i in range(n_epochs):
            col = [getattr(x.result.epochs[i], metric) for x in chosen]
            col = [v for v in col if v is not None and math.isfinite(v)]
            values.append(sum(col) / len(col) if len(col) == len(chosen) and col else None)
        curves[metric] = values
    curves["epoch"] = [float(e.epoch) for e in chosen[0].result.epochs[:n_epochs]] if chosen else []
    return curves


def check_curves(subject: str, g: list[Run], r: list[Run], tol_pp: float, loss_tol_rel: float) -> Check | None:
    if not any(x.result.epochs for x in g) or not any(x.result.epochs for x in r):
        return None
    common = sorted({x.spec.seed for x in g} & {x.spec.seed for x in r})
    seeds = common or None
    cg, cr = _mean_curves(g, seeds), _mean_curves(r, seeds)
    epochs = [float(e) for e in cr["epoch"][: len(cg["epoch"])] if e is not None]
    per_metric: dict[str, Any] = {}
    first_part: tuple[float, str, float, float] | None = None  # (epoch, metric, diff, tol)
    for metric in CURVE_METRICS:
        diffs = []
        for i, epoch in enumerate(epochs):
            va, vb = cg[metric][i], cr[metric][i]
            if va is None or vb is None:
                continue
            if CURVE_UNITS[metric] == "pp":
                diff, tol = 100.0 * (va - vb), tol_pp
            else:
                diff, tol = va - vb, loss_tol_rel * max(abs(vb), 1e-12)
            diffs.append(abs(diff))
            if abs(diff) > tol and (first_part is None or epoch < first_part[0]):
                first_part = (epoch, metric, diff, tol)
        if diffs:
            per_metric[metric] = {"max_abs_diff": max(diffs), "unit": CURVE_UNITS[metric]}
    if not per_metric:
        return None
    details = {
        "seeds": common,
        "paired": bool(common),
        "tolerance_pp": tol_pp,
        "loss_tolerance_rel": loss_tol_rel,
        "metrics": per_metric,
        "first_parting_epoch": first_part[0] if first_part else None,
        "curves": {"a": cg, "b": cr},
    }
    parts = []
    for metric, info in per_metric.items():
        unit = " pp" if info["unit"] == "pp" else ""
        parts.append(f"{metric} {info['max_abs_diff']:.3g}{unit}")
    basis = f"mean over {len(common)} paired seeds" if common else "mean over all seeds (unpaired)"
    if first_part is None:
        return Check(
            "curves",
            Verdict.PASS,
            subject,
            f"max |Δ| {', '.join(parts)} ({basis}); within tolerance (±{tol_pp:g} pp, ±{loss_tol_rel:.0%} loss)",
            details,
        )
    epoch, metric, diff, tol = first_part
    unit = " pp" if CURVE_UNITS[metric] == "pp" else ""
    return Check(
        "curves",
        Verdict.WARN,
        subject,
        f"curves part at epoch {epoch:g}: {metric} Δ {diff:+.3g}{unit} > {tol:.3g}{unit}; max |Δ| "
        f"{', '.join(parts)} ({basis})",
        details,
    )


def check_relative_gate(subject: str, g: list[Run], sibling: list[Run], margin: float) -> Check:
    a, b = (
        per_seed_pp([x.result for x in g], "test_accuracy"),
        per_seed_pp([x.result for x in sibling], "test_accuracy"),
    )
    xa, xb, paired, common = _aligned(a, b)
    ni = equivalence.noninferiority(xa, xb, margin=margin, paired=paired)
    details = {
        "metric": "test_accuracy",
        "unit": "pp",
        "seeds": common if paired else None,
        "a_pp": xa,
        "b_pp": xb,
        **ni.to_dict(),
    }
    head = f"test accuracy Δ {fmt(ni.mean, '.2f', True)} pp vs fp32 sibling"
    n_desc = f"{ni.n_a} paired seeds" if paired else f"{ni.n_a} vs {ni.n_b} seeds"
    if ni.decision == "noninferior":
        how = "exactly" if ni.exact else f"{fmt_p(ni.noninferior_p)}"
        return Check(
            "relative-gate",
            Verdict.PASS,
            subject,
            f"{head}: loses no more than {margin:g} pp ({how}, {n_desc})",
            details,
        )
    if ni.decision == "inferior":
        how = "exactly" if ni.exact else f"{fmt_p(ni.inferior_p)}"
        return Check(
            "relative-gate", Verdict.FAIL, subject, f"{head}: loses more than {margin:g} pp ({how}, {n_desc})", details
        )
    return Check(
        "relative-gate",
        Verdict.WARN,
        subject,
        f"{head}: cannot show it loses no more than {margin:g} pp ({fmt_p(ni.noninferior_p)}, {n_desc}); add seeds",
        details,
    )


# A model that did not learn agrees with itself on every path: its parity says nothing. Within this many
# pp of chance (1 / classes) on a dataset whose class count is known, agreement checks become a WARN.
CHANCE_MARGIN_PP = 5.0
TEN_CLASS_DATASETS = ("mnist-5k", "mnist", "fashion-mnist", "synthetic")  # the built-in ones: 10 classes


def at_chance(runs: list[Run]) -> tuple[float, float] | None:
    """(mean test accuracy, chance rate) when ``runs`` sit at chance level; None when they learned or the
    class count is unknown (users' datasets: no verdict is made up)."""
    values = [x.result.test_accuracy for x in runs if x.result.test_accuracy is not None]
    if not values or any(x.spec.dataset not in TEN_CLASS_DATASETS for x in runs):
        return None
    mean, chance = sum(values) / len(values), 1.0 / 10
    return (mean, chance) if 100.0 * (mean - chance) <= CHANCE_MARGIN_PP else None


def unless_learned(checks: list[Check], pair_runs: tuple[list[Run], list[Run]], names: tuple[str, str]) -> list[Check]:
    """Agreement checks of a pair where either side sits at chance: PASS becomes an INCONCLUSIVE WARN."""
    stuck = [
        (name, found) for name, runs in zip(names, pair_runs, strict=True) if (found := at_chance(runs)) is not None
    ]
    if not stuck:
        return checks
    why = "; ".join(f"{name} test accuracy {mean:.3f} at chance ({chance:.3f})" for name, (mean, chance) in stuck)
    out = []
    for check in checks:
        if check.name in ("accuracy-equivalence", "curves") and check.verdict == Verdict.PASS:
            summary = f"INCONCLUSIVE: {why}: the model did not learn, so agreement says nothing; {check.summary}"
            check = Check(check.name, Verdict.WARN, check.subject, summary, {**check.details, "at_chance": True})
        out.append(check)
    return out
