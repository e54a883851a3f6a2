"""Regression gates against a baseline: ``tfparity compare RESULTS --baseline DIR --gate throughput:-5%``.

A gate names a metric and the worsening it tolerates, in the metric's unit:

=============  ====  ========  ==================================================
metric         unit  better    samples the noise test runs on
=============  ====  ========  ==================================================
throughput     %     higher    steady-state per-step throughput (raw step times)
step_time_p50  %     lower     steady-state per-step times (ms)
peak_rss       %     lower     per-run peak RSS (MB)
gpu_peak_mem   %     lower     per-run TF GPU allocator peak (MB; GPU groups only)
compile_time   %     lower     per-run first-step (trace/compile) time (s)
test_accuracy  pp    higher    per-seed test accuracy
val_accuracy   pp    higher    per-seed last-epoch validation accuracy
=============  ====  ========  ==================================================

A change counts as a regression only when it is worse than the threshold AND outside run-to-run
noise: a one-sided Mann-Whitney U test (scipy.stats) on the samples above rejects at alpha = 0.05,
and, for the speed metrics, the change exceeds the spread of per-run medians.

A GPU group's baseline must come from the same GPU models and driver (NVML / nvidia-smi facts):
otherwise the comparison is refused (CompareError), or, with ``allow_hardware_change``, made with a
WARN that says what changed. TF-free.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.analysis import stats
from harness.analysis.checks import Check, Verdict
from harness.analysis.samples import GroupKey, Run, label_runs, last_val_accuracy, steady_step_times_ms
from harness.errors import CompareError, GateError
from harness.store.results import RunResult

log = logging.getLogger(__name__)

ALPHA = 0.05


# metric -> (unit, direction in which the metric gets better)
METRICS: dict[str, tuple[str, str]] = {
    "throughput": ("%", "higher"),
    "step_time_p50": ("%", "lower"),
    "peak_rss": ("%", "lower"),
    "gpu_peak_mem": ("%", "lower"),
    "compile_time": ("%", "lower"),
    "test_accuracy": ("pp", "higher"),
    "val_accuracy": ("pp", "higher"),
}


_GATE_RE = re.compile(r"^\s*([A-Za-z0-9_]+)\s*:\s*([+-]?)\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(%|pp)\s*$")


@dataclass(frozen=True)
class Gate:
    """Tolerated worsening of one metric: ``threshold`` (>= 0) in ``unit``."""

    metric: str
    threshold: float
    unit: str

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.metric][1] == "higher"

    def __str__(self) -> str:
        sign = "-" if self.higher_is_better else "+"
        return f"{self.metric}:{sign}{self.threshold:g}{self.unit}"


def _syntax() -> str:
    return ", ".join(f"{m}:{'-' if d == 'higher' else '+'}N{u}" for m, (u, d) in METRICS.items())


def parse_gate(text: str) -> Gate:
    """Parse ``metric:[sign]number unit``, e.g. ``throughput:-5%`` or ``test_accuracy:-0.5pp``.

    The sign, when given, must point in the metric's worsening direction (throughput falls,
    step time rises); the number is the worsening tolerated before a change is a regression.
    """
    if not isinstance(text, str):
        raise GateError(f"gate must be a string like 'throughput:-5%', got {text!r}")
    m = _GATE_RE.match(text)
    if not m:
        raise GateError(f"bad gate {text!r}: expected METRIC:[+-]NUMBER UNIT, one of {_syntax()}")
    metric, sign, number, unit = m.group(1), m.group(2), m.group(3), m.group(4)
    if metric not in METRICS:
        raise GateError(f"bad gate {text!r}: unknown metric {metric!r}; valid metrics are {sorted(METRICS)}")
    want_unit, better = METRICS[metric]
    if unit != want_unit:
        raise GateError(f"bad gate {text!r}: {metric} is gated in {want_unit!r}, got {unit!r}")
    worse_sign = "-" if better == "higher" else "+"
    if sign and sign != worse_sign:
        raise GateError(
            f"bad gate {text!r}: {metric} gets worse when it {'falls' if better == 'higher' else 'rises'}; "
            f"write {metric}:{worse_sign}{number}{unit}"
        )
    threshold = float(number)
    if not math.isfinite(threshold):
        raise GateError(f"bad gate {text!r}: threshold must be finite")
    return Gate(metric, threshold, unit)


def check_unique(gates: Sequence[Gate]) -> list[Gate]:
    """The gates, refusing a metric gated twice."""
    seen: set[str] = set()
    for gate in gates:
        if gate.metric in seen:
            raise GateError(f"metric {gate.metric!r} is gated more than once in {[str(g) for g in gates]}")
        seen.add(gate.metric)
    return list(gates)


def parse_gates(texts: Sequence[str]) -> list[Gate]:
    """Parse several gates; a metric gated twice is an error."""
    return check_unique([parse_gate(t) for t in texts])


def default_gates(margin_pp: float = 1.0) -> list[Gate]:
    """Gates used with ``--baseline`` and no ``--gate``: throughput -5 %, test accuracy -margin."""
    return [Gate("throughput", 5.0, "%"), Gate("test_accuracy", float(margin_pp), "pp")]


@dataclass(frozen=True)
class Change:
    """The change of one gated metric of one group, current vs baseline."""

    gate: str
    group: str
    baseline: float | None  # median (speed/memory) or mean (accuracy), in the metric's natural unit
    current: float | None
    change: float | None  # in the gate's unit (% of baseline, or pp)
    p_value: float | None  # one-sided Mann-Whitney U, in the worsening direction
    noise_frac: float
    n_baseline: int
    n_current: int
    beyond_threshold: bool
    outside_noise: bool

    @property
    def regression(self) -> bool:
        return self.beyond_threshold and self.outside_noise


def _samples(runs: list[RunResult], metric: str) -> tuple[list[float], list[float]]:
    """(samples for the test, per-run medians for the noise estimate)."""
    if metric in ("throughput", "step_time_p50"):
        samples: list[float] = []
        medians: list[float] = []
        for r in runs:
            steps = steady_step_times_ms(r)
            if metric == "throughput":
                batch = r.run_spec.batch_size
                steps = [1000.0 * batch / s for s in steps]
            samples.extend(steps)
            med = stats.median(steps)
            if med is not None:
                medians.append(med)
        return samples, medians
    if metric == "peak_rss":
        values = [r.memory.peak_rss_mb for r in runs if r.memory is not None]
        return values, []
    if metric == "gpu_peak_mem":
        return [m for r in runs if r.memory is not None and (m := r.memory.gpu_peak_mb) is not None], []
    if metric == "compile_time":
        values = [r.timing.compile_time_s for r in runs if r.timing is not None]
        return values, []
    per_seed: dict[int, list[float]] = {}
    for r in runs:
        value = r.test_accuracy if metric == "test_accuracy" else last_val_accuracy(r)
        if value is not None and math.isfinite(value):
            per_seed.setdefault(r.run_spec.seed, []).append(100.0 * value)
    return [sum(v) / len(v) for v in per_seed.values()], []


def measure_change(gate: Gate, group: str, current: list[RunResult], baseline: list[RunResult]) -> Change:
    """Measure one gated metric's change and decide whether it is beyond threshold and outside noise."""
    cur, cur_med = _samples(current, gate.metric)
    base, base_med = _samples(baseline, gate.metric)
    noise = max(stats.run_spread(cur_med), stats.run_spread(base_med))
    if not cur or not base:
        return Change(str(gate), group, None, None, None, None, noise, len(base), len(cur), False, False)
    if gate.unit == "pp":
        b_val, c_val = sum(base) / len(base), sum(cur) / len(cur)
        change: float | None = c_val - b_val
        worse = None if change is None else -change if gate.higher_is_better else change
        noise_ok = True
    else:
        b_med, c_med = stats.median(base), stats.median(cur)
        b_val, c_val = b_med or 0.0, c_med or 0.0
        change = 100.0 * (c_val / b_val - 1.0) if b_med and c_med is not None else None
        worse = None if change is None else (-change if gate.higher_is_better else change)
        noise_ok = change is not None and abs(change) / 100.0 > noise
    alternative = "less" if gate.higher_is_better else "greater"
    p = stats.mannwhitney_one_sided(cur, base, alternative)
    beyond = worse is not None and worse > gate.threshold
    outside = p is not None and p < ALPHA and noise_ok
    return Change(str(gate), group, b_val, c_val, change, p, noise, len(base), len(cur), beyond, outside)


