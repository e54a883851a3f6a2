"""Speed and memory checks between groups (ratios with intervals; changes inside noise are not changes).

Memory: host peak RSS for every path, and TF's GPU allocator peak when both groups ran on GPUs.
"""

from __future__ import annotations

from harness.analysis import stats
from harness.analysis.checks import Check, Verdict, fmt, fmt_p
from harness.analysis.samples import Run, steady_step_times_ms


def check_speed(subject: str, g: list[Run], r: list[Run], g_device: str, r_device: str) -> Check | None:
    steps_g = [s for x in g for s in steady_step_times_ms(x.result)]
    steps_r = [s for x in r for s in steady_step_times_ms(x.result)]
    if not steps_g or not steps_r:
        return None
    # Run-to-run noise: the spread of per-run medians within each group (repeats or seeds).
    med_g = [stats.median(steady_step_times_ms(x.result)) for x in g]
    med_r = [stats.median(steady_step_times_ms(x.result)) for x in r]
    noise = max(stats.run_spread([m for m in med_g if m]), stats.run_spread([m for m in med_r if m]))
    # Throughput ratio a/b = median step time b / median step time a.
    est = stats.median_ratio(steps_r, steps_g, noise_frac=noise)
    compile_g = [x.result.timing.compile_time_s for x in g if x.result.timing]
    compile_r = [x.result.timing.compile_time_s for x in r if x.result.timing]
    details = {
        "throughput_ratio": est.ratio,
        "ci_low": est.ci_low,
        "ci_high": est.ci_high,
        "mannwhitney_p": est.mannwhitney_p,
        "run_noise_frac": noise,
        "changed": est.changed,
        "step_time_ms_p50_a": est.median_b,
        "step_time_ms_p50_b": est.median_a,
        "n_steps_a": len(steps_g),
        "n_steps_b": len(steps_r),
        "compile_time_s_a": compile_g,
        "compile_time_s_b": compile_r,
    }
    ratio = f"throughput ×{fmt(est.ratio, '.3f')} (95% CI {fmt(est.ci_low, '.3f')}..{fmt(est.ci_high, '.3f')})"
    p50 = f"p50 {fmt(est.median_b, '.3g')} vs {fmt(est.median_a, '.3g')} ms/step"
    if not est.changed:
        return Check(
            "speed",
            Verdict.PASS,
            subject,
            f"{ratio}, U {fmt_p(est.mannwhitney_p)}: no change outside run-to-run noise (noise {noise:.1%}); {p50}",
            details,
        )
    faster = est.ratio is not None and est.ratio > 1
    word = "faster" if faster else "slower"
    if g_device == "gpu" and r_device == "cpu" and not faster:
        return Check(
            "speed",
            Verdict.WARN,
            subject,
            f"GPU path slower than CPU path: {ratio}, U {fmt_p(est.mannwhitney_p)}; {p50}",
            details,
        )
    if r_device == "gpu" and g_device == "cpu" and faster:
        return Check(
            "speed",
            Verdict.WARN,
            subject,
            f"GPU path slower than CPU path: CPU {ratio}, U {fmt_p(est.mannwhitney_p)}; {p50}",
            details,
        )
    return Check("speed", Verdict.PASS, subject, f"{ratio}, U {fmt_p(est.mannwhitney_p)}: {word}; {p50}", details)


def check_memory(subject: str, g: list[Run], r: list[Run]) -> Check | None:
    mg = [x.result.memory.peak_rss_mb for x in g if x.result.memory is not None]
    mr = [x.result.memory.peak_rss_mb for x in r if x.result.memory is not None]
    if not mg or not mr:
        return None
    # A bootstrap over a handful of per-run values is not a CI worth printing: need 5 runs each.
    est = stats.median_ratio(mg, mr, bootstrap=min(len(mg), len(mr)) >= 5)
    tf_g = [x.result.memory.tf_peak_mb for x in g if x.result.memory and x.result.memory.tf_peak_mb is not None]
    tf_r = [x.result.memory.tf_peak_mb for x in r if x.result.memory and x.result.memory.tf_peak_mb is not None]
    details = {
        "peak_rss_ratio": est.ratio,
        "ci_low": est.ci_low,
        "ci_high": est.ci_high,
        "mannwhitney_p": est.mannwhitney_p,
        "changed": est.changed,
        "peak_rss_mb_a": mg,
        "peak_rss_mb_b": mr,
        "tf_peak_mb_a": tf_g,
        "tf_peak_mb_b": tf_r,
    }
    ci = (
        f" (95% CI {fmt(est.ci_low, '.3f')}..{fmt(est.ci_high, '.3f')})"
        if est.ci_low is not None
        else f" (no CI: {len(mg)} vs {len(mr)} runs)"
    )
    if est.changed:
        change = "changed"
    elif min(len(mg), len(mr)) < 4:  # a U test on fewer runs cannot reach p < 0.05
        change = "too few runs to tell a change from noise (U test needs ≥4 each)"
    else:
        change = "no change outside run-to-run noise"
    return Check(
        "memory",
        Verdict.PASS,
        subject,
        f"peak RSS ×{fmt(est.ratio, '.3f')}{ci}, median {fmt(est.median_a, '.0f')} vs "
        f"{fmt(est.median_b, '.0f')} MB: {change}",
        details,
    )


def check_gpu_memory(subject: str, g: list[Run], r: list[Run]) -> Check | None:
    """TF's GPU allocator peak (summed over the run's GPUs), compared like peak RSS; None unless both
    groups ran on GPUs. On a GPU run this is the memory figure: host RSS is then mostly the CUDA context."""
    mg = [m for x in g if x.result.memory is not None and (m := x.result.memory.gpu_peak_mb) is not None]
    mr = [m for x in r if x.result.memory is not None and (m := x.result.memory.gpu_peak_mb) is not None]
    if not mg or not mr:
        return None
    est = stats.median_ratio(mg, mr, bootstrap=min(len(mg), len(mr)) >= 5)
    details = {
        "gpu_peak_ratio": est.ratio,
        "ci_low": est.ci_low,
        "ci_high": est.ci_high,
        "mannwhitney_p": est.mannwhitney_p,
        "changed": est.changed,
        "gpu_peak_mb_a": mg,
        "gpu_peak_mb_b": mr,
    }
    ci = (
        f" (95% CI {fmt(est.ci_low, '.3f')}..{fmt(est.ci_high, '.3f')})"
        if est.ci_low is not None
        else f" (no CI: {len(mg)} vs {len(mr)} runs)"
    )
    change = "changed" if est.changed else "no change outside run-to-run noise"
    if not est.changed and min(len(mg), len(mr)) < 4:  # a U test on fewer runs cannot reach p < 0.05
        change = "too few runs to tell a change from noise (U test needs ≥4 each)"
    return Check(
        "gpu-memory",
        Verdict.PASS,
        subject,
        f"TF GPU allocator peak ×{fmt(est.ratio, '.3f')}{ci}, median {fmt(est.median_a, '.0f')} vs "
        f"{fmt(est.median_b, '.0f')} MB: {change}",
        details,
    )
