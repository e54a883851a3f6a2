"""Speed and memory checks between two groups: one value per run, decided by :mod:`harness.analysis.shift`.

Speed: ln throughput per run (batch x 1000 / p25 of its steady step times), exact two-sided
Mann-Whitney U over runs. "faster"/"slower" needs >= 4 runs per side, p < 0.05 and a ratio beyond
the noise floor at that many runs; "no change" needs the runs a 15 % difference would have been
seen with (90 % power); anything else is INCONCLUSIVE (WARN) with the runs still needed per group.
Memory: ln peak RSS (and TensorFlow's allocator peak) per run, Welch t, >= 2 runs per side (3 with XLA);
TF's GPU allocator peak the same way when both groups ran on GPUs (there it is the memory figure:
host RSS is then mostly the CUDA context).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.analysis import per_run
from harness.analysis.checks import Check, Verdict
from harness.analysis.noise import NoiseFloors
from harness.analysis.samples import Run
from harness.analysis.shift import (
    MEMORY,
    MEMORY_XLA_N_MIN,
    SPEED,
    Outcome,
    Shift,
    ci_text,
    decide,
    more_runs_text,
    noise_text,
    p_text,
    pct,
)


def floor_for(metric: str, runs: list[Run], floors: NoiseFloors | None) -> tuple[float | None, str]:
    """The largest stored noise floor of ``metric`` over the configurations of ``runs`` (None: no floor stored)."""
    if floors is None:
        return None, "default"
    found = [floors.lookup(metric, spec) for spec in {r.spec.replace(seed=0, repeat=0) for r in runs}]
    stored = [(s, src) for s, src in found if s is not None]
    return max(stored, key=lambda item: item[0] or 0.0) if stored else (None, "default")


def _decide(metric: str, g: list[Run], r: list[Run], floors: NoiseFloors | None, **kw: Any) -> Shift:
    floor, source = floor_for(metric, g + r, floors)
    a = per_run.log_values([x.result for x in g], metric)
    b = per_run.log_values([x.result for x in r], metric)
    return decide(a, b, sigma_floor=floor, floor_source=source, **kw)


def _per_run(runs: list[Run], metric: str) -> list[dict[str, Any]]:
    return [{"run_id": x.result.run_id, metric: per_run.run_value(x.result, metric)} for x in runs]


def check_speed(
    subject: str, g: list[Run], r: list[Run], g_device: str, r_device: str, floors: NoiseFloors | None = None
) -> Check | None:
    """Throughput of group ``g`` against ``r`` (ratio g/r), over runs."""
    if not per_run.values([x.result for x in g], "throughput") or not per_run.values(
        [x.result for x in r], "throughput"
    ):
        return None
    shift = _decide("throughput", g, r, floors, rule=SPEED, worse=None)
    low, high = shift.ci_ratio
    details: dict[str, Any] = {
        "decision": shift.outcome.value,
        "throughput_ratio": shift.ratio,
        "ci_low": low,
        "ci_high": high,
        "p_value": shift.p_value,
        "changed": shift.outcome in (Outcome.HIGHER, Outcome.LOWER),
        "per_run_a": _per_run(g, "throughput"),
        "per_run_b": _per_run(r, "throughput"),
        "step_time_ms_p50_a": per_run.values([x.result for x in g], "step_time_p50"),
        "step_time_ms_p50_b": per_run.values([x.result for x in r], "step_time_p50"),
        "compile_time_s_a": [x.result.timing.compile_time_s for x in g if x.result.timing],
        "compile_time_s_b": [x.result.timing.compile_time_s for x in r if x.result.timing],
        "shift": shift.to_dict(),
    }
    numbers = f"throughput ×{shift.ratio:.3f} ({ci_text(shift)}), {p_text(shift)}, {shift.n_a} vs {shift.n_b} runs"
    names = subject.split(": ", 1)[-1].split(" vs ")
    if shift.outcome is Outcome.INCONCLUSIVE:
        more = more_runs_text(shift, names[0], names[-1])
        return Check("speed", Verdict.WARN, subject, f"INCONCLUSIVE: {numbers}: {more} ({noise_text(shift)})", details)
    if shift.outcome is Outcome.NO_CHANGE:
        summary = (
            f"{numbers}: no change beyond the noise floor; a {pct(shift.detect, signed=False)} difference "
            f"would have been seen with 90 % power ({noise_text(shift)})"
        )
        return Check("speed", Verdict.PASS, subject, summary, details)
    faster = shift.outcome is Outcome.HIGHER
    gpu_slower = (g_device == "gpu" and r_device == "cpu" and not faster) or (
        r_device == "gpu" and g_device == "cpu" and faster
    )
    if gpu_slower:
        return Check("speed", Verdict.WARN, subject, f"GPU path slower than CPU path: {numbers}", details)
    return Check("speed", Verdict.PASS, subject, f"{numbers}: {'faster' if faster else 'slower'}", details)


@dataclass(frozen=True)
class _Memory:
    """One memory figure compared over runs: its check's name, per-run metric and words."""

    check: str  # the Check's name
    metric: str  # the per-run metric (harness.analysis.per_run)
    label: str  # how the summary names it
    key: str  # details: f"{key}_ratio", f"{key}_mb_a", f"{key}_mb_b"
    more: str
    less: str


