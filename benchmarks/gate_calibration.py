"""Gate calibration: the regression gate's false-alarm rate (A/A) and detection rate (A/B), measured with real runs.

Acceptance of issue 11 ("trustworthy verdicts"), measured rather than simulated:

* **A/A**: ``--aa-pairs`` (20) campaigns of two identical configurations, ``--runs`` (5) runs per
  side -> the gate's false alarms (``tfparity compare B --baseline A --gate throughput:-5%
  --confirm N`` exits 1). Target: at most 1 in 20.
* **A/B**: ``--ab-campaigns`` (10) campaigns where side B sleeps ``--slowdown`` (15 %) of every
  step's own time (the hidden ``--inject-fault slow:F``, whose realized factor each worker measures
  and records) -> detections. Target: at least 9 of 10.

Every run is a real worker process (local backend, one fresh process per run), the two sides
interleaved A B A B ... so that machine drift hits both alike; the 1-minute load average is
recorded at the start and the end of every run. The gate is the real CLI, confirm included.
The default configuration (baseline MLP, mnist-5k, 11 epochs: 1,000 steady steps per run, the
first epoch is warm-up) follows stats.md §4.6: between-run noise falls with the steady window up
to ~400-1,000 steps. From the runs of identical configurations (both sides of an A/A pair, the A side of
an A/B campaign) the script measures the per-run spread sigma and prints the run count a 15 % slowdown
needs (90 % power per campaign, and the ~97 % that 9 of 10 needs), and its verdict: met, not met, or
INCONCLUSIVE (too few campaigns, or a sigma at which the run count used cannot detect the slowdown).

Output: ``OUT/gate-calibration-<UTC stamp>.json`` (every campaign: its runs, load averages,
realized slowdowns, the gate's JSON decision) and ``.md`` (the summary, also printed);
the runs under ``OUT/gate-calibration-<stamp>/<aa|ab>-NN/{A,B}/`` (and ``B-confirm-*``). A/A and A/B
campaigns alternate.
It is rewritten after every campaign, so a calibration stopped early (a time budget) keeps its
figures; ``--report-only JSON`` summarizes such a file again. A smoke run:
``--aa-pairs 1 --ab-campaigns 1 --runs 4 --confirm 2 --epochs 1 --max-train-samples 640``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from itertools import zip_longest
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout: make the harness importable
    sys.path.insert(0, str(ROOT))

from benchmarks.gate_report import render_markdown, summarize  # noqa: E402
from harness.errors import ConfigError, UserError  # noqa: E402
from harness.orchestrate.backends.local import LocalBackend  # noqa: E402
from harness.orchestrate.runner import RunEvent, run_specs  # noqa: E402
from harness.spec.run_spec import RunSpec  # noqa: E402
from harness.store.atomic import write_atomic  # noqa: E402
from harness.store.jsonio import write_json  # noqa: E402
from harness.store.layout import write_manifest  # noqa: E402
from harness.store.results import RunResult  # noqa: E402
from harness.timeutil import utc_now, utc_stamp  # noqa: E402

CALIBRATION_VERSION = 1
GATE = "throughput:-5%"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="results/calibration", help="output directory (default %(default)s)")
    p.add_argument("--aa-pairs", type=int, default=20, help="A/A campaigns (default %(default)s)")
    p.add_argument("--ab-campaigns", type=int, default=10, help="A/B campaigns (default %(default)s)")
    p.add_argument("--runs", type=int, default=5, help="runs per side per campaign: the default run count (5)")
    p.add_argument("--confirm", type=int, default=5, help="--confirm N of the gate (default %(default)s; 0: off)")
    p.add_argument("--slowdown", type=float, default=0.15, help="B's injected per-step slowdown (default 0.15)")
    p.add_argument("--model", default="baseline")
    p.add_argument("--dataset", default="mnist-5k")
    p.add_argument("--epochs", type=int, default=11, help="default 11: 1,000 steady steps on mnist-5k")
    p.add_argument("--max-train-samples", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise-floor", default=None, metavar="FILE", help="a noise.json for the gate (default: none)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--timeout", type=float, default=1800.0, help="per-run timeout in seconds")
    p.add_argument("--report-only", default=None, metavar="JSON",
                   help="run nothing: summarize an earlier gate-calibration-*.json again")  # fmt: skip
    args = p.parse_args(argv)
    for name in ("aa_pairs", "ab_campaigns", "confirm"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    if args.runs < 1 or args.aa_pairs + args.ab_campaigns < 1 or not 0 < args.slowdown <= 10:
        p.error(f"need --runs >= 1, at least one campaign and 0 < --slowdown <= 10; got runs {args.runs}, "
                f"{args.aa_pairs} + {args.ab_campaigns} campaigns, slowdown {args.slowdown}")  # fmt: skip
    return args


def base_spec(args: argparse.Namespace) -> RunSpec:
    try:
        return RunSpec(benchmark=args.model, dataset=args.dataset, epochs=args.epochs, seed=args.seed,
                       max_train_samples=args.max_train_samples, suite="calibration")  # fmt: skip
    except ConfigError as exc:
        raise SystemExit(f"gate_calibration: error: {exc}") from None


class LoadRecorder:
    """The 1-minute load average at every run's start and finish (what the machine was doing)."""

    def __init__(self) -> None:
        self.load: dict[str, dict[str, float]] = {}
        self.side = ""

    def __call__(self, event: RunEvent) -> None:
        if event.kind in ("start", "finish"):
            # A/A sides run identical specs (the same run id): the side tells them apart
            self.load.setdefault(f"{self.side}/{event.spec.run_id}", {})[f"load_1m_{event.kind}"] = os.getloadavg()[0]
        if event.kind == "finish" and event.result is not None:
            r = event.result
            state = "ok" if r.ok else f"{r.status}: {r.error}"
            print(f"  {self.side} {event.spec.run_id}: {state} (load {os.getloadavg()[0]:.1f})", file=sys.stderr,
                  flush=True)  # fmt: skip


