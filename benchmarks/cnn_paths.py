"""The conv nets' parity and speed on every path of this machine: the source of README's conv-net figures.

``python benchmarks/cnn_paths.py [--seeds 3] [--epochs 3] [--max-train-samples 2000] [--out DIR]`` runs,
with the real CLI (``python -m harness run``, one worker process per run, exactly as a suite runs),
``cnn`` and ``cnn_batchnorm`` on each CPU path: fp32, mixed_bfloat16, fp32 + XLA, the compiled
multi-step loop without XLA (``--loop compiled``, 64 steps per call) and the ``fast`` preset
(compiled loop + XLA). It adds the numerics probe (``--mode probe``) on the paths whose numerics
differ (fp32, bf16, XLA, bf16 + XLA; the compiled loop runs the same ops as fp32), then
``tfparity compare`` over all paths against cpu-fp32 (each path's runs and probes in ``DIR/<path>``).
It prints and writes (``DIR/cnn-paths.{json,md}``)
per path and benchmark: mean test accuracy, median steady throughput, compile time, the largest
probe errors, whether the compiled loop reproduced fp32's histories bit for bit, and compare's verdicts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.store.results import RunResult, load_results  # noqa: E402

MODELS = ("cnn", "cnn_batchnorm")
PATHS: dict[str, list[str]] = {
    "fp32": [],
    "bf16": ["--precision", "mixed"],
    "xla": ["--xla", "on"],
    "compiled": ["--loop", "compiled", "--steps-per-execution", "64"],
    "fast": ["--preset", "fast"],
}
# The probe looks at one batch's forward/backward pass: the training loop does not change it.
PROBE_PATHS: dict[str, list[str]] = {
    "fp32": [],
    "bf16": ["--precision", "mixed"],
    "xla": ["--xla", "on"],
    "bf16-xla": ["--precision", "mixed", "--xla", "on"],
}


def tfparity(args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "harness", *args]
    print("$ tfparity " + " ".join(args), flush=True)
    return subprocess.run(cmd, check=check, env=env, capture_output=True, text=True)


def run_all(out: Path, args: argparse.Namespace) -> dict[str, float]:
    """Every training and probe run; returns each stage's wall time in seconds."""
    common = [a for m in MODELS for a in ("--model", m)] + ["--seeds", str(args.seeds), "--dataset", args.dataset]
    walls: dict[str, float] = {}
    for label, flags in PATHS.items():
        t0 = time.monotonic()
        tfparity(["run", *common, "--epochs", str(args.epochs), "--max-train-samples", str(args.max_train_samples),
                  "--results-dir", str(out / label), *flags])  # fmt: skip
        walls[f"train {label}"] = time.monotonic() - t0
    for label, flags in PROBE_PATHS.items():
        t0 = time.monotonic()
        tfparity(["run", "--mode", "probe", *common, "--results-dir", str(out / label), *flags])
        walls[f"probe {label}"] = time.monotonic() - t0
    return walls


def by_path(root: Path, table: dict[str, list[str]], mode: str) -> dict[tuple[str, str], list[RunResult]]:
    """(path label, benchmark) -> its results of ``mode`` (each path's runs live in ``root/<label>``)."""
    groups: dict[tuple[str, str], list[RunResult]] = defaultdict(list)
    for label in table:
        if (root / label).is_dir():
            for result in load_results([root / label]):
                if result.run_spec.mode == mode:
                    groups[(label, result.run_spec.benchmark)].append(result)
    return groups


def train_rows(out: Path) -> list[dict[str, Any]]:
    groups = by_path(out, PATHS, "train")
    reference = {(r.run_spec.benchmark, r.run_spec.seed): r for (label, _), rs in groups.items() if label == "fp32"
                 for r in rs}  # fmt: skip
    rows = []
    for (label, bench), results in sorted(groups.items(), key=lambda kv: (list(PATHS).index(kv[0][0]), kv[0][1])):
        ok = [r for r in results if r.ok]
        same = [curves(r) == curves(reference[(bench, r.run_spec.seed)]) for r in ok if (bench, r.run_spec.seed) in
                reference]  # fmt: skip
        rows.append({
            "path": label, "group": ok[0].run_spec.path.name if ok else None, "benchmark": bench,
            "runs": len(results), "ok": len(ok),
            "test_accuracy_mean": statistics.fmean(r.test_accuracy for r in ok) if ok else None,
            "test_accuracy_per_seed": [r.test_accuracy for r in sorted(ok, key=lambda r: r.run_spec.seed)],
            "steady_samples_per_s_median": median([r.timing.steady_throughput_samples_per_s for r in ok]),
            "compile_time_s_median": median([r.timing.compile_time_s for r in ok]),
            "train_time_s_median": median([r.timing.train_time_s for r in ok]),
            "peak_rss_mb_median": median([r.memory.peak_rss_mb for r in ok]),
            "histories_identical_to_fp32": f"{sum(same)}/{len(same)}",
            "deterministic_ops": sorted({r.evidence.deterministic_ops for r in ok if r.evidence}),
        })  # fmt: skip
    return rows


