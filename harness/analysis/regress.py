"""Regression gates against a baseline: ``tfparity compare RESULTS --baseline DIR --gate throughput:-5%``.

A gate names a metric and the worsening it tolerates, in the metric's unit:

=============  ====  ========  ==========================================================================
metric         unit  better    one value per run (or seed), decided by
=============  ====  ========  ==========================================================================
throughput     %     higher    ln(batch x 1000 / p25 steady step), exact one-sided Mann-Whitney U
step_time_p50  %     lower     ln(median steady step), exact one-sided Mann-Whitney U
peak_rss       %     lower     ln(peak RSS), one-sided Welch t (n_min 2, 3 with XLA)
gpu_peak_mem   %     lower     ln(TF GPU allocator peak, summed over GPUs), as peak_rss (GPU groups only)
compile_time   %     lower     ln(first-step time), exact one-sided Mann-Whitney U
test_accuracy  pp    higher    per-seed test accuracy, one-sided Mann-Whitney U
val_accuracy   pp    higher    per-seed last-epoch validation accuracy, one-sided Mann-Whitney U
=============  ====  ========  ==========================================================================

The %-metrics follow :mod:`harness.analysis.shift`: REGRESSION (FAIL) needs >= n_min runs per side,
p < 0.05 and a worsening beyond max(gate, noise floor at n); "no regression" (PASS) needs the runs
that detect a 15 % change with 90 % power at sigma = max(observed, stored noise floor); anything
else is INCONCLUSIVE (WARN) with the runs still needed per side. Steps are never pooled. The
accuracy gates keep their per-seed rule: beyond the threshold and p < 0.05.

A GPU group's baseline must come from the same GPU models and driver (NVML / nvidia-smi facts):
otherwise the comparison is refused (CompareError), or, with ``allow_hardware_change``, made with a
WARN that says what changed. TF-free.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.analysis import per_run, stats
from harness.analysis.checks import Check, Verdict
from harness.analysis.gates import Gate
from harness.analysis.hardware import hardware_check
from harness.analysis.noise import NoiseFloors
from harness.analysis.samples import GroupKey, Run, label_runs, last_val_accuracy
from harness.analysis.shift import (
    MEMORY,
    MEMORY_XLA_N_MIN,
    SPEED,
    Outcome,
    Shift,
    decide,
    more_runs_text,
    noise_text,
    p_text,
    pct,
)
from harness.errors import CompareError
from harness.store.results import RunResult

log = logging.getLogger(__name__)

ALPHA = 0.05


@dataclass(frozen=True)
class Change:
    """The change of one gated metric of one group, current vs baseline."""

    gate: str
    group: str
    baseline: float | None  # per-run median (speed/memory, natural unit) or mean over seeds (accuracy)
    current: float | None
    change: float | None  # in the gate's unit (% of baseline, or pp)
    p_value: float | None  # one-sided, in the worsening direction
    n_baseline: int
    n_current: int
    beyond_threshold: bool
    outside_noise: bool
    decision: Shift | None = None  # the run-level decision of a %-metric (None for accuracy)

    @property
    def regression(self) -> bool:
        if self.decision is not None:
            return self.decision.outcome is Outcome.REGRESSION
        return self.beyond_threshold and self.outside_noise

    @property
    def inconclusive(self) -> bool:
        return self.decision is not None and self.decision.outcome is Outcome.INCONCLUSIVE


def threshold_ln(gate: Gate) -> float:
    """The gate as a ln worsening: throughput -5 % -> -ln(0.95); step time +5 % -> ln(1.05)."""
    if gate.higher_is_better:
        return -math.log(max(1.0 - gate.threshold / 100.0, 1e-9))
    return math.log1p(gate.threshold / 100.0)


def _accuracy(runs: list[RunResult], metric: str) -> list[float]:
    per_seed: dict[int, list[float]] = {}
    for r in runs:
        value = r.test_accuracy if metric == "test_accuracy" else last_val_accuracy(r)
        if value is not None and math.isfinite(value):
            per_seed.setdefault(r.run_spec.seed, []).append(100.0 * value)
    return [sum(v) / len(v) for v in per_seed.values()]


def measure_change(
    gate: Gate, group: str, current: list[RunResult], baseline: list[RunResult], floors: NoiseFloors | None = None
) -> Change:
    """Measure one gated metric's change and decide (run-level rule for %-metrics, per-seed for accuracy)."""
    if gate.unit == "pp":
        return _accuracy_change(gate, group, current, baseline)
    floor, source = None, "default"
    if floors is not None:
        found = [floors.lookup(gate.metric, r.run_spec) for r in (current[:1] + baseline[:1])]
        stored = [(s, src) for s, src in found if s is not None]
        floor, source = max(stored, key=lambda item: item[0] or 0.0) if stored else (None, "default")
    xla = any(r.run_spec.path.xla for r in current + baseline)
    rule = MEMORY if gate.metric in ("peak_rss", "gpu_peak_mem") else SPEED
    cur, base = per_run.log_values(current, gate.metric), per_run.log_values(baseline, gate.metric)
    shift = decide(
        cur, base, rule=rule, worse="lower" if gate.higher_is_better else "higher", threshold=threshold_ln(gate),
        sigma_floor=floor, floor_source=source, n_min=MEMORY_XLA_N_MIN if rule is MEMORY and xla else None,
    )  # fmt: skip
    if shift.estimate is None:
        return Change(str(gate), group, None, None, None, None, len(base), len(cur), False, False, shift)
    worsening = -shift.estimate if gate.higher_is_better else shift.estimate
    # "outside noise" is the statistical half of the decision (beyond the noise floor at n, significant);
    # "beyond threshold" the practical half; REGRESSION needs both (and n >= n_min: see shift.decide).
    res = shift.resolution
    return Change(
        gate=str(gate), group=group, baseline=math.exp(_median(base)), current=math.exp(_median(cur)),
        change=100.0 * math.expm1(shift.estimate), p_value=shift.p_value, n_baseline=len(base), n_current=len(cur),
        beyond_threshold=worsening > shift.threshold,
        outside_noise=res is not None and worsening > res and (shift.p_value or 1.0) < ALPHA, decision=shift,
    )  # fmt: skip


