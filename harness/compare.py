"""``tfparity compare``: do the hardware paths agree, and how fast is each?

Results are grouped by path (``RunSpec.path.name``, plus the execution settings when those differ) per source (a results directory or backend),
paired by benchmark, dataset fingerprint, hyperparameters and seed, and put through checks that
each end in PASS / WARN / FAIL with the numbers behind the verdict:

accuracy-equivalence  TOST on per-seed test/val accuracy against a margin in percentage points
curves                per-epoch loss/accuracy distance and the first epoch where curves part
numerics              the numerics probe (harness.probe) against its float64 reference
determinism           identical specs in the same environment must give identical metrics
evidence              the path that ran is the path asked for (device, policy, XLA)
relative-gate         mixed precision / XLA must not lose more than the margin vs its fp32 sibling
speed, memory         median ratios with bootstrap CIs; changes inside run-to-run noise are not changes
status                failed/interrupted runs are reported, never used in statistics
regression            with ``--baseline``: gated changes outside noise (harness.regress)

Statistics come from harness.stats (scipy.stats). This module is TF-free.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import stats
from harness.config import RunSpec
from harness.errors import UserError
from harness.results import RunResult, load_results

log = logging.getLogger(__name__)

VERDICTS = ("PASS", "WARN", "FAIL")
_RANK = {v: i for i, v in enumerate(VERDICTS)}
# Seed-to-seed SD of test accuracy assumed for the seed estimate when it cannot be observed (one
# seed): TF-FACTS measured a 1-3 point spread over 5 seeds on Fashion-MNIST.
ASSUMED_SEED_SD_PP = 1.5
Z_975 = 1.959964  # two-sided 95 % normal quantile
DEFAULT_MARGIN_PP = 1.0
DEFAULT_CURVE_TOL_PP = 2.0
DEFAULT_LOSS_TOL_REL = 0.10
CURVE_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


class CompareError(UserError, ValueError):
    """Results that cannot be compared (none, mismatched data/hyperparameters, unknown reference)."""


@dataclass(frozen=True)
class Check:
    """One verdict with the numbers behind it."""

    name: str  # "accuracy-equivalence", "curves", "numerics", "determinism", "evidence", ...
    verdict: str  # "PASS" | "WARN" | "FAIL"
    subject: str  # what was compared, e.g. "batchnorm/mnist-5k: cpu-mixed_bfloat16 vs cpu-fp32"
    summary: str  # one line with the numbers behind the verdict
    details: dict = field(default_factory=dict)  # JSON-serialisable numbers

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "verdict": self.verdict, "subject": self.subject,
                "summary": self.summary, "details": _json_safe(self.details)}


def worst(verdicts: Sequence[str]) -> str:
    """The worst verdict (PASS < WARN < FAIL); PASS for an empty sequence."""
    return max(verdicts, key=_RANK.__getitem__, default="PASS")


@dataclass(frozen=True)
class Comparison:
    """Everything ``compare`` decided: the reference, the compared groups and every check."""

    reference: str
    groups: list[str]  # the labels of the compared groups
    checks: list[Check]
    verdict: str  # worst verdict over checks
    margin_pp: float = DEFAULT_MARGIN_PP
    # label -> {"source", "path", "runs", "ok"}: what each group holds.
    group_info: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        counts = {v: sum(c.verdict == v for c in self.checks) for v in VERDICTS}
        return {"reference": self.reference, "groups": list(self.groups), "verdict": self.verdict,
                "margin_pp": self.margin_pp, "counts": counts, "group_info": _json_safe(self.group_info),
                "checks": [c.to_dict() for c in self.checks]}


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        return _json_safe(obj.item())
    return obj


# --- grouping ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    result: RunResult
    spec: RunSpec
    source: str
    group: str

    @property
    def unit(self) -> tuple[str, str]:
        return (self.spec.benchmark, self.spec.dataset)

    @property
    def where(self) -> str:
        return f"{self.group} seed {self.spec.seed}"


def _default_source(result: RunResult) -> str:
    backend = result.environment.get("backend") if isinstance(result.environment, dict) else None
    return str(backend) if backend else "local"


def _execution(spec: RunSpec) -> str:
    """How the training loop ran (not part of the experiment, but never averaged together)."""
    return f"{spec.input},spe{spec.steps_per_execution}" + ("" if spec.loop == "fit" else f",{spec.loop}")


def _group_runs(results: Sequence[RunResult], sources: Sequence[str]) -> list[_Run]:
    """Label each result with its group: the path name, prefixed by the source when two sources
    hold the same path name (local vs docker: ``local:cpu-fp32`` vs ``docker:cpu-fp32``), and
    suffixed by the execution settings when runs of one path differ in them (the seed way vs the
    fast preset: ``cpu-fp32[numpy,spe1]`` vs ``cpu-fp32[tfdata,spe64]``)."""
    specs = [r.run_spec for r in results]
    executions: dict[str, set[str]] = {}
    for spec in specs:
        executions.setdefault(spec.path.name, set()).add(_execution(spec))
    names = [spec.path.name + (f"[{_execution(spec)}]" if len(executions[spec.path.name]) > 1 else "")
             for spec in specs]
    sources_of_path: dict[str, list[str]] = {}
    for name, source in zip(names, sources, strict=True):
        lst = sources_of_path.setdefault(name, [])
        if source not in lst:
            lst.append(source)
    runs = []
    for result, spec, source, name in zip(results, specs, sources, names, strict=True):
        group = f"{source}:{name}" if len(sources_of_path[name]) > 1 else name
        runs.append(_Run(result, spec, source, group))
    return runs


def _resolve_reference(runs: list[_Run], groups: list[str], reference: str | None) -> str:
    if reference is not None:
        if reference in groups:
            return reference
        by_path = sorted({r.group for r in runs if r.spec.path.name == reference})
        if len(by_path) == 1:
            return by_path[0]
        if len(by_path) > 1:
            raise CompareError(f"reference {reference!r} is ambiguous: it matches groups {by_path}; "
                               f"name one of them")
        raise CompareError(f"unknown reference {reference!r}; the compared groups are {groups}")
    for run in runs:  # first in argument order
        path = run.spec.path
        if path.device == "cpu" and path.precision == "fp32" and not path.xla:
            return run.group
    log.info("no cpu-fp32 group present; using the first group %r as reference", groups[0])
    return groups[0]


def _validate_units(runs: list[_Run]) -> None:
    """Refuse (one line) to compare runs of one benchmark/dataset/mode whose data or
    hyperparameters differ: such a comparison would silently mix different experiments."""
    by_unit: dict[tuple[str, str, str], list[_Run]] = {}
    for run in runs:
        if run.result.ok:
            by_unit.setdefault((*run.unit, run.spec.mode), []).append(run)
    for (bench, data, mode), unit_runs in by_unit.items():
        first_fp: _Run | None = None
        for run in unit_runs:
            if run.result.dataset is None:
                continue
            if first_fp is None:
                first_fp = run
            elif run.result.dataset.sha256 != first_fp.result.dataset.sha256:
                raise CompareError(
                    f"dataset fingerprints differ for {bench}/{data}: {first_fp.where} has "
                    f"{first_fp.result.dataset.sha256[:12]}, {run.where} has {run.result.dataset.sha256[:12]}; "
                    "runs on different data cannot be compared")
        first = unit_runs[0]
        hp0 = first.spec.hyperparameters
        for run in unit_runs[1:]:
            hp = run.spec.hyperparameters
            if hp != hp0:
                diff = sorted(k for k in set(hp) | set(hp0) if hp.get(k) != hp0.get(k))
                what = ", ".join(f"{k} {hp0.get(k)!r} vs {hp.get(k)!r}" for k in diff)
                raise CompareError(
                    f"hyperparameters differ for {bench}/{data} ({mode}): {first.where} vs {run.where}: {what}; "
                    "compare runs of one configuration at a time")


# --- per-seed values --------------------------------------------------------------------------


def _last_val_accuracy(result: RunResult) -> float | None:
    if not result.epochs:
        return None
    return result.epochs[-1].val_accuracy


def _per_seed(runs: list[_Run], metric: str) -> dict[int, float]:
    """Per-seed value in percentage points (repeats of one seed are averaged)."""
    acc: dict[int, list[float]] = {}
    for run in runs:
        value = run.result.test_accuracy if metric == "test_accuracy" else _last_val_accuracy(run.result)
        if value is not None and math.isfinite(value):
            acc.setdefault(run.spec.seed, []).append(100.0 * value)
    return {seed: sum(v) / len(v) for seed, v in sorted(acc.items())}


def _aligned(a: dict[int, float], b: dict[int, float]) -> tuple[list[float], list[float], bool, list[int]]:
    """Pair by seed when at least one seed is shared (only shared seeds are used); else unpaired."""
    common = sorted(set(a) & set(b))
    if common:
        return [a[s] for s in common], [b[s] for s in common], True, common
    return list(a.values()), list(b.values()), False, []


def _fmt(value: float | None, spec: str = ".2f", signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return format(value, ("+" if signed else "") + spec)


def _fmt_p(p: float | None) -> str:
    """``p<0.001`` / ``p=0.012`` / ``p n/a`` (the result includes the ``p``)."""
    if p is None:
        return "p n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _identical_outcomes(a: RunResult, b: RunResult) -> bool:
    return _metric_vector(a) == _metric_vector(b)


def _metric_vector(r: RunResult) -> list[Any]:
    """Everything that must be bit-identical for two deterministic runs (timings excluded)."""
    vec: list[Any] = [r.test_accuracy, r.test_loss]
    for e in r.epochs:
        vec.extend([e.epoch, e.train_loss, e.train_accuracy, e.val_loss, e.val_accuracy])
    return vec


# --- checks -----------------------------------------------------------------------------------


def _check_status(runs: list[_Run]) -> list[Check]:
    checks = []
    for run in runs:
        if run.result.ok:
            continue
        verdict = "WARN" if run.result.status == "interrupted" else "FAIL"
        error = (run.result.error or "no error recorded").strip().splitlines()
        checks.append(Check(
            "status", verdict, f"{run.spec.benchmark}/{run.spec.dataset}: {run.where}",
            f"run {run.result.status}: {error[0] if error else ''} (excluded from statistics)",
            {"run_id": run.result.run_id, "status": run.result.status, "error": run.result.error}))
    return checks


def _check_accuracy(subject: str, metric: str, g: list[_Run], r: list[_Run], margin: float) -> Check | None:
    a, b = _per_seed(g, metric), _per_seed(r, metric)
    if not a or not b:
        if metric == "val_accuracy":
            return None  # no validation split: nothing to compare
        return Check("accuracy-equivalence", "WARN", f"{subject} ({metric})",
                     f"no {metric} values to compare ({len(a)} vs {len(b)} seeds)", {"metric": metric})
    xa, xb, paired, common = _aligned(a, b)
    est = stats.difference(xa, xb, margin=margin, paired=paired, assumed_sd=ASSUMED_SEED_SD_PP)
    details = {"metric": metric, "unit": "pp", "seeds": common if paired else None,
               "a_pp": xa, "b_pp": xb, **est.to_dict()}
    n_desc = f"{est.n_a} paired seed{'s' if est.n_a != 1 else ''}" if paired else f"{est.n_a} vs {est.n_b} unpaired seeds"
    unmatched = len(set(a) ^ set(b)) if paired else 0
    if unmatched:  # pairing by seed uses only the shared seeds; say so rather than drop silently
        n_desc += f" ({unmatched} unmatched seed{'s' if unmatched != 1 else ''} not used)"
        details["unmatched_seeds"] = sorted(set(a) ^ set(b))
    head = f"Δ {_fmt(est.mean, '.2f', True)} pp"
    # One seed with equal accuracy may be a coincidence (accuracy is quantised): only call it
    # identical when every metric of the pair is bit-identical.
    if est.exact and est.decision == "equivalent" and len(xa) == 1:
        pair_a = [x for x in g if x.spec.seed == common[0]] if paired else g
        pair_b = [x for x in r if x.spec.seed == common[0]] if paired else r
        if not (paired and _identical_outcomes(pair_a[0].result, pair_b[0].result)):
            est_needed = stats.seeds_needed(ASSUMED_SEED_SD_PP, margin, paired=paired)
            details["seeds_needed"] = est_needed
            details["sd_source"] = "assumed"
            return Check("accuracy-equivalence", "WARN", f"{subject} ({metric})",
                         f"{head} on 1 seed only: cannot decide equivalence within ±{margin:g} pp; needs "
                         f"≥{est_needed} seeds per path (assumed seed SD {ASSUMED_SEED_SD_PP:g} pp)", details)
    if est.exact:
        verdict = "PASS" if est.decision == "equivalent" else "FAIL"
        kind = "identical results" if est.mean == 0 else "constant difference"
        rel = "inside" if verdict == "PASS" else "beyond"
        return Check("accuracy-equivalence", verdict, f"{subject} ({metric})",
                     f"{head} exactly ({kind}, zero variance over {n_desc}), {rel} ±{margin:g} pp", details)
    ci = f"95% CI {_fmt(est.ci_low, '.2f', True)}..{_fmt(est.ci_high, '.2f', True)}"
    sd = f"SD {_fmt(est.sd)} pp" if est.sd is not None else "SD n/a"
    needs = (f"±{margin:g} pp needs ≥{est.seeds_needed} seeds per path at this SD"
             if est.seeds_needed is not None else f"±{margin:g} pp not reachable at this spread")
    if est.sd_source == "assumed":
        needs += f" (assumed seed SD {ASSUMED_SEED_SD_PP:g} pp)"
    if est.decision == "equivalent":
        return Check("accuracy-equivalence", "PASS", f"{subject} ({metric})",
                     f"{head} ({ci}), TOST {_fmt_p(est.tost_p)} → equivalent within ±{margin:g} pp; "
                     f"{n_desc}, {sd}; {needs}", details)
    if est.decision == "different":
        return Check("accuracy-equivalence", "FAIL", f"{subject} ({metric})",
                     f"{head} ({ci}) lies beyond ±{margin:g} pp ({_fmt_p(est.beyond_p)}); {n_desc}, {sd}",
                     details)
    if est.ci_low is None:  # one seed, or a constant nonzero difference on two: no usable SD
        why = "constant Δ, SD not observable" if est.sd == 0 else "no SD from one seed"
        # Without an observed SD, a difference far beyond what seed noise could produce is still a
        # failure: judge it against the assumed seed SD (difference of two independent seeds).
        se_assumed = ASSUMED_SEED_SD_PP * math.sqrt(2.0) / math.sqrt(max(est.n_a, 1))
        limit = margin + Z_975 * se_assumed
        details["assumed_limit_pp"] = limit
        if est.mean is not None and abs(est.mean) > limit:
            return Check("accuracy-equivalence", "FAIL", f"{subject} ({metric})",
                         f"{head} ({n_desc}; {why}) is beyond ±{limit:.2f} pp, the margin plus 1.96 × the "
                         f"assumed seed noise ({ASSUMED_SEED_SD_PP:g} pp SD per path)", details)
        return Check("accuracy-equivalence", "WARN", f"{subject} ({metric})",
                     f"{head}: too few seeds to decide ({n_desc}; {why}); {needs}", details)
    return Check("accuracy-equivalence", "WARN", f"{subject} ({metric})",
                 f"{head} ({ci}), TOST {_fmt_p(est.tost_p)}: too few seeds to decide ({n_desc}, {sd}); "
                 f"{needs}", details)


def _mean_curves(runs: list[_Run], seeds: list[int] | None) -> dict[str, list[float | None]]:
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


def _check_curves(subject: str, g: list[_Run], r: list[_Run], tol_pp: float, loss_tol_rel: float) -> Check | None:
    if not any(x.result.epochs for x in g) or not any(x.result.epochs for x in r):
        return None
    common = sorted({x.spec.seed for x in g} & {x.spec.seed for x in r})
    seeds = common or None
    cg, cr = _mean_curves(g, seeds), _mean_curves(r, seeds)
    epochs = cr["epoch"][: len(cg["epoch"])]
    per_metric: dict[str, Any] = {}
    first_part: tuple[float, str, float, float] | None = None  # (epoch, metric, diff, tol)
    for metric in CURVE_METRICS:
        diffs = []
        for i, epoch in enumerate(epochs):
            va, vb = cg[metric][i], cr[metric][i]
            if va is None or vb is None:
                continue
            if metric.endswith("accuracy"):
                diff, tol = 100.0 * (va - vb), tol_pp
            else:
                diff, tol = va - vb, loss_tol_rel * max(abs(vb), 1e-12)
            diffs.append(abs(diff))
            if abs(diff) > tol and (first_part is None or epoch < first_part[0]):
                first_part = (epoch, metric, diff, tol)
        if diffs:
            per_metric[metric] = {"max_abs_diff": max(diffs),
                                  "unit": "pp" if metric.endswith("accuracy") else "loss"}
    if not per_metric:
        return None
    details = {"seeds": common, "paired": bool(common), "tolerance_pp": tol_pp, "loss_tolerance_rel": loss_tol_rel,
               "metrics": per_metric, "first_parting_epoch": first_part[0] if first_part else None,
               "curves": {"a": cg, "b": cr}}
    parts = []
    for metric, info in per_metric.items():
        unit = " pp" if info["unit"] == "pp" else ""
        parts.append(f"{metric} {info['max_abs_diff']:.3g}{unit}")
    basis = f"mean over {len(common)} paired seeds" if common else "mean over all seeds (unpaired)"
    if first_part is None:
        return Check("curves", "PASS", subject,
                     f"max |Δ| {', '.join(parts)} ({basis}); within tolerance (±{tol_pp:g} pp, ±{loss_tol_rel:.0%} loss)",
                     details)
    epoch, metric, diff, tol = first_part
    unit = " pp" if metric.endswith("accuracy") else ""
    return Check("curves", "WARN", subject,
                 f"curves part at epoch {epoch:g}: {metric} Δ {diff:+.3g}{unit} > {tol:.3g}{unit}; max |Δ| "
                 f"{', '.join(parts)} ({basis})", details)


def _check_relative_gate(subject: str, g: list[_Run], sibling: list[_Run], margin: float) -> Check:
    a, b = _per_seed(g, "test_accuracy"), _per_seed(sibling, "test_accuracy")
    xa, xb, paired, common = _aligned(a, b)
    ni = stats.noninferiority(xa, xb, margin=margin, paired=paired)
    details = {"metric": "test_accuracy", "unit": "pp", "seeds": common if paired else None,
               "a_pp": xa, "b_pp": xb, **ni.to_dict()}
    head = f"test accuracy Δ {_fmt(ni.mean, '.2f', True)} pp vs fp32 sibling"
    n_desc = f"{ni.n_a} paired seeds" if paired else f"{ni.n_a} vs {ni.n_b} seeds"
    if ni.decision == "noninferior":
        how = "exactly" if ni.exact else f"{_fmt_p(ni.noninferior_p)}"
        return Check("relative-gate", "PASS", subject,
                     f"{head}: loses no more than {margin:g} pp ({how}, {n_desc})", details)
    if ni.decision == "inferior":
        how = "exactly" if ni.exact else f"{_fmt_p(ni.inferior_p)}"
        return Check("relative-gate", "FAIL", subject,
                     f"{head}: loses more than {margin:g} pp ({how}, {n_desc})", details)
    return Check("relative-gate", "WARN", subject,
                 f"{head}: cannot show it loses no more than {margin:g} pp "
                 f"({_fmt_p(ni.noninferior_p)}, {n_desc}); add seeds", details)


def _steady_steps(result: RunResult) -> list[float]:
    """Steady-state per-step times (ms): the warm-up samples are dropped.

    Assumes ``timing.step_time_ms`` holds every sample from the first step on, one sample per
    ``steps_per_sample`` steps, and ``warmup_steps`` counts steps (see results.Timing).
    """
    t = result.timing
    if t is None:
        return []
    skip = math.ceil(t.warmup_steps / max(t.steps_per_sample, 1))
    return [v for v in t.step_time_ms[skip:] if v is not None and math.isfinite(v) and v > 0]


def _speed_check(subject: str, g: list[_Run], r: list[_Run], g_device: str, r_device: str) -> Check | None:
    steps_g = [s for x in g for s in _steady_steps(x.result)]
    steps_r = [s for x in r for s in _steady_steps(x.result)]
    if not steps_g or not steps_r:
        return None
    # Run-to-run noise: the spread of per-run medians within each group (repeats or seeds).
    med_g = [stats.median(_steady_steps(x.result)) for x in g]
    med_r = [stats.median(_steady_steps(x.result)) for x in r]
    noise = max(stats.run_spread([m for m in med_g if m]), stats.run_spread([m for m in med_r if m]))
    # Throughput ratio a/b = median step time b / median step time a.
    est = stats.median_ratio(steps_r, steps_g, noise_frac=noise)
    compile_g = [x.result.timing.compile_time_s for x in g if x.result.timing]
    compile_r = [x.result.timing.compile_time_s for x in r if x.result.timing]
    details = {"throughput_ratio": est.ratio, "ci_low": est.ci_low, "ci_high": est.ci_high,
               "mannwhitney_p": est.mannwhitney_p, "run_noise_frac": noise, "changed": est.changed,
               "step_time_ms_p50_a": est.median_b, "step_time_ms_p50_b": est.median_a,
               "n_steps_a": len(steps_g), "n_steps_b": len(steps_r),
               "compile_time_s_a": compile_g, "compile_time_s_b": compile_r}
    ratio = f"throughput ×{_fmt(est.ratio, '.3f')} (95% CI {_fmt(est.ci_low, '.3f')}..{_fmt(est.ci_high, '.3f')})"
    p50 = f"p50 {_fmt(est.median_b, '.3g')} vs {_fmt(est.median_a, '.3g')} ms/step"
    if not est.changed:
        return Check("speed", "PASS", subject,
                     f"{ratio}, U {_fmt_p(est.mannwhitney_p)}: no change outside run-to-run noise "
                     f"(noise {noise:.1%}); {p50}", details)
    faster = est.ratio is not None and est.ratio > 1
    word = "faster" if faster else "slower"
    if g_device == "gpu" and r_device == "cpu" and not faster:
        return Check("speed", "WARN", subject, f"GPU path slower than CPU path: {ratio}, U {_fmt_p(est.mannwhitney_p)}; {p50}",
                     details)
    if r_device == "gpu" and g_device == "cpu" and faster:
        return Check("speed", "WARN", subject, f"GPU path slower than CPU path: CPU {ratio}, U {_fmt_p(est.mannwhitney_p)}; {p50}",
                     details)
    return Check("speed", "PASS", subject, f"{ratio}, U {_fmt_p(est.mannwhitney_p)}: {word}; {p50}", details)


def _memory_check(subject: str, g: list[_Run], r: list[_Run]) -> Check | None:
    mg = [x.result.memory.peak_rss_mb for x in g if x.result.memory is not None]
    mr = [x.result.memory.peak_rss_mb for x in r if x.result.memory is not None]
    if not mg or not mr:
        return None
    # A bootstrap over a handful of per-run values is not a CI worth printing: need 5 runs each.
    est = stats.median_ratio(mg, mr, bootstrap=min(len(mg), len(mr)) >= 5)
    tf_g = [x.result.memory.tf_peak_mb for x in g if x.result.memory and x.result.memory.tf_peak_mb is not None]
    tf_r = [x.result.memory.tf_peak_mb for x in r if x.result.memory and x.result.memory.tf_peak_mb is not None]
    details = {"peak_rss_ratio": est.ratio, "ci_low": est.ci_low, "ci_high": est.ci_high,
               "mannwhitney_p": est.mannwhitney_p, "changed": est.changed,
               "peak_rss_mb_a": mg, "peak_rss_mb_b": mr, "tf_peak_mb_a": tf_g, "tf_peak_mb_b": tf_r}
    ci = (f" (95% CI {_fmt(est.ci_low, '.3f')}..{_fmt(est.ci_high, '.3f')})" if est.ci_low is not None
          else f" (no CI: {len(mg)} vs {len(mr)} runs)")
    if est.changed:
        change = "changed"
    elif min(len(mg), len(mr)) < 4:  # a U test on fewer runs cannot reach p < 0.05
        change = "too few runs to tell a change from noise (U test needs ≥4 each)"
    else:
        change = "no change outside run-to-run noise"
    return Check("memory", "PASS", subject,
                 f"peak RSS ×{_fmt(est.ratio, '.3f')}{ci}, median {_fmt(est.median_a, '.0f')} vs "
                 f"{_fmt(est.median_b, '.0f')} MB: {change}", details)


def _device_of(variable_device: str) -> str | None:
    text = variable_device.upper()
    if "GPU" in text:
        return "gpu"
    if "CPU" in text:
        return "cpu"
    return None


def _check_evidence(group: str, runs: list[_Run]) -> Check | None:
    problems: list[str] = []
    warnings: list[str] = []
    checked = 0
    for run in runs:
        if not run.result.ok:
            continue
        ev, path = run.result.evidence, run.spec.path
        if ev is None:
            warnings.append(f"seed {run.spec.seed}: no evidence recorded")
            continue
        checked += 1
        device = _device_of(ev.variable_device)
        if device != path.device:
            problems.append(f"seed {run.spec.seed}: variables on {ev.variable_device!r}, asked for {path.device}")
        if ev.dtype_policy != path.policy:
            problems.append(f"seed {run.spec.seed}: dtype policy {ev.dtype_policy!r}, asked for {path.policy!r}")
        if ev.jit_compile != path.xla:
            problems.append(f"seed {run.spec.seed}: jit_compile {ev.jit_compile}, asked for xla={path.xla}")
        if ev.deterministic_ops != run.spec.deterministic_ops:
            warnings.append(f"seed {run.spec.seed}: deterministic_ops {ev.deterministic_ops}, "
                            f"asked for {run.spec.deterministic_ops}")
    if not problems and not warnings and checked == 0:
        return None
    details = {"runs_checked": checked, "problems": problems, "warnings": warnings}
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return Check("evidence", "FAIL", group, f"the path that ran is not the path asked for: {problems[0]}{more}",
                     details)
    if warnings:
        more = f" (+{len(warnings) - 1} more)" if len(warnings) > 1 else ""
        return Check("evidence", "WARN", group, f"{warnings[0]}{more}", details)
    path = runs[0].spec.path
    return Check("evidence", "PASS", group,
                 f"{checked} run(s): variables on {path.device}, policy {path.policy}, jit_compile {path.xla}",
                 details)


def _env_signature(result: RunResult) -> str:
    env = result.environment if isinstance(result.environment, dict) else {}
    keys = ("tensorflow_version", "keras_version", "cpu_model", "gpus", "tf_build_info")
    return json.dumps({k: env.get(k) for k in keys}, sort_keys=True, default=str)


def _check_determinism(runs: list[_Run]) -> list[Check]:
    """Runs with identical specs in the same software/hardware environment must agree exactly when
    op determinism was on (evidence); otherwise the spread is reported."""
    clusters: dict[tuple[str, str], list[_Run]] = {}
    for run in runs:
        if run.result.ok and run.spec.mode == "train":
            spec_key = json.dumps(run.spec.to_dict(), sort_keys=True)
            clusters.setdefault((spec_key, _env_signature(run.result)), []).append(run)
    checks = []
    for cluster in clusters.values():
        if len(cluster) < 2:
            continue
        first = cluster[0]
        subject = (f"{first.spec.benchmark}/{first.spec.dataset}: {first.spec.path.name} seed {first.spec.seed} "
                   f"× {len(cluster)} runs ({', '.join(sorted({x.group for x in cluster}))})")
        vectors = [_metric_vector(x.result) for x in cluster]
        identical = all(v == vectors[0] for v in vectors[1:])
        deterministic = all(x.result.evidence is not None and x.result.evidence.deterministic_ops for x in cluster)
        acc = [x.result.test_accuracy for x in cluster if x.result.test_accuracy is not None]
        loss = [x.result.test_loss for x in cluster if x.result.test_loss is not None]
        spread_pp = 100.0 * (max(acc) - min(acc)) if acc else None
        loss_spread = (max(loss) - min(loss)) if loss else None
        details = {"run_ids": [x.result.run_id for x in cluster], "identical": identical,
                   "deterministic_ops": deterministic, "test_accuracy_spread_pp": spread_pp,
                   "test_loss_spread": loss_spread}
        if identical:
            checks.append(Check("determinism", "PASS", subject,
                                f"bit-identical metrics across {len(cluster)} runs", details))
        elif deterministic:
            checks.append(Check("determinism", "FAIL", subject,
                                f"deterministic_ops on but metrics differ: test accuracy spread "
                                f"{_fmt(spread_pp, '.3g')} pp, test loss spread {_fmt(loss_spread, '.3g')}", details))
        else:
            checks.append(Check("determinism", "WARN", subject,
                                f"metrics differ (deterministic_ops off, so expected): test accuracy spread "
                                f"{_fmt(spread_pp, '.3g')} pp, test loss spread {_fmt(loss_spread, '.3g')}", details))
    return checks


def _probe_payload(run: _Run) -> dict[str, Any] | None:
    payload = run.result.extra.get("probe") if isinstance(run.result.extra, dict) else None
    return payload if isinstance(payload, dict) else None


def _check_numerics(probe_runs: list[_Run], reference: str) -> list[Check]:
    checks = []
    by_unit: dict[tuple[str, str], list[_Run]] = {}
    for run in probe_runs:
        by_unit.setdefault(run.unit, []).append(run)
    for (bench, data), unit_runs in by_unit.items():
        for run in unit_runs:
            subject = f"{bench}/{data}: {run.where} vs float64"
            payload = _probe_payload(run)
            if payload is None:
                checks.append(Check("numerics", "FAIL", subject, "probe run has no probe payload (extra['probe'])",
                                    {"run_id": run.result.run_id}))
                continue
            details = {k: payload.get(k) for k in (
                "compute_dtype", "jit_compile", "tolerance", "loss", "loss_float64", "loss_rel_err",
                "logits_rel_err", "first_divergent_layer", "divergence", "passed", "initial_weights_sha256",
                "batch_sha256")}
            details["layers"] = payload.get("layers", [])
            worst_act = max((x.get("activation_rel_err") or 0.0 for x in details["layers"]), default=0.0)
            worst_grad = max((x.get("gradient_rel_err") or 0.0 for x in details["layers"]), default=0.0)
            tol = payload.get("tolerance") or {}
            numbers = (f"max rel err activations {worst_act:.2e} (tol {_fmt(tol.get('activation'), '.2g')}), "
                       f"gradients {worst_grad:.2e} (tol {_fmt(tol.get('gradient'), '.2g')}), "
                       f"loss {_fmt(payload.get('loss_rel_err'), '.1e')}; {payload.get('compute_dtype')}")
            if payload.get("passed"):
                checks.append(Check("numerics", "PASS", subject, f"within tolerance: {numbers}", details))
            else:
                layer = payload.get("first_divergent_layer")
                kind = payload.get("divergence") or "values"
                checks.append(Check("numerics", "FAIL", subject,
                                    f"first layer beyond tolerance: {layer} ({kind}); {numbers}", details))
        # Across groups: every probe must start from the same weights and batch, or its float64
        # comparison does not describe the same computation.
        ref_runs = [x for x in unit_runs if x.group == reference and _probe_payload(x)]
        for run in unit_runs:
            payload = _probe_payload(run)
            if run.group == reference or payload is None:
                continue
            peers = [x for x in ref_runs if x.spec.seed == run.spec.seed]
            if not peers:
                continue
            ref = _probe_payload(peers[0]) or {}
            subject = f"{bench}/{data}: {run.where} vs {reference} (probe)"
            same_w = payload.get("initial_weights_sha256") == ref.get("initial_weights_sha256")
            same_b = payload.get("batch_sha256") == ref.get("batch_sha256")
            loss_a, loss_b = payload.get("loss"), ref.get("loss")
            details = {"same_initial_weights": same_w, "same_batch": same_b, "loss_a": loss_a, "loss_b": loss_b}
            if not (same_w and same_b):
                what = " and ".join(w for w, ok in (("initial weights", same_w), ("batch", same_b)) if not ok)
                checks.append(Check("numerics", "FAIL", subject,
                                    f"probe {what} differ from the reference's: the probes are not comparable",
                                    details))
                continue
            tol_a = (payload.get("tolerance") or {}).get("activation") or 0.0
            tol_b = (ref.get("tolerance") or {}).get("activation") or 0.0
            tol = max(tol_a, tol_b)
            if loss_a is None or loss_b is None:
                continue
            rel = abs(loss_a - loss_b) / max(abs(loss_b), 1e-12)
            details.update({"loss_rel_diff": rel, "tolerance": tol})
            verdict = "PASS" if rel <= tol else "FAIL"
            checks.append(Check("numerics", verdict, subject,
                                f"same weights and batch; loss {loss_a:.6g} vs {loss_b:.6g} (rel diff {rel:.2e}, "
                                f"tol {tol:.2g})", details))
    return checks


# --- the comparison ---------------------------------------------------------------------------


def compare_results(results: list[RunResult], *, reference: str | None = None, margin_pp: float = DEFAULT_MARGIN_PP,
                    labels: list[str] | None = None, curve_tol_pp: float = DEFAULT_CURVE_TOL_PP,
                    loss_tol_rel: float = DEFAULT_LOSS_TOL_REL, baseline: list[RunResult] | None = None,
                    baseline_labels: list[str] | None = None, gates: Sequence[Any] | None = None) -> Comparison:
    """Compare groups of results (one group per path and source) against a reference group.

    ``labels`` gives the source of each result (same length as ``results``; default: the
    result's ``environment["backend"]``). ``baseline``/``gates`` add the regression checks of
    :mod:`harness.regress`. Raises :class:`CompareError` for results that cannot be compared.
    """
    if not results:
        raise CompareError("no results to compare")
    if not (isinstance(margin_pp, (int, float)) and math.isfinite(margin_pp) and margin_pp > 0):
        raise CompareError(f"margin must be a positive number of percentage points, got {margin_pp!r}")
    for name, value in (("curve tolerance", curve_tol_pp), ("loss tolerance", loss_tol_rel)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise CompareError(f"{name} must be a positive number, got {value!r}")
    if labels is not None and len(labels) != len(results):
        raise CompareError(f"labels must name the source of every result: {len(labels)} labels for "
                           f"{len(results)} results")
    sources = list(labels) if labels is not None else [_default_source(r) for r in results]
    runs = _group_runs(results, sources)
    groups: list[str] = []
    for run in runs:
        if run.group not in groups:
            groups.append(run.group)
    ref = _resolve_reference(runs, groups, reference)
    _validate_units(runs)

    checks: list[Check] = []
    checks.extend(_check_status(runs))

    train = [x for x in runs if x.result.ok and x.spec.mode == "train"]
    probes = [x for x in runs if x.result.ok and x.spec.mode == "probe"]
    units: dict[tuple[str, str], dict[str, list[_Run]]] = {}
    for run in train:
        units.setdefault(run.unit, {}).setdefault(run.group, []).append(run)
    group_path = {x.group: x.spec.path for x in runs}
    group_source = {x.group: x.source for x in runs}

    for (bench, data), by_group in units.items():
        if ref not in by_group:
            checks.append(Check("accuracy-equivalence", "WARN", f"{bench}/{data}",
                                f"no successful runs of the reference {ref!r}: groups {sorted(by_group)} "
                                "were not compared", {"groups": sorted(by_group)}))
            continue
        r_runs = by_group[ref]
        for group in groups:
            if group == ref or group not in by_group:
                continue
            g_runs = by_group[group]
            subject = f"{bench}/{data}: {group} vs {ref}"
            for metric in ("test_accuracy", "val_accuracy"):
                check = _check_accuracy(subject, metric, g_runs, r_runs, margin_pp)
                if check is not None:
                    checks.append(check)
            for check in (_check_curves(subject, g_runs, r_runs, curve_tol_pp, loss_tol_rel),
                          _speed_check(subject, g_runs, r_runs, group_path[group].device, group_path[ref].device),
                          _memory_check(subject, g_runs, r_runs)):
                if check is not None:
                    checks.append(check)
        for group in groups:
            path = group_path[group]
            if group not in by_group or not (path.precision == "mixed" or path.xla):
                continue
            candidates = [s for s in groups if s in by_group and group_path[s].device == path.device
                          and group_path[s].precision == "fp32" and not group_path[s].xla]
            # Prefer the sibling from the same source (local vs docker), then the reference, then
            # any (one directory per path is a common layout: sources differ, siblings still exist).
            sibling = next((s for s in candidates if group_source[s] == group_source[group]),
                           ref if ref in candidates else (candidates[0] if candidates else None))
            if sibling is None:
                checks.append(Check("relative-gate", "WARN", f"{bench}/{data}: {group}",
                                    f"no fp32 sibling ({path.device}-fp32) to gate against", {}))
                continue
            checks.append(_check_relative_gate(f"{bench}/{data}: {group} vs {sibling}", by_group[group],
                                               by_group[sibling], margin_pp))
        # GPU vs CPU speed, when the reference is not already the CPU counterpart.
        for group in groups:
            path = group_path[group]
            if group not in by_group or path.device != "gpu":
                continue
            cpu = next((s for s in groups if s in by_group and s != ref and group_source[s] == group_source[group]
                        and group_path[s].device == "cpu" and group_path[s].precision == path.precision
                        and group_path[s].xla == path.xla), None)
            if cpu is not None:
                check = _speed_check(f"{bench}/{data}: {group} vs {cpu}", by_group[group], by_group[cpu], "gpu", "cpu")
                if check is not None:
                    checks.append(check)

    checks.extend(_check_determinism(runs))
    for group in groups:
        check = _check_evidence(group, [x for x in runs if x.group == group])
        if check is not None:
            checks.append(check)
    checks.extend(_check_numerics(probes, ref))

    if baseline is not None:
        from harness import regress  # regress imports Check from here

        checks.extend(regress.regression_checks(results, baseline, gates or regress.default_gates(margin_pp),
                                                labels=sources, baseline_labels=baseline_labels))
    group_info = {}
    for group in groups:
        members = [x for x in runs if x.group == group]
        group_info[group] = {"source": members[0].source, "path": members[0].spec.path.name,
                             "runs": len(members), "ok": sum(x.result.ok for x in members)}
    return Comparison(reference=ref, groups=groups, checks=checks, verdict=worst([c.verdict for c in checks]),
                      margin_pp=float(margin_pp), group_info=group_info)


# --- rendering --------------------------------------------------------------------------------


def render_table(comparison: Comparison) -> str:
    """Fixed-width terminal table: one line per check, groups on top, overall verdict at the end."""
    lines = [f"tfparity compare: reference {comparison.reference}, margin ±{comparison.margin_pp:g} pp"]
    for group in comparison.groups:
        info = comparison.group_info.get(group, {})
        runs = info.get("runs")
        extra = f" ({info.get('ok')}/{runs} runs ok, source {info.get('source')})" if runs is not None else ""
        mark = "  [reference]" if group == comparison.reference else ""
        lines.append(f"  group {group}{extra}{mark}")
    lines.append("")
    if not comparison.checks:
        lines.append("(no checks: nothing comparable)")
    else:
        name_w = max(len("CHECK"), *(len(c.name) for c in comparison.checks))
        subj_w = min(max(len("SUBJECT"), *(len(c.subject) for c in comparison.checks)), 72)
        lines.append(f"{'VERDICT':<7}  {'CHECK':<{name_w}}  {'SUBJECT':<{subj_w}}  SUMMARY")
        lines.append(f"{'-' * 7}  {'-' * name_w}  {'-' * subj_w}  {'-' * 7}")
        for c in comparison.checks:
            subject = c.subject if len(c.subject) <= subj_w else c.subject[: subj_w - 1] + "…"
            lines.append(f"{c.verdict:<7}  {c.name:<{name_w}}  {subject:<{subj_w}}  {c.summary}")
    counts = {v: sum(c.verdict == v for c in comparison.checks) for v in VERDICTS}
    lines.append("")
    lines.append(f"verdict: {comparison.verdict} ({counts['PASS']} PASS, {counts['WARN']} WARN, "
                 f"{counts['FAIL']} FAIL)")
    return "\n".join(lines) + "\n"


def render_json(comparison: Comparison) -> str:
    return json.dumps(comparison.to_dict(), indent=1, allow_nan=False) + "\n"


# --- CLI glue ---------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``tfparity compare``."""
    parser.add_argument("results", nargs="+", metavar="RESULTS",
                        help="result directories or files; each argument is one source (e.g. local vs docker)")
    parser.add_argument("--reference", default=None,
                        help="group to compare against (a group label or path name, e.g. cpu-fp32); "
                             "default: the cpu-fp32 path without XLA")
    parser.add_argument("--margin-pp", type=float, default=DEFAULT_MARGIN_PP,
                        help="equivalence margin for accuracy in percentage points (default %(default)s)")
    parser.add_argument("--curve-tol-pp", type=float, default=DEFAULT_CURVE_TOL_PP,
                        help="per-epoch accuracy curve tolerance in percentage points (default %(default)s)")
    parser.add_argument("--label", action="append", default=None, metavar="NAME",
                        help="name of each RESULTS source, in order (default: backend or directory name)")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.add_argument("--baseline", default=None, metavar="DIR",
                        help="baseline results: report regressions outside run-to-run noise")
    parser.add_argument("--gate", action="append", default=None, metavar="SPEC",
                        help="regression gate, repeatable, e.g. throughput:-5%% or test_accuracy:-0.5pp "
                             "(metrics: throughput, step_time_p50, peak_rss, compile_time in %%; "
                             "test_accuracy, val_accuracy in pp); default with --baseline: "
                             "throughput:-5%% and test_accuracy:-<margin>pp")


def source_labels(targets: list[str], loaded: list[list[RunResult]]) -> list[str]:
    """One label per argument: the backend when each argument holds one distinct backend
    (local vs docker), else the directory/file name, made unique."""
    backends = []
    for results in loaded:
        found = {_default_source(r) for r in results}
        backends.append(found.pop() if len(found) == 1 else None)
    if len(targets) == 1:
        return [backends[0] or "local"]
    if all(backends) and len(set(backends)) == len(backends):
        return [str(b) for b in backends]
    labels: list[str] = []
    for target in targets:
        path = Path(target)
        base = path.resolve().name if path.is_dir() else path.stem
        label, i = base, 2
        while label in labels:
            label, i = f"{base}#{i}", i + 1
        labels.append(label)
    return labels


_source_labels = source_labels  # the name harness.report imports


def run_cli(args: argparse.Namespace) -> int:
    """Run ``tfparity compare``: print the table (or JSON); 0 if no FAIL/regression, else 1."""
    from harness import regress

    gates = regress.parse_gates(args.gate) if args.gate else None
    if gates and not args.baseline:
        raise CompareError("--gate needs --baseline DIR (the results to compare against)")
    margin = args.margin_pp
    if not (math.isfinite(margin) and margin > 0):
        raise CompareError(f"--margin-pp must be a positive number, got {margin!r}")
    loaded = [load_results([t]) for t in args.results]
    if args.label is not None:
        if len(args.label) != len(args.results):
            raise CompareError(f"--label given {len(args.label)} time(s) for {len(args.results)} RESULTS arguments")
        labels_per_arg = list(args.label)
    else:
        labels_per_arg = source_labels(list(args.results), loaded)
    results = [r for rs in loaded for r in rs]
    labels = [label for label, rs in zip(labels_per_arg, loaded, strict=True) for _ in rs]
    if args.label is None and len(loaded) == 1:
        # One directory holding local and docker results: the backend is the source.
        labels = [_default_source(r) for r in results]
    baseline = None
    baseline_labels = None
    if args.baseline:
        baseline = load_results([args.baseline])
        baseline_labels = [_default_source(r) for r in baseline]
        if len(set(labels_per_arg)) == 1:
            baseline_labels = [labels_per_arg[0]] * len(baseline)
    comparison = compare_results(results, reference=args.reference, margin_pp=margin, labels=labels,
                                 curve_tol_pp=getattr(args, "curve_tol_pp", DEFAULT_CURVE_TOL_PP),
                                 baseline=baseline, baseline_labels=baseline_labels, gates=gates)
    out = render_json(comparison) if args.json else render_table(comparison)
    print(out, end="")
    return 1 if comparison.verdict == "FAIL" else 0