def curves(result: RunResult) -> list[tuple[float | None, ...]]:
    return [(e.train_loss, e.train_accuracy, e.val_loss, e.val_accuracy) for e in result.epochs]


def median(values: list[float | None]) -> float | None:
    finite = [v for v in values if v is not None]
    return statistics.median(finite) if finite else None


def probe_rows(out: Path) -> list[dict[str, Any]]:
    groups = by_path(out, PROBE_PATHS, "probe")
    rows = []
    for (label, bench), results in sorted(groups.items()):
        payloads = [r.extra["probe"] for r in results if r.ok]
        tol = payloads[0]["tolerance"] if payloads else {}
        act = max((layer["activation_rel_err"] for p in payloads for layer in p["layers"]), default=None)
        grad = max((layer["gradient_rel_err"] or 0.0 for p in payloads for layer in p["layers"]), default=None)
        rows.append({
            "path": label, "benchmark": bench, "runs": len(results), "compute_dtype": payloads[0]["compute_dtype"]
            if payloads else None, "passed": sum(bool(p["passed"]) for p in payloads),
            "max_activation_rel_err": act, "max_gradient_rel_err": grad,
            "activation_tolerance": tol.get("activation"), "gradient_tolerance": tol.get("gradient"),
            "first_divergent_layers": sorted({str(p["first_divergent_layer"]) for p in payloads
                                              if p["first_divergent_layer"]}),
        })  # fmt: skip
    return rows


def markdown(summary: dict[str, Any]) -> str:
    lines = ["| path | benchmark | test acc (mean) | steady samples/s | compile s | histories = fp32 |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in summary["train"]:
        lines.append(f"| {r['group']} ({r['path']}) | {r['benchmark']} | {fmt(r['test_accuracy_mean'], '.4f')} | "
                     f"{fmt(r['steady_samples_per_s_median'], ',.0f')} | {fmt(r['compile_time_s_median'], '.2f')} | "
                     f"{r['histories_identical_to_fp32']} |")  # fmt: skip
    lines += [
        "",
        "| probe path | benchmark | dtype | passed | max act err / tol | max grad err / tol |",
        "|---|---|---|---|---|---|",
    ]
    for r in summary["probe"]:
        lines.append(f"| {r['path']} | {r['benchmark']} | {r['compute_dtype']} | {r['passed']}/{r['runs']} | "
                     f"{fmt(r['max_activation_rel_err'], '.2e')} / {fmt(r['activation_tolerance'], '.2e')} | "
                     f"{fmt(r['max_gradient_rel_err'], '.2e')} / {fmt(r['gradient_tolerance'], '.2e')} |")  # fmt: skip
    lines += ["", "| compare check | verdict | subject |", "|---|---|---|"]
    lines += [f"| {c['name']} | {c['verdict']} | {c['subject']} |" for c in summary["compare"].get("checks", [])]
    return "\n".join(lines)


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-train-samples", type=int, default=2000)
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--out", type=Path, default=None, help="results go here (default: a temp dir)")
    parser.add_argument("--summarize", action="store_true", help="only summarize the results already in --out")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="tfparity-cnn-paths-"))
    started = time.monotonic()
    walls = {} if args.summarize else run_all(out, args)
    # A path's probes share its directory: compare splits one path given as two arguments into two groups.
    labels = [label for label in dict.fromkeys([*PATHS, *PROBE_PATHS]) if (out / label).is_dir()]
    compared = tfparity(["compare", *(str(out / label) for label in labels), "--json"], check=False)
    if compared.returncode not in (0, 1):
        print(compared.stderr, file=sys.stderr)
        return compared.returncode
    summary = {"settings": vars(args) | {"out": str(out)}, "wall_s": walls, "total_wall_s": time.monotonic() - started,
               "load_average": os.getloadavg(), "train": train_rows(out), "probe": probe_rows(out),
               "compare_exit": compared.returncode, "compare": json.loads(compared.stdout)}  # fmt: skip
    (out / "cnn-paths.json").write_text(json.dumps(summary, indent=1, default=str))
    (out / "cnn-paths.md").write_text(markdown(summary) + "\n")
    print(markdown(summary))
    print(f"wall {summary['total_wall_s']:.0f} s, load average {summary['load_average']}, results in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