def _accuracy_change(gate: Gate, group: str, current: list[RunResult], baseline: list[RunResult]) -> Change:
    cur, base = _accuracy(current, gate.metric), _accuracy(baseline, gate.metric)
    if not cur or not base:
        return Change(str(gate), group, None, None, None, None, len(base), len(cur), False, False)
    b_val, c_val = sum(base) / len(base), sum(cur) / len(cur)
    change = c_val - b_val
    worse = -change if gate.higher_is_better else change
    p = stats.mannwhitney_p(cur, base, "less" if gate.higher_is_better else "greater")
    beyond = worse > gate.threshold
    outside = p is not None and p < ALPHA
    return Change(str(gate), group, b_val, c_val, change, p, len(base), len(cur), beyond, outside)


def regression_checks(
    current: list[Run],
    baseline: list[RunResult],
    gates: Sequence[Gate],
    *,
    baseline_sources: Sequence[str] | None = None,
    allow_hardware_change: bool = False,
    floors: NoiseFloors | None = None,
) -> list[Check]:
    """One ``regression`` check per gate and group present in both sets (FAIL = regression).

    Groups are :class:`~harness.analysis.samples.GroupKey`s per benchmark and dataset, exactly as
    compare groups them; a baseline whose dataset fingerprint or hyperparameters differ from the
    current results is refused (CompareError), and so is one on other GPU hardware unless
    ``allow_hardware_change`` (then a ``hardware`` WARN says what changed). ``floors``: stored A/A
    noise floors (noise.json).
    """
    if not baseline:
        raise CompareError("the baseline holds no results")
    cur_groups = _train_groups(current)
    base_groups = _train_groups(label_runs(baseline, baseline_sources))
    checks: list[Check] = []
    for (key, bench, data), cur_runs in cur_groups.items():
        label = cur_runs[0].group
        subject = f"{bench}/{data}: {label} vs baseline"
        base_runs = _baseline_for(key, bench, data, base_groups)
        if not base_runs:
            checks.append(Check("regression", Verdict.WARN, subject, "no successful baseline runs for this group", {}))
            continue
        cur_results = [x.result for x in cur_runs]
        base_results = [x.result for x in base_runs]
        _refuse_mismatch(subject, cur_results, base_results)
        ids = {
            "group": label,
            "benchmark": bench,
            "dataset": data,
            "source": key.source,
            "current_run_ids": [r.run_id for r in cur_results],
            "baseline_run_ids": [r.run_id for r in base_results],
        }
        gpu = cur_runs[0].spec.path.device == "gpu"
        hardware = hardware_check(subject, cur_results, base_results, allow_hardware_change) if gpu else None
        checks += [hardware] if hardware is not None else []
        for gate in gates:
            if gate.metric == "gpu_peak_mem" and not gpu:
                continue  # a CPU group has no GPU allocator to gate
            change = measure_change(gate, label, cur_results, base_results, floors)
            checks.append(_to_check(subject, gate, change, ids))
    return checks


GroupId = tuple[GroupKey, str, str]  # (group, benchmark, dataset)


def _train_groups(runs: list[Run]) -> dict[GroupId, list[Run]]:
    groups: dict[GroupId, list[Run]] = {}
    for run in runs:
        if run.result.ok and run.spec.mode == "train":
            groups.setdefault((run.key, *run.unit), []).append(run)
    return groups


def _baseline_for(key: GroupKey, bench: str, data: str, base_groups: dict[GroupId, list[Run]]) -> list[Run] | None:
    """The baseline group of the same source, path and execution; else the one of the same path and execution.

    Sources are named per invocation (directory names, backends); when the baseline labels its
    sources differently, the single baseline group of this path and execution is the partner.
    """
    found = base_groups.get((key, bench, data))
    if found:
        return found
    same = [k for k in base_groups if (k[0].path, k[0].execution, k[1], k[2]) == (key.path, key.execution, bench, data)]
    return base_groups[same[0]] if len(same) == 1 else None