RSS = _Memory("memory", "peak_rss", "peak RSS", "peak_rss", "more memory", "less memory")
GPU_MEMORY = _Memory(
    "gpu-memory", "gpu_peak_mem", "TF GPU allocator peak", "gpu_peak", "more GPU memory", "less GPU memory"
)


def _memory_shift(
    m: _Memory, g: list[Run], r: list[Run], floors: NoiseFloors | None
) -> tuple[Shift, dict[str, Any], str] | None:
    """The decision over runs (Welch t on ln values), its details and the summary's numbers; None unless
    both groups measured the figure."""
    a, b = per_run.values([x.result for x in g], m.metric), per_run.values([x.result for x in r], m.metric)
    if not a or not b:
        return None
    n_min = MEMORY_XLA_N_MIN if any(x.spec.path.xla for x in g + r) else MEMORY.n_min
    shift = _decide(m.metric, g, r, floors, rule=MEMORY, worse=None, n_min=n_min)
    low, high = shift.ci_ratio
    details: dict[str, Any] = {
        "decision": shift.outcome.value,
        f"{m.key}_ratio": shift.ratio,
        "ci_low": low,
        "ci_high": high,
        "p_value": shift.p_value,
        "changed": shift.outcome in (Outcome.HIGHER, Outcome.LOWER),
        f"{m.key}_mb_a": a,
        f"{m.key}_mb_b": b,
        "shift": shift.to_dict(),
    }
    text = f"{m.label} ×{shift.ratio:.3f} ({ci_text(shift)}), {p_text(shift)}, {shift.n_a} vs {shift.n_b} runs"
    return shift, details, text


def _memory_check(m: _Memory, subject: str, shift: Shift, details: dict[str, Any], text: str) -> Check:
    if shift.outcome is Outcome.INCONCLUSIVE:
        names = subject.split(": ", 1)[-1].split(" vs ")
        more = more_runs_text(shift, names[0], names[-1])
        return Check(m.check, Verdict.WARN, subject, f"INCONCLUSIVE: {text}: {more} ({noise_text(shift)})", details)
    words = {Outcome.HIGHER: m.more, Outcome.LOWER: m.less}
    return Check(
        m.check,
        Verdict.PASS,
        subject,
        f"{text}: {words.get(shift.outcome, 'no change beyond the noise floor')}",
        details,
    )


def check_memory(subject: str, g: list[Run], r: list[Run], floors: NoiseFloors | None = None) -> Check | None:
    """Peak RSS (and TF allocator peak) of group ``g`` against ``r``, over runs (Welch t on ln values)."""
    found = _memory_shift(RSS, g, r, floors)
    if found is None:
        return None
    rss, details, text = found
    n_min = MEMORY_XLA_N_MIN if any(x.spec.path.xla for x in g + r) else MEMORY.n_min
    tf = _decide("tf_peak", g, r, floors, rule=MEMORY, worse=None, n_min=n_min)
    details.update(
        tf_peak_mb_a=per_run.values([x.result for x in g], "tf_peak"),
        tf_peak_mb_b=per_run.values([x.result for x in r], "tf_peak"),
        tf_peak_shift=tf.to_dict() if tf.n else None,
    )
    if tf.n and tf.ratio is not None:
        text += f"; TF allocator peak ×{tf.ratio:.3f} ({tf.outcome.value})"
    return _memory_check(RSS, subject, rss, details, text)


def check_gpu_memory(subject: str, g: list[Run], r: list[Run], floors: NoiseFloors | None = None) -> Check | None:
    """TF's GPU allocator peak (summed over the run's GPUs) of ``g`` against ``r``, decided like peak
    RSS; None unless both groups measured it (ran on GPUs)."""
    found = _memory_shift(GPU_MEMORY, g, r, floors)
    return None if found is None else _memory_check(GPU_MEMORY, subject, *found)
