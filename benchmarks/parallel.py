"""Suite wall time serial vs ``--parallel N`` on this host (docker backend, CPU sets).

Runs the same small suite (``--model baseline --seeds K``) through the real CLI, alternating serial
and parallel rounds (load drift on a shared machine hits both alike), and reports each round's wall
time, the median speed-up, and the runs' steady throughput (samples/s, from the results). On a
2-core machine each lane gets one core: the figure says little about a GPU host, where lanes are
whole GPUs. Usage::

    .venv/bin/python benchmarks/parallel.py --out results/parallel [--rounds 2] [--parallel 2]
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def suite(extra: list[str], args: argparse.Namespace, results_dir: Path) -> dict[str, Any]:
    """One suite through the CLI; its wall time and its runs' steady throughput."""
    cmd = [sys.executable, "-m", "harness", "run", "--backend", "docker", "--model", "baseline",
           "--seeds", str(args.seeds), "--epochs", str(args.epochs), "--max-train-samples", str(args.samples),
           "--results-dir", str(results_dir), *extra]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # The image first, outside the timing: a stale image is rebuilt once, not inside one suite's time.
    built = subprocess.run([sys.executable, "-m", "harness", "docker", "build", "--if-missing"], cwd=ROOT, env=env)
    if built.returncode != 0:
        raise SystemExit("cannot build the CPU image")
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    wall_s = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"suite failed ({proc.returncode}): {proc.stderr[-2000:]}")
    (suite_dir,) = [p for p in results_dir.iterdir() if p.is_dir()]
    runs = [json.loads(p.read_text()) for p in suite_dir.glob("*.json") if p.name != "suite.json"]
    throughput = [r["timing"]["steady_throughput_samples_per_s"] for r in runs if r.get("timing")]
    return {"wall_s": wall_s, "throughput_samples_per_s": throughput, "suite_dir": str(suite_dir)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/parallel")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--samples", type=int, default=1280, help="--max-train-samples of each run")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rounds: list[dict[str, Any]] = []
    for r in range(args.rounds):
        row: dict[str, Any] = {"round": r}
        for label, extra in (("serial", []), (f"parallel{args.parallel}", ["--parallel", str(args.parallel)])):
            with tempfile.TemporaryDirectory(prefix="tfparity-bench-") as tmp:
                row[label] = suite(extra, args, Path(tmp))
            print(f"round {r} {label}: {row[label]['wall_s']:.1f} s", file=sys.stderr, flush=True)
        rounds.append(row)
    par = f"parallel{args.parallel}"
    speedups = [row["serial"]["wall_s"] / row[par]["wall_s"] for row in rounds]
    summary = {
        "cpus": sorted(os.sched_getaffinity(0)),
        "config": vars(args),
        "rounds": rounds,
        "serial_wall_s_median": statistics.median(row["serial"]["wall_s"] for row in rounds),
        f"{par}_wall_s_median": statistics.median(row[par]["wall_s"] for row in rounds),
        "speedup_median": statistics.median(speedups),
        "serial_throughput_median": statistics.median(
            t for row in rounds for t in row["serial"]["throughput_samples_per_s"]
        ),
        f"{par}_throughput_median": statistics.median(
            t for row in rounds for t in row[par]["throughput_samples_per_s"]
        ),
    }
    path = out / f"parallel-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(summary, indent=2))
    print(f"| {len(summary['cpus'])}-core CPU | serial | --parallel {args.parallel} |")
    print("|---|---|---|")
    print(f"| suite wall time, median of {args.rounds} (s) | {summary['serial_wall_s_median']:.1f} | "
          f"{summary[f'{par}_wall_s_median']:.1f} (speed-up {summary['speedup_median']:.2f}x) |")  # fmt: skip
    print(f"| per-run steady throughput, median (samples/s) | {summary['serial_throughput_median']:.0f} | "
          f"{summary[f'{par}_throughput_median']:.0f} |")  # fmt: skip
    print(f"\n{path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
