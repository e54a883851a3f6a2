"""The figures of ``benchmarks/perf.py``: statistics over the runs, the goals, the Markdown table.

Pure functions of the run records (dicts) and the probe / paired payloads: no TensorFlow, no files.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Callable
from typing import Any

from harness.spec.benchmarks.mlp import HIDDEN_UNITS, INPUT_DIM, NUM_CLASSES

CONFIGS = ("seed", "harness", "fast", "bare")
LABELS = {
    "seed": "(a) seed way",
    "harness": "(b) harness default",
    "fast": "(c) fast preset",
    "bare": "(d) bare model.fit",
}
GOAL_SPEEDUP = 4.0
GOAL_ACC_DIFF_PP = 0.5
GOAL_OVERHEAD = 0.02
GOAL_INPUT_RATIO = 10.0
GOAL_MEMORY_RATIO = 1.10
GOAL_SPEED = "fast_over_seed >= 4x"
GOAL_ACCURACY = "|mean test-accuracy diff (c - a)| <= 0.5 pp"
GOAL_OVERHEAD_NAME = "harness overhead <= 2 %"
GOAL_PAIRED = "harness overhead (paired in-process) <= 2 %"
GOAL_MEMORY = "fast peak RSS <= 1.10 x seed"
INPUT_FEEDS = {"tfdata": "harness", "numpy_adapter": "seed", "chunk_gather": "fast"}

Runs = list[dict[str, Any]]


# --- statistics ----------------------------------------------------------------------------------


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(values) if values else None


def flops_per_training_sample() -> dict[str, float]:
    """Matmul FLOPs of one training sample of the seed MLP (BN, activations, Adam are < 2 %)."""
    dims = [INPUT_DIM, *HIDDEN_UNITS, NUM_CLASSES]
    forward = sum(2.0 * a * b for a, b in zip(dims[:-1], dims[1:], strict=True))
    first = 2.0 * dims[0] * dims[1]
    # Convention: training = 3x forward (forward, input gradients, weight gradients). The first
    # layer needs no input gradient, so the exact count is 3x forward minus that layer's matmul.
    return {"forward": forward, "training_3x_forward": 3 * forward, "training_exact": 3 * forward - first}


def per_round(runs: Runs, fn: Callable[[dict[str, dict[str, Any]]], float | None]) -> list[float]:
    """``fn`` of every complete round (all four configurations ran), skipping None values."""
    out = []
    for rnd in sorted({r["round"] for r in runs}):
        got = {r["config"]: r for r in runs if r["round"] == rnd}
        if all(c in got for c in CONFIGS):
            value = fn(got)
            if value is not None:
                out.append(value)
    return out


def accuracy_summary(runs: Runs) -> dict[str, Any]:
    """Test accuracy (c) - (a) per seed (a repeated seed retrains identically, so its first run counts)."""
    acc: dict[int, dict[str, float]] = {}
    for r in runs:
        if r["config"] in ("seed", "fast") and r["test_accuracy"] is not None:
            acc.setdefault(r["seed"], {}).setdefault(r["config"], r["test_accuracy"])
    seeds = sorted(s for s, v in acc.items() if "seed" in v and "fast" in v)
    diffs_pp = [100 * (acc[s]["fast"] - acc[s]["seed"]) for s in seeds]
    seed_accs = [acc[s]["seed"] for s in seeds]
    n_test = _n_test(runs)
    mean_acc = statistics.mean(seed_accs) if seed_accs else None
    return {
        "seeds": seeds,
        "seed_way": seed_accs,
        "fast": [acc[s]["fast"] for s in seeds],
        "diff_pp": diffs_pp,
        "mean_diff_pp": statistics.mean(diffs_pp) if diffs_pp else None,
        "seed_to_seed_sd_pp": 100 * statistics.stdev(seed_accs) if len(seed_accs) >= 2 else None,
        "n_test": n_test,
        "binomial_se_pp": (100 * math.sqrt(mean_acc * (1 - mean_acc) / n_test) if seed_accs and n_test else None),
    }


def summarize(
    runs: Runs, probe: dict[str, Any] | None, args: argparse.Namespace | None, paired: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Every derived figure of one invocation, and the goals (``args`` is kept for the caller's
    signature; the figures depend on the runs, the probe and the paired check only)."""
    by = {c: [r for r in runs if r["config"] == c] for c in CONFIGS}
    med = {c: median([r["steady_samples_per_s"] for r in by[c]]) for c in CONFIGS}
    speedup = per_round(runs, lambda g: g["fast"]["steady_samples_per_s"] / g["seed"]["steady_samples_per_s"])
    overhead = per_round(
        runs,
        lambda g: (
            (g["bare"]["steady_samples_per_s"] - g["harness"]["steady_samples_per_s"])
            / g["bare"]["steady_samples_per_s"]
        ),
    )
    overhead_epochs = per_round(runs, lambda g: _epoch_overhead(g["harness"], g["bare"]))
    e2e = per_round(runs, lambda g: g["seed"]["train_time_s"] / g["fast"]["train_time_s"])
    memory = per_round(runs, lambda g: g["fast"]["peak_rss_mb"] / g["seed"]["peak_rss_mb"])
    flops = flops_per_training_sample()
    summary: dict[str, Any] = {
        "median_steady_samples_per_s": med,
        "fast_over_seed": {
            "per_round": speedup,
            "median": median(speedup),
            "of_medians": _ratio(med["fast"], med["seed"]),
        },
        "fast_over_seed_end_to_end_fit": {
            "per_round": e2e,
            "median": median(e2e),
            "note": "fit() wall time incl. compile and validation",
        },
        "harness_overhead": {
            "per_round": overhead,
            "median": median(overhead),
            "of_medians": _overhead(med["harness"], med["bare"]),
            "definition": "(d - b) / d of steady training samples/s",
        },
        "harness_overhead_whole_epochs": {
            "per_round": overhead_epochs,
            "median": median(overhead_epochs),
            "definition": "(T_b - T_d) / T_b, epochs 2..N incl. validation",
        },
        "accuracy": accuracy_summary(runs),
        "memory": {
            "seed_peak_rss_mb": median([r["peak_rss_mb"] for r in by["seed"]]),
            "fast_peak_rss_mb": median([r["peak_rss_mb"] for r in by["fast"]]),
            "fast_over_seed_per_round": memory,
            "fast_over_seed": median(memory),
        },
        "flops_per_training_sample": flops,
        "achieved_flops_per_s": {c: (med[c] * flops["training_3x_forward"] if med[c] else None) for c in CONFIGS},
    }
    summary.update(_paired_figures(paired))
    summary.update(_probe_figures(probe, med, summary["achieved_flops_per_s"]))
    summary["goals"] = _goals(summary)
    return summary