def regression_checks(
    current: list[Run],
    baseline: list[RunResult],
    gates: Sequence[Gate],
    *,
    baseline_sources: Sequence[str] | None = None,
    allow_hardware_change: bool = False,
) -> list[Check]:
    """One ``regression`` check per gate and group present in both sets (FAIL = regression).

    Groups are :class:`~harness.analysis.samples.GroupKey`s per benchmark and dataset, exactly as
    compare groups them; a baseline whose dataset fingerprint or hyperparameters differ from the
    current results is refused (CompareError), and so is one on other GPU hardware unless
    ``allow_hardware_change`` (then a ``hardware`` WARN says what changed).
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
        gpu = cur_runs[0].spec.path.device == "gpu"
        hardware = hardware_check(subject, cur_results, base_results, allow_hardware_change) if gpu else None
        checks += [hardware] if hardware is not None else []
        for gate in gates:
            if gate.metric == "gpu_peak_mem" and not gpu:
                continue  # a CPU group has no GPU allocator to gate
            checks.append(_to_check(subject, gate, measure_change(gate, label, cur_results, base_results)))
    return checks


Hardware = tuple[tuple[str, ...], str | None]  # (GPU models, driver), as Telemetry.hardware


def _describe(hardware: set[Hardware]) -> str:
    return "; ".join(f"{' + '.join(models)} (driver {driver or 'unknown'})" for models, driver in sorted(hardware))


def hardware_check(subject: str, cur: list[RunResult], base: list[RunResult], allow_change: bool) -> Check | None:
    """None when current and baseline GPU runs ran on the same GPU models and driver; a WARN when either
    side did not record them or the change is allowed; CompareError (one line) for a change not allowed."""
    now = {h for r in cur if r.telemetry is not None and (h := r.telemetry.hardware) is not None}
    then = {h for r in base if r.telemetry is not None and (h := r.telemetry.hardware) is not None}
    details: dict[str, Any] = {
        "current": [list(models) + [driver] for models, driver in sorted(now)],
        "baseline": [list(models) + [driver] for models, driver in sorted(then)],
        "allowed": allow_change,
    }
    if not now or not then:
        side = "the current runs" if not now else "the baseline"
        why = f"GPU models and driver not recorded for {side}: cannot tell whether the hardware changed"
        return Check("hardware", Verdict.WARN, subject, why, details)
    if now == then:
        return None
    change = f"GPU hardware differs from the baseline's: {_describe(then)} (baseline) vs {_describe(now)}"
    if not allow_change:
        raise CompareError(
            f"{subject}: {change}; speed and memory baselines do not carry across GPUs or drivers "
            "(--allow-hardware-change compares anyway)"
        )
    return Check("hardware", Verdict.WARN, subject, f"{change} (allowed by --allow-hardware-change)", details)


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


def _to_check(subject: str, gate: Gate, ch: Change) -> Check:
    details: dict[str, Any] = {
        "gate": str(gate),
        "metric": gate.metric,
        "unit": gate.unit,
        "threshold": gate.threshold,
        "baseline": ch.baseline,
        "current": ch.current,
        "change": ch.change,
        "mannwhitney_p": ch.p_value,
        "run_noise_frac": ch.noise_frac,
        "n_baseline": ch.n_baseline,
        "n_current": ch.n_current,
        "beyond_threshold": ch.beyond_threshold,
        "outside_noise": ch.outside_noise,
        "regression": ch.regression,
    }
    subject = f"{subject} ({gate})"
    if ch.change is None:
        return Check("regression", Verdict.WARN, subject, f"no {gate.metric} samples in current or baseline", details)
    unit = " pp" if gate.unit == "pp" else "%"
    p = "n/a" if ch.p_value is None else ("<0.001" if ch.p_value < 0.001 else f"{ch.p_value:.3f}")
    numbers = (
        f"{gate.metric} {ch.change:+.2f}{unit} ({_v(ch.baseline)} → {_v(ch.current)}), one-sided U p={p}, "
        f"n={ch.n_baseline}→{ch.n_current}"
    )
    if ch.regression:
        return Check("regression", Verdict.FAIL, subject, f"REGRESSION: {numbers}, worse than {gate}", details)
    if ch.beyond_threshold:
        why = (
            "inside run-to-run noise"
            if ch.p_value is None or ch.p_value >= ALPHA
            else f"inside run-to-run noise ({ch.noise_frac:.1%} spread of run medians)"
        )
        return Check(
            "regression", Verdict.PASS, subject, f"{numbers}: beyond the gate but {why}, not a regression", details
        )
    return Check("regression", Verdict.PASS, subject, f"{numbers}: within gate {gate}", details)


def _v(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
