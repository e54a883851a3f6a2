"""Replicas on this host (``make scaling``): throughput per replica count and x1 vs x2 agreement.

One invocation runs rounds of real ``tfparity run`` suites, each run its own worker process; round ``r``
uses seed ``r``, and every family runs x1 then x2 in each round (load drift on a shared machine hits
both alike). Families:

* ``strong``           baseline, tf.data, ``model.fit``; the global batch stays 32 (the same optimisation);
* ``strong-compiled``  the same with the compiled loop, 32 steps per call (under the strategy: the adapter);
* ``weak``             baseline with ``--batch-per-replica`` (global batch 32 x N: throughput only);
* ``bn``               batchnorm, Keras's per-replica BN statistics on x2;
* ``bn-sync``          batchnorm with ``--sync-bn on`` (x2 only; compared against ``bn``'s x1).

Then the harness's own analysis: the scaling table (:mod:`harness.analysis.scaling`: per-run throughput,
medians over runs, T_N / (N x T_1)) for the throughput families, and ``compare``'s replica, curve and
accuracy checks for x2 vs x1 (baseline, batchnorm, batchnorm synchronised).

Output: ``OUT/scaling-<UTC stamp>.md`` (tables) and ``.json`` (rows and checks), result JSONs under
``OUT/scaling-<stamp>/<family>/``; the Markdown is printed to stdout. ``--device gpu`` puts the replicas on
GPUs (a host with at least two); the default is logical CPU devices, which share this host's cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout: make the harness importable
    sys.path.insert(0, str(ROOT))

from harness.analysis.checks import Check  # noqa: E402
from harness.analysis.compare import compare_results  # noqa: E402
from harness.analysis.samples import label_runs  # noqa: E402
from harness.analysis.scaling import ScalingRow, scaling_rows  # noqa: E402
from harness.cli.types import positive_float, positive_int  # noqa: E402
from harness.render.scaling import SCALING_NOTE, scaling_table  # noqa: E402
from harness.store.atomic import write_atomic  # noqa: E402
from harness.store.jsonio import write_json  # noqa: E402
from harness.store.results import RunResult, load_results  # noqa: E402
from harness.timeutil import utc_stamp  # noqa: E402

FAMILIES: dict[str, tuple[list[str], list[str]]] = {  # flags, replica counts
    "strong": (["--model", "baseline"], ["1", "2"]),
    "strong-compiled": (["--model", "baseline", "--loop", "compiled", "--steps-per-execution", "32"], ["1", "2"]),
    "weak": (["--model", "baseline", "--batch-per-replica"], ["1", "2"]),
    "bn": (["--model", "batchnorm"], ["1", "2"]),
    "bn-sync": (["--model", "batchnorm", "--sync-bn", "on"], ["2"]),
}
THROUGHPUT = ("strong", "strong-compiled", "weak")
AGREEMENT = (("strong",), ("bn", "bn-sync"))  # the families compared together (one comparison each)


def run_family(name: str, seed: int, args: argparse.Namespace, out: Path) -> None:
    flags, counts = FAMILIES[name]
    replicas = [x for n in counts for x in ("--replicas", n)]
    command = [sys.executable, "-m", "harness", "run", *flags, *replicas, "--seed", str(seed)]
    command += ["--device", args.device, "--dataset", args.dataset, "--epochs", str(args.epochs)]
    command += ["--results-dir", str(out / name)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=args.timeout)
    print(f"  {name} seed {seed}: exit {proc.returncode} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {proc.stderr.strip().splitlines()[-1:]}")


def family_results(out: Path, names: tuple[str, ...]) -> tuple[list[RunResult], list[str]]:
    results: list[RunResult] = []
    sources: list[str] = []
    for name in names:
        loaded = load_results([out / name])
        results += loaded
        sources += [name] * len(loaded)
    return results, sources


def replica_checks(out: Path) -> list[Check]:
    """compare's checks of every x2 group against x1, per benchmark (its own comparison each)."""
    found: list[Check] = []
    for names in AGREEMENT:
        results, sources = family_results(out, names)
        comparison = compare_results(results, sources=sources)
        found += [c for c in comparison.checks if c.name in ("replicas", "curves", "accuracy-equivalence")]
    return found


