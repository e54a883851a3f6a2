"""Measure the numerics probe's errors per compute dtype: the source of harness/worker/probe.py's tolerances.

``python benchmarks/probe_tolerances.py [--seeds 5] [--out DIR]`` runs ``tfparity run --mode probe``
(the worker exactly as a suite runs it: its own process, op determinism as the path resolves it)
for every built-in benchmark on mnist-5k, on each CPU path: fp32, fp32 + XLA, mixed_bfloat16,
mixed_bfloat16 + XLA and mixed_float16. It then prints, per compute dtype and benchmark, the
largest relative error of any layer's activations and gradients in units of that dtype's machine
epsilon, next to the tolerance factors in use (headroom = factor / largest measured error).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.spec.benchmarks.registry import BUILTIN  # noqa: E402
from harness.store.results import load_results  # noqa: E402
from harness.worker.probe import ACTIVATION_FACTOR, EPS, GRADIENT_FACTOR  # noqa: E402

PATHS = {
    "fp32": [],
    "fp32-xla": ["--xla", "on"],
    "bf16": ["--precision", "mixed"],
    "bf16-xla": ["--precision", "mixed", "--xla", "on"],
    "fp16": ["--precision", "mixed", "--mixed-policy", "mixed_float16"],
}


def run_probes(out: Path, seeds: int, paths: list[str]) -> None:
    models = [arg for name in BUILTIN for arg in ("--model", name)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for label in paths:
        flags = PATHS[label]
        cmd = [sys.executable, "-m", "harness", "run", "--mode", "probe", *models, "--seeds", str(seeds),
               "--dataset", "mnist-5k", "--results-dir", str(out / label), *flags]  # fmt: skip
        print(f"[{label}] {' '.join(cmd[3:])}", flush=True)
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)


def summarize(out: Path) -> dict[str, dict[str, dict[str, float]]]:
    """dtype -> benchmark -> {"activation": max eps, "gradient": max eps, "runs": n, "failed": n}."""
    table: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for result in load_results([out]):
        payload = result.extra["probe"]
        dtype, eps = payload["compute_dtype"], EPS[payload["compute_dtype"]]
        act = max(layer["activation_rel_err"] for layer in payload["layers"]) / eps
        grad = max((layer["gradient_rel_err"] or 0.0) for layer in payload["layers"]) / eps
        row = table[dtype].setdefault(result.run_spec.benchmark, {"activation": 0.0, "gradient": 0.0, "runs": 0,
                                                                  "failed": 0})  # fmt: skip
        row["activation"], row["gradient"] = max(row["activation"], act), max(row["gradient"], grad)
        row["runs"] += 1
        row["failed"] += 0 if payload["passed"] else 1
    return table


def report(table: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = ["dtype     benchmark          runs  failed  max act (eps)  max grad (eps)"]
    for dtype, rows in sorted(table.items()):
        for bench, row in sorted(rows.items()):
            lines.append(f"{dtype:<9} {bench:<18} {row['runs']:>4}  {row['failed']:>6}  {row['activation']:>13.2f}  "
                         f"{row['gradient']:>14.2f}")  # fmt: skip
        act = max(r["activation"] for r in rows.values())
        grad = max(r["gradient"] for r in rows.values())
        lines.append(f"{dtype:<9} {'(all)':<18} tolerance factors {ACTIVATION_FACTOR[dtype]:g} / "
                     f"{GRADIENT_FACTOR[dtype]:g} eps: headroom x{ACTIVATION_FACTOR[dtype] / act:.1f} / "
                     f"x{GRADIENT_FACTOR[dtype] / grad:.1f}")  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="keep the probe results here (default: a temp dir)")
    parser.add_argument("--summarize", type=Path, default=None, help="only summarize existing results in DIR")
    parser.add_argument("--paths", nargs="+", choices=list(PATHS), default=list(PATHS), help="default: all")
    args = parser.parse_args()
    if args.summarize:
        table = summarize(args.summarize)
    else:
        out = args.out or Path(tempfile.mkdtemp(prefix="tfparity-probe-tolerances-"))
        run_probes(out, args.seeds, args.paths)
        table = summarize(out)
    print(report(table))
    print(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