def _paired_figures(paired: dict[str, Any] | None) -> dict[str, Any]:
    if not paired:
        return {}
    return {
        "harness_overhead_paired_in_process": {
            "per_pair": paired["overhead_per_pair"],
            "median": paired["overhead_median"],
            "mean": paired["overhead_mean"],
            "window_steps": paired["window_steps"],
            "definition": "(T_instrumented - T_bare) / T_instrumented of alternate fit() windows in one process",
        }
    }


def _probe_figures(
    probe: dict[str, Any] | None, med: dict[str, float | None], achieved: dict[str, float | None]
) -> dict[str, Any]:
    """Figures that need the probe: instrument cost, fraction of the matmul peak, input / training."""
    out: dict[str, Any] = {}
    if probe and probe.get("instrument_cost") and med["harness"]:
        cost = probe["instrument_cost"]
        step_us = 1e6 * 32 / med["harness"]  # batch 32 (the seed experiment)
        out["harness_overhead_from_instrument_cost"] = {
            "step_timer_us_per_step": cost["step_timer_us_per_step"],
            "harness_step_us": step_us,
            "rss_sampler_fraction_of_one_core": cost["rss_sampler_fraction_of_one_core"],
            "estimate": cost["step_timer_us_per_step"] / step_us + cost["rss_sampler_fraction_of_one_core"],
            "definition": "timer cost per step / (b)'s step time + sampler CPU share (upper bound: the sampler "
            "thread may run on the idle core)",
        }
    if probe:
        peak = probe["matmul"]["square_flops_per_s"]
        out["matmul_peak_flops_per_s"] = peak
        out["matmul_step_shape_flops_per_s"] = probe["matmul"]["step_shape_flops_per_s"]
        out["fraction_of_peak"] = {c: (v / peak if v else None) for c, v in achieved.items()}
        out["input_over_training"] = {
            stage: {
                "feeds": feeds,
                "input_samples_per_s": probe["input"][stage]["samples_per_s"],
                "training_samples_per_s": med[feeds],
                "ratio": _ratio(probe["input"][stage]["samples_per_s"], med[feeds]),
            }
            for stage, feeds in INPUT_FEEDS.items()
        }
    return out