def measured_on(results: list[RunResult], cores: int, wall: str) -> str:
    """The header: what ran, read from the results (so that ``--analyse`` states the same as the run)."""
    datasets = sorted({r.run_spec.dataset for r in results})
    epochs = sorted({r.run_spec.epochs for r in results})
    seeds = sorted({r.run_spec.seed for r in results})
    devices = "GPUs" if any(r.run_spec.path.device == "gpu" for r in results) else "logical CPU devices"
    return (
        f"Replicas on this host: {cores} CPU core(s), {devices}; {', '.join(datasets)}, "
        f"{'/'.join(map(str, epochs))} epochs, {len(seeds)} seed(s) ({', '.join(map(str, seeds))}), "
        f"{len(results)} runs{wall}."
    )


def markdown(head: str, rows: list[ScalingRow], checks: list[Check]) -> str:
    out = [head, "", "## Scaling", "", *scaling_table(rows).markdown(), "", f"_{SCALING_NOTE}_", ""]
    out += ["## x2 vs x1 agreement (compare)", "", "| check | verdict | subject | summary |", "|---|---|---|---|"]
    out += [f"| {c.name} | {c.verdict} | {c.subject} | {c.summary.replace('|', '/')} |" for c in checks]
    return "\n".join(out) + "\n"


def run_rounds(args: argparse.Namespace, out: Path) -> str:
    """Every round's suites; returns the wall time and the machine's load average (it is shared) for the header."""
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    for seed in range(args.rounds):
        print(f"round {seed + 1}/{args.rounds}", file=sys.stderr)
        for name in FAMILIES:
            run_family(name, seed, args, out)
    wall_s = time.perf_counter() - started
    return f"; {wall_s / 60:.1f} min wall, 1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/scaling", help="output directory (default results/scaling)")
    parser.add_argument("--rounds", type=positive_int, default=3, help="rounds (= seeds) per family (default 3)")
    parser.add_argument(
        "--epochs", type=positive_int, default=3, help="epochs per run (default 3; the first 100 steps are warm-up)"
    )
    parser.add_argument(
        "--device", choices=("cpu", "gpu"), default="cpu", help="replicas on logical CPU devices or GPUs"
    )
    parser.add_argument("--dataset", default="mnist-5k", help="dataset (default mnist-5k)")
    parser.add_argument(
        "--timeout", type=positive_float, default=3600.0, help="seconds per tfparity run (default 3600)"
    )
    parser.add_argument("--analyse", metavar="DIR", help="only analyse the runs of an earlier OUT/scaling-<stamp>")
    args = parser.parse_args(argv)
    stamp = utc_stamp()
    out = Path(args.analyse) if args.analyse else Path(args.out) / f"scaling-{stamp}"
    wall = "" if args.analyse else run_rounds(args, out)
    rows: list[ScalingRow] = []
    for name in THROUGHPUT:
        results, sources = family_results(out, (name,))
        rows += scaling_rows(label_runs(results, sources))
    checks = replica_checks(out)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    cores = len(os.sched_getaffinity(0))
    everything, _ = family_results(out, tuple(FAMILIES))
    text = markdown(measured_on(everything, cores, wall), rows, checks)
    write_atomic(Path(args.out) / f"scaling-{stamp}.md", text.encode("utf-8"), mode=0o644)
    payload: dict[str, Any] = {
        "args": vars(args),
        "cores": cores,
        "rows": [{**vars(r), "series": vars(r.series)} for r in rows],
        "checks": [c.to_dict() for c in checks],
    }
    write_json(Path(args.out) / f"scaling-{stamp}.json", payload, mode=0o644)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
