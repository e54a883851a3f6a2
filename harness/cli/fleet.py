"""``tfparity fleet check``: the same seeded runs on every fleet host, and the host whose numbers differ.

Every host runs the float64 numerics probe (one fixed batch through the fp32 path and its float64
clone, from the seed's initial weights) and a short fp32 training run, from one image shipped by id.
The numbers are compared across hosts (:mod:`harness.analysis.fleet`): a host is named only when a
majority of the others or ``--reference`` decides it; two hosts that disagree are INCONCLUSIVE.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.cli import scale
from harness.errors import ConfigError, RunInterrupted
from harness.spec.run_spec import RunSpec

HELP = "run the same seeded probe and short fp32 run on every fleet host; name the host that differs"
DESCRIPTION = __doc__
# Relative tolerances across hosts: the float64 clone's loss is the same arithmetic in float64
# everywhere (a healthy device differs by a few ulps at most); fp32 results differ by rounding order
# (vectorisation, GPU kernels); a short training run accumulates that over its steps.
TOLERANCES = {"probe float64 loss": 1e-9, "probe fp32 loss": 1e-4, "fp32 run train loss": 1e-3}
EXIT_DIFFERS = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="fleet_command", metavar="ACTION", parser_class=type(parser))
    sub.required = True
    c = sub.add_parser("check", help=HELP)
    c.add_argument("--docker-context", action="append", metavar="NAME", help="a host (repeat)")
    c.add_argument("--hosts", metavar="FILE", help="a fleet hosts file (TOML)")
    c.add_argument("--reference", metavar="HOST", help="a host trusted to be right (decides a 2-host disagreement)")
    c.add_argument("--results-dir", default="results", help="parent of the check's directory (default ./results)")
    c.add_argument("--data-dir", help="dataset directory (default $TFPARITY_DATA_DIR or ./data)")
    c.add_argument("--timeout", type=float, default=1800.0, metavar="SECONDS", help="per-run timeout (default 1800)")


def check_specs() -> list[RunSpec]:
    base = RunSpec(benchmark="baseline", dataset="mnist-5k", seed=0, deterministic=True, suite="fleet-check")
    return [base.replace(mode="probe", epochs=1), base.replace(epochs=1, max_train_samples=640)]


def run(args: argparse.Namespace) -> int:
    from harness.orchestrate.backends.docker import DockerBackend
    from harness.orchestrate.lanes import run_lanes
    from harness.store.layout import new_suite_dir, write_manifest

    args.backend, args.parallel = "docker", None
    scale.check(args)
    if not getattr(args, "fleet", None):
        raise ConfigError("fleet check needs hosts: --docker-context NAME (repeat) or --hosts FILE")
    names = [h.name for h in args.fleet]
    if args.reference is not None and args.reference not in names:
        raise ConfigError(f"--reference must be one of the hosts {names}, got {args.reference!r}")
    specs = check_specs()
    local = DockerBackend(device="cpu", data_dir=args.data_dir)
    local.prepare(specs)  # the image every host runs, and the data, made here
    hosts = scale.fleet_hosts(args.fleet, local)
    out_dir = new_suite_dir(Path(args.results_dir), "fleet-check")
    write_manifest(out_dir, specs, {"suite": "fleet-check", "backend": "docker", "hosts": names})
    print(f"tfparity: fleet check on {', '.join(names)} -> {out_dir}", file=sys.stderr)
    try:
        results = run_lanes(specs, hosts, out_dir, timeout_s=args.timeout, every_host=True)
    except RunInterrupted as exc:
        print(f"tfparity: fleet check interrupted; its runs so far are in {out_dir}", file=sys.stderr)
        return exc.exit_code
    per_host = {name: results[n * len(specs) : (n + 1) * len(specs)] for n, name in enumerate(names)}
    return report(per_host, args.reference)


def quantities(results: list[Any]) -> dict[str, Any]:
    """The compared numbers of one host (None where its run failed)."""
    probe_run, train_run = results
    probe = probe_run.extra.get("probe") if probe_run.ok and isinstance(probe_run.extra, dict) else None
    return {
        "probe passed": probe.get("passed") if probe else None,
        "probe float64 loss": probe.get("loss_float64") if probe else None,
        "probe fp32 loss": probe.get("loss") if probe else None,
        "fp32 run train loss": train_run.epochs[-1].train_loss if train_run.ok and train_run.epochs else None,
        "errors": [r.error for r in results if not r.ok],
    }


def report(per_host: dict[str, list[Any]], reference: str | None) -> int:
    from harness.analysis.fleet import odd_hosts, probe_self_check

    values = {host: quantities(results) for host, results in per_host.items()}
    for host, v in values.items():
        shown = ", ".join(f"{k} {v[k]!r}" for k in ("probe passed", *TOLERANCES))
        print(f"{host}: {shown}" + (f"; failed: {' | '.join(v['errors'])}" if v["errors"] else ""))
    findings = [probe_self_check({h: v["probe passed"] for h, v in values.items()})]
    findings += [odd_hosts(q, {h: v[q] for h, v in values.items()}, tol, reference) for q, tol in TOLERANCES.items()]
    for f in findings:
        print(f"{f.status:<12} {f.summary}")
    odd = sorted({h for f in findings for h in f.odd})
    if odd:
        print(f"fleet check: FAIL: {', '.join(odd)} differ (a bad GPU, a wrong driver, a broken image?)")
        return EXIT_DIFFERS
    if any(f.status == "INCONCLUSIVE" for f in findings):
        print("fleet check: INCONCLUSIVE: the hosts disagree and nothing decides which one is wrong")
        return EXIT_DIFFERS
    print(f"fleet check: OK: {len(values)} hosts agree")
    return 0