def _epoch_overhead(b: dict[str, Any], d: dict[str, Any]) -> float | None:
    tb, td = sum(b["epoch_time_s"][1:]), sum(d["epoch_time_s"][1:])
    return (tb - td) / tb if tb > 0 and td > 0 else None


def _n_test(runs: Runs) -> int | None:
    for r in runs:
        if r.get("n_test"):
            return int(r["n_test"])
    return None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _overhead(b: float | None, d: float | None) -> float | None:
    return (d - b) / d if b and d else None


def _goals(s: dict[str, Any]) -> dict[str, Any]:
    goals: dict[str, Any] = {}
    sp = s["fast_over_seed"]["median"]
    goals[GOAL_SPEED] = {"value": sp, "met": sp is not None and sp >= GOAL_SPEEDUP}
    md = s["accuracy"]["mean_diff_pp"]
    n_seeds = len(s["accuracy"]["seeds"])
    met = md is not None and abs(md) <= GOAL_ACC_DIFF_PP and n_seeds >= 3
    goals[GOAL_ACCURACY] = {"value": md, "met": met, "seeds": n_seeds}
    ov = s["harness_overhead"]["median"]
    goals[GOAL_OVERHEAD_NAME] = {"value": ov, "met": ov is not None and ov <= GOAL_OVERHEAD}
    if "harness_overhead_paired_in_process" in s:
        po = s["harness_overhead_paired_in_process"]["median"]
        goals[GOAL_PAIRED] = {"value": po, "met": po is not None and po <= GOAL_OVERHEAD}
    mem = s["memory"]["fast_over_seed"]
    goals[GOAL_MEMORY] = {"value": mem, "met": mem is not None and mem <= GOAL_MEMORY_RATIO}
    for stage, v in s.get("input_over_training", {}).items():
        goals[input_goal(stage, v["feeds"])] = {
            "value": v["ratio"],
            "met": v["ratio"] is not None and v["ratio"] >= GOAL_INPUT_RATIO,
        }
    return goals


def input_goal(stage: str, feeds: str) -> str:
    return f"input {stage} >= 10 x {feeds} training"


# --- Markdown --------------------------------------------------------------------------------------


def render_markdown(report: dict[str, Any]) -> str:
    """A short Markdown table of the figures (pure: data in, text out)."""
    return "\n".join(_header(report) + _config_rows(report) + _ratio_rows(report["summary"]) + _footer(report))


def _header(report: dict[str, Any]) -> list[str]:
    s, m, settings, load = report["summary"], report["machine"], report["settings"], report["load_average"]
    return [
        f"# tfparity performance ({report['finished_utc']})",
        "",
        f"Machine: {m.get('cpu_model')} ({m.get('cpu_count')} CPUs), TF {m.get('tensorflow_version')}, "
        f"Keras {m.get('keras_version')}; load average {fmt(load['min'], 1)}-"
        f"{fmt(load['max'], 1)} during the runs.",
        f"Experiment: model `{settings['model']}`, dataset `{settings['dataset']}`, batch 32, "
        f"{settings['epochs']} epochs for (a)/(c), {settings['overhead_epochs']} for (b)/(d); "
        f"{settings['rounds']} rounds, seeds {s['accuracy']['seeds']}.",
        f"Command: `{report['command']}`",
        "",
    ]