def _refuse_mismatch(subject: str, cur: list[RunResult], base: list[RunResult]) -> None:
    c, b = cur[0], base[0]
    if c.dataset is not None and b.dataset is not None and c.dataset.sha256 != b.dataset.sha256:
        raise CompareError(
            f"{subject}: dataset fingerprint {c.dataset.sha256[:12]} differs from the baseline's "
            f"{b.dataset.sha256[:12]}; a regression check needs the same data"
        )
    hc, hb = c.run_spec.hyperparameters, b.run_spec.hyperparameters
    if hc != hb:
        diff = sorted(k for k in set(hc) | set(hb) if hc.get(k) != hb.get(k))
        what = ", ".join(f"{k} {hb.get(k)!r} (baseline) vs {hc.get(k)!r}" for k in diff)
        raise CompareError(f"{subject}: hyperparameters differ from the baseline: {what}")


def _to_check(subject: str, gate: Gate, ch: Change, ids: dict[str, Any]) -> Check:
    details: dict[str, Any] = {
        "gate": str(gate),
        "metric": gate.metric,
        "unit": gate.unit,
        "threshold": gate.threshold,
        "baseline": ch.baseline,
        "current": ch.current,
        "change": ch.change,
        "p_value": ch.p_value,
        "n_baseline": ch.n_baseline,
        "n_current": ch.n_current,
        "beyond_threshold": ch.beyond_threshold,
        "outside_noise": ch.outside_noise,
        "regression": ch.regression,
        "inconclusive": ch.inconclusive,
        **ids,
    }
    subject = f"{subject} ({gate})"
    if ch.change is None:
        return Check("regression", Verdict.WARN, subject, f"no {gate.metric} samples in current or baseline", details)
    if ch.decision is not None:
        return _run_level_check(subject, gate, ch, ch.decision, details)
    details["mannwhitney_p"] = ch.p_value
    p = "n/a" if ch.p_value is None else ("<0.001" if ch.p_value < 0.001 else f"{ch.p_value:.3f}")
    numbers = (
        f"{gate.metric} {ch.change:+.2f} pp ({_v(ch.baseline)} → {_v(ch.current)}), one-sided U p={p}, "
        f"n={ch.n_baseline}→{ch.n_current} seeds"
    )
    if ch.regression:
        return Check("regression", Verdict.FAIL, subject, f"REGRESSION: {numbers}, worse than {gate}", details)
    if ch.beyond_threshold:
        return Check("regression", Verdict.PASS, subject, f"{numbers}: beyond the gate but inside seed noise", details)
    return Check("regression", Verdict.PASS, subject, f"{numbers}: within gate {gate}", details)


def _run_level_check(subject: str, gate: Gate, ch: Change, shift: Shift, details: dict[str, Any]) -> Check:
    """The words for a %-metric's run-level decision (the decision itself is ``shift``)."""
    details.update(
        decision=shift.outcome.value,
        suspected=shift.suspected,  # what --confirm re-runs (a regression, or beyond the gate unproven)
        more_runs_current=shift.more_a,
        more_runs_baseline=shift.more_b,
        shift=shift.to_dict(),
    )
    if shift.test == "mann-whitney":
        details["mannwhitney_p"] = shift.p_value
    low, high = shift.ci_ratio
    ci = "no 95 % CI with this few runs" if low is None or high is None else f"95 % CI {pct_of(low)}..{pct_of(high)}"
    numbers = (
        f"{gate.metric} {ch.change:+.2f}% ({_v(ch.baseline)} → {_v(ch.current)}; {ci}), one-sided {p_text(shift)}, "
        f"{ch.n_baseline}→{ch.n_current} runs"
    )
    if shift.outcome is Outcome.REGRESSION:
        hurdle = pct(shift.hurdle, signed=False)
        return Check("regression", Verdict.FAIL, subject, f"REGRESSION: {numbers}, worse than {hurdle} "
                     f"(max of gate {gate.threshold:g} % and the noise floor at n={shift.n})", details)  # fmt: skip
    if shift.outcome is Outcome.NO_REGRESSION:
        summary = (
            f"no regression beyond {gate}: {numbers}; a {pct(shift.detect, signed=False)} worsening would have "
            f"been detected with 90 % power ({noise_text(shift)})"
        )
        return Check("regression", Verdict.PASS, subject, summary, details)
    more = more_runs_text(shift, "current", "baseline")
    if shift.suspected:  # powered, yet the observed change is beyond the gate: no "no regression" from it
        more = f"worse than {pct(shift.hurdle, signed=False)} but not significant; {more} (or --confirm)"
    return Check("regression", Verdict.WARN, subject, f"INCONCLUSIVE: {numbers}: {more} ({noise_text(shift)})", details)


def _median(values: Sequence[float]) -> float:
    found = stats.median(values)
    if found is None:  # callers pass the ln values of a decided shift: never empty
        raise ValueError("median of no values")
    return found


def pct_of(ratio: float) -> str:
    return f"{100 * (ratio - 1):+.1f} %"


def _v(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