def sides(base: RunSpec, kind: str, runs: int, slowdown: float) -> dict[str, list[RunSpec]]:
    """The specs of both sides; B is A's configuration (A/A) or A slowed (A/B). Repeats make run ids."""
    b = base if kind == "aa" else base.replace(inject_fault=f"slow:{slowdown:g}")
    return {"A": [base.replace(repeat=i) for i in range(runs)], "B": [b.replace(repeat=i) for i in range(runs)]}


def run_campaign(kind: str, index: int, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Interleaved runs of both sides (A B A B ...), then the gate, confirm included."""
    specs = sides(base_spec(args), kind, args.runs, args.slowdown)
    where = root / f"{kind}-{index:02d}"
    dirs = {side: where / side for side in specs}
    backend = LocalBackend(data_dir=args.data_dir)
    for side, side_specs in specs.items():
        dirs[side].mkdir(parents=True)
        write_manifest(dirs[side], side_specs, {"suite": "calibration", "backend": "local", "data_dir": args.data_dir})
    recorder = LoadRecorder()
    results: dict[str, list[RunResult]] = {"A": [], "B": []}
    started = time.monotonic()
    for i in range(args.runs):
        for side in ("A", "B"):
            recorder.side = side
            results[side] += run_specs([specs[side][i]], backend, dirs[side], on_event=recorder, timeout_s=args.timeout)
    gate = run_gate(dirs, args)
    return {
        "kind": kind,
        "index": index,
        "directory": str(where),
        "runs": {
            side: [_run_record(r, recorder.load.get(f"{side}/{r.run_id}", {})) for r in rs]
            for side, rs in results.items()
        },  # fmt: skip
        "gate": gate,
        "wall_s": time.monotonic() - started,
    }


def run_gate(dirs: dict[str, Path], args: argparse.Namespace) -> dict[str, Any]:
    """``tfparity compare B --baseline A --gate throughput:-5% --confirm N --json``: exit code and the check."""
    cmd = [sys.executable, "-m", "harness", "compare", str(dirs["B"]), "--baseline", str(dirs["A"]), "--gate", GATE,
           "--json"]  # fmt: skip
    if args.confirm:
        cmd += ["--confirm", str(args.confirm)] + (["--data-dir", args.data_dir] if args.data_dir else [])
    if args.noise_floor:
        cmd += ["--noise-floor", args.noise_floor]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=args.timeout * (args.confirm + 1)
    )
    if proc.returncode not in (0, 1):
        return {"exit_code": proc.returncode, "error": proc.stderr.strip()[-500:]}
    checks = json.loads(proc.stdout)["checks"]
    (check,) = [c for c in checks if c["name"] == "regression" and c["details"].get("metric") == "throughput"]
    d = check["details"]
    confirm = d.get("confirm") or {}
    return {
        "exit_code": proc.returncode,
        "verdict": check["verdict"],
        "decision": d.get("decision"),
        "first_decision": (confirm.get("before") or {}).get("decision", d.get("decision")),
        "confirmed": confirm.get("confirmed"),
        "summary": check["summary"],
        "shift": d.get("shift"),
        "confirm_run_ids": confirm.get("run_ids", []),
        "confirm_realized": _confirm_realized(confirm.get("directory")),
    }


def _confirm_realized(directory: str | None) -> list[float]:
    """The realized slowdowns the confirming runs recorded."""
    out: list[float] = []
    for d in (directory or "").split(", "):
        for f in sorted(Path(d).glob("*.json")) if d else []:
            data = json.loads(f.read_text())
            realized = (data.get("extra") or {}).get("injected_slowdown", {}).get("realized_factor")
            if realized is not None:
                out.append(realized)
    return out


def _run_record(r: RunResult, load: dict[str, float]) -> dict[str, Any]:
    from harness.analysis import per_run
    from harness.analysis.samples import steady_step_times_ms

    slowed = r.extra.get("injected_slowdown") or {}
    return {
        "run_id": r.run_id,
        "status": r.status,
        "throughput_samples_per_s": per_run.throughput(r) if r.ok else None,
        "steady_steps": len(steady_step_times_ms(r)) if r.ok else 0,
        "realized_factor": slowed.get("realized_factor"),
        **load,
    }


def campaign_plan(aa_pairs: int, ab_campaigns: int) -> list[tuple[str, int]]:
    """A/A and A/B campaigns alternate (aa ab aa ab ... then the rest): drift over the session hits both kinds."""
    aa, ab = [("aa", i) for i in range(aa_pairs)], [("ab", i) for i in range(ab_campaigns)]
    return [item for pair in zip_longest(aa, ab) for item in pair if item is not None]


def write_report(out: Path, stamp: str, args: argparse.Namespace, campaigns: list[dict[str, Any]]) -> str:
    """``gate-calibration-<stamp>.json`` and ``.md`` from the campaigns so far; returns the markdown."""
    summary = summarize(campaigns, runs=args.runs, slowdown=args.slowdown)
    keys = ("aa_pairs", "ab_campaigns", "runs", "confirm", "slowdown", "model", "dataset", "epochs",
            "max_train_samples", "seed", "noise_floor")  # fmt: skip
    settings = {k: getattr(args, k) for k in keys}
    report = {"calibration_version": CALIBRATION_VERSION, "created_utc": utc_now(), "gate": GATE,
              "settings": settings, "campaigns_done": len(campaigns), "summary": summary,
              "campaigns": campaigns}  # fmt: skip
    write_json(out / f"gate-calibration-{stamp}.json", report, overwrite=True)
    text = render_markdown(report)
    write_atomic(out / f"gate-calibration-{stamp}.md", text.encode("utf-8"), overwrite=True)
    return text


def report_again(path: str) -> int:
    """Summarize and render an earlier report with the current code; rewrites its ``.json`` and ``.md``."""
    try:
        report = json.loads(Path(path).read_text())
        settings, campaigns = report["settings"], report["campaigns"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(
            f"gate_calibration: error: --report-only {path!r}: not a gate calibration report ({exc})", file=sys.stderr
        )
        return 2
    report["summary"] = summarize(campaigns, runs=settings["runs"], slowdown=settings["slowdown"])
    report["campaigns_done"] = len(campaigns)
    write_json(Path(path), report, overwrite=True)
    text = render_markdown(report)
    write_atomic(Path(path).with_suffix(".md"), text.encode("utf-8"), overwrite=True)
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report_only:
        return report_again(args.report_only)
    base_spec(args)  # a bad model/dataset is refused before anything runs
    stamp = utc_stamp()
    out = Path(args.out)
    root = out / f"gate-calibration-{stamp}"
    root.mkdir(parents=True)
    print(f"gate calibration: {args.aa_pairs} A/A + {args.ab_campaigns} A/B campaigns x {args.runs} runs per side "
          f"-> {root}", file=sys.stderr)  # fmt: skip
    campaigns: list[dict[str, Any]] = []
    text = ""
    try:
        for kind, i in campaign_plan(args.aa_pairs, args.ab_campaigns):
            print(f"campaign {kind}-{i:02d}", file=sys.stderr, flush=True)
            campaigns.append(run_campaign(kind, i, args, root))
            # after every campaign: a calibration stopped early (time budget) still leaves its figures
            text = write_report(out, stamp, args, campaigns)
    except UserError as exc:
        print(f"gate_calibration: error: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