def _config_rows(report: dict[str, Any]) -> list[str]:
    s = report["summary"]
    lines = [
        "| configuration | steady samples/s (median) | x seed | train FLOP/s | % of matmul peak | peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for c in CONFIGS:
        rate = s["median_steady_samples_per_s"][c]
        rss = median([r["peak_rss_mb"] for r in report["runs"] if r["config"] == c])
        frac = s.get("fraction_of_peak", {}).get(c)
        x_seed = _ratio(rate, s["median_steady_samples_per_s"]["seed"])
        lines.append(
            f"| {LABELS[c]} | {fmt(rate, 0)} | {fmt(x_seed, 2)} | "
            f"{si(s['achieved_flops_per_s'][c])} | {fmt(frac * 100 if frac else None, 1)} | {fmt(rss, 0)} |"
        )
    return lines


RATIO_ROWS = (
    ("fast / seed samples/s", "fast_over_seed", ">= 4", GOAL_SPEED),
    ("fast / seed, whole fit() wall time", "fast_over_seed_end_to_end_fit", "-", None),
    ("harness overhead (d - b) / d", "harness_overhead", "<= 0.02", GOAL_OVERHEAD_NAME),
    ("harness overhead, whole epochs", "harness_overhead_whole_epochs", "-", None),
    ("harness overhead, paired in one process", "harness_overhead_paired_in_process", "<= 0.02", GOAL_PAIRED),
)


def _ratio_rows(s: dict[str, Any]) -> list[str]:
    lines = ["", "| ratio | median of per-round | per round | goal | met |", "|---|---|---|---|---|"]
    for name, key, goal, met in RATIO_ROWS:
        if key not in s:
            continue
        v = s[key]
        values = v.get("per_round", v.get("per_pair", []))
        lines.append(
            f"| {name} | {fmt(v['median'], 3)} | {', '.join(fmt(x, 3) for x in values)} | {goal} | "
            f"{yes(s['goals'][met]['met']) if met else '-'} |"
        )
    est = s.get("harness_overhead_from_instrument_cost")
    if est:
        lines.append(
            f"| harness overhead from instrument cost | {fmt(est['estimate'], 5)} | timer "
            f"{fmt(est['step_timer_us_per_step'], 2)} us / step of {fmt(est['harness_step_us'], 0)} us, sampler "
            f"{fmt(100 * est['rss_sampler_fraction_of_one_core'], 3)} % of a core | <= 0.02 | "
            f"{yes(est['estimate'] <= GOAL_OVERHEAD)} |"
        )
    a = s["accuracy"]
    lines.append(
        f"| test accuracy (c) - (a), pp | mean {fmt(a['mean_diff_pp'], 2)} | "
        f"{', '.join(fmt(x, 2) for x in a['diff_pp'])} | abs <= 0.5 | {yes(s['goals'][GOAL_ACCURACY]['met'])} |"
    )
    lines.append(
        f"| fast / seed peak RSS | {fmt(s['memory']['fast_over_seed'], 3)} | "
        f"{', '.join(fmt(x, 3) for x in s['memory']['fast_over_seed_per_round'])} | <= 1.10 | "
        f"{yes(s['goals'][GOAL_MEMORY]['met'])} |"
    )
    for stage, v in s.get("input_over_training", {}).items():
        goal = s["goals"][input_goal(stage, v["feeds"])]
        lines.append(
            f"| input {stage} / {v['feeds']} training | {fmt(v['ratio'], 1)} | "
            f"{fmt(v['input_samples_per_s'], 0)} / {fmt(v['training_samples_per_s'], 0)} samples/s | >= 10 | "
            f"{yes(goal['met'])} |"
        )
    return lines


def _footer(report: dict[str, Any]) -> list[str]:
    s = report["summary"]
    a = s["accuracy"]
    square_n = ((report.get("probe") or {}).get("matmul") or {}).get("square_n")
    return [
        "",
        f"Seed-to-seed SD of (a)'s test accuracy: {fmt(a['seed_to_seed_sd_pp'], 2)} pp; binomial SE of one "
        f"accuracy on {a['n_test']} test samples: {fmt(a['binomial_se_pp'], 2)} pp.",
        f"Matmul peak ({s.get('matmul_peak_flops_per_s') and square_n}^2 fp32): "
        f"{si(s.get('matmul_peak_flops_per_s'))}FLOP/s; "
        f"step-shaped matmul (32x784x128, XLA loop): {si(s.get('matmul_step_shape_flops_per_s'))}FLOP/s. "
        f"FLOP per training sample (3x forward): {si(s['flops_per_training_sample']['training_3x_forward'])}.",
        "",
        report["dataset_note"],
        "",
    ]


def fmt(v: float | None, digits: int) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:,.{digits}f}"


def si(v: float | None) -> str:
    if not v:
        return "n/a"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= scale:
            return f"{v / scale:.2f} {unit}"
    return f"{v:.0f} "


def yes(met: bool) -> str:
    return "yes" if met else "NO"


def dataset_note(dataset: str, epochs: int) -> str:
    if dataset == "fashion-mnist":
        return (
            "Dataset choice: Fashion-MNIST, the issue's measurement set: 48,000 training samples give 1,500 steps "
            "per epoch (long steady windows) and 10,000 test samples resolve accuracy to ~0.3 pp (binomial SE), "
            f"finer than the 0.5 pp criterion; {epochs} epochs of the seed way take ~45-55 s on this machine, so "
            "3 rounds fit in the 15-minute budget. mnist-5k would be ~10x cheaper, but its 1,000 test samples "
            "(SE ~0.9 pp) cannot resolve 0.5 pp."
        )
    return (
        f"Dataset {dataset!r}: chosen on the command line (Fashion-MNIST is the default for the goals; "
        "smaller sets are for smoke tests and resolve accuracy differences less finely)."
    )
