"""2 workers vs 1 across containers (``python benchmarks/workers.py``): what MultiWorkerMirroredStrategy costs.

Runs one real suite with the docker backend: ``--workers 1 --workers 2`` over ``--seeds`` seeds (the
compiled loop, numpy order, so that w1 and w2 train the same optimisation), then reads the results back
and prints, per worker count: every run's steady throughput (global batch / its median steady step
time, :func:`harness.analysis.scaling.run_throughput`), its training time and its wall time (container
start to result), the median speed-up T_2 / T_1 and efficiency T_2 / (2 x T_1) from
:func:`harness.analysis.scaling.scaling_rows`, and whether compare's first-epoch check passed.

Writes ``OUT/workers-<UTC stamp>.md`` (the table) next to the suite directory it ran; prints the table.
The figures are this machine's: on a 2-core CPU host the two workers share the same two cores, so the
all-reduce over loopback gRPC is pure overhead and no speed-up is possible here.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.analysis.compare import compare_results  # noqa: E402
from harness.analysis.samples import label_runs  # noqa: E402
from harness.analysis.scaling import run_throughput, scaling_rows  # noqa: E402
from harness.store.provenance import cpu_model  # noqa: E402
from harness.store.results import load_results  # noqa: E402
from harness.timeutil import utc_now  # noqa: E402


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="benchmarks/workers.py", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/workers", help="parent directory of the suite and the table")
    p.add_argument("--seeds", type=int, default=2, help="seeds per worker count (default 2)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3; the first is warm-up)")
    p.add_argument("--model", default="baseline")
    p.add_argument("--data-dir", default=None)
    return p.parse_args(argv)


def run_suite(args: argparse.Namespace, out: Path) -> Path:
    """The real suite, through the CLI; returns its directory."""
    cmd = [sys.executable, "-m", "harness", "run", "--backend", "docker", "--model", args.model,
           "--workers", "1", "--workers", "2", "--loop", "compiled", "--input", "numpy",
           "--epochs", str(args.epochs), "--seeds", str(args.seeds), "--results-dir", str(out)]  # fmt: skip
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    before = set(out.glob("run-*"))
    subprocess.run(cmd, cwd=ROOT, check=True)
    (suite,) = set(out.glob("run-*")) - before
    return suite


def table(suite: Path) -> list[str]:
    results = load_results([suite])
    runs = label_runs(results)
    lines = [
        f"2 workers vs 1 across containers, measured {utc_now()} on this machine ({cpu_model()}, "
        "2 cores shared by both workers): docker backend, one CPU container per worker in one loopback-only "
        f"network namespace; suite {suite.name}.",
        "",
        "| path | seed | samples/s (global batch / median steady step) | train time s | wall time s | status |",
        "|---|---|---|---|---|---|",
    ]
    for run in sorted(runs, key=lambda r: (r.spec.path.workers, r.spec.seed)):
        t = run.result.timing
        tput = run_throughput(run)
        lines.append(
            f"| {run.spec.path.name} | {run.spec.seed} | {'—' if tput is None else f'{tput:,.0f}'} | "
            f"{'—' if t is None else f'{t.train_time_s:.1f}'} | "
            f"{'—' if t is None else f'{t.total_wall_time_s:.1f}'} | {run.result.status} |"
        )
    lines += [
        "",
        "| workers | runs | median samples/s | speed-up T_2/T_1 | efficiency T_2/(2 T_1) |",
        "|---|---|---|---|---|",
    ]
    for row in scaling_rows(runs):
        speed = "—" if row.speedup is None else f"×{row.speedup:.2f}"
        eff = "—" if row.efficiency is None else f"{row.efficiency:.0%}"
        med = "—" if row.samples_per_s is None else f"{row.samples_per_s:,.0f}"
        lines.append(f"| {row.workers} | {row.runs} | {med} | {speed} | {eff} |")
    checks = [c for c in compare_results(results).checks if c.name == "replicas"]
    lines += ["", *(f"compare, {c.subject}: {c.verdict.value} ({c.summary})" for c in checks)]
    walls = {n: [r.result.timing.total_wall_time_s for r in runs if r.result.timing and r.spec.path.workers == n]
             for n in (1, 2)}  # fmt: skip
    if walls[1] and walls[2]:
        lines.append(
            f"median wall time per run: w1 {statistics.median(walls[1]):.1f} s, w2 {statistics.median(walls[2]):.1f} s"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    suite = run_suite(args, out)
    lines = table(suite)
    lines.append(f"benchmark wall time {time.monotonic() - started:.0f} s")
    path = out / f"workers-{suite.name.removeprefix('run-')}.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
