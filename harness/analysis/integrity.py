"""Integrity checks: runs that did not finish, determinism of repeated specs, evidence of what ran, and
GPU runs whose clocks were throttled."""

from __future__ import annotations

import json
from typing import Any

from harness.analysis.checks import Check, Verdict, fmt
from harness.analysis.samples import Run
from harness.store.results import RunResult


def check_status(runs: list[Run]) -> list[Check]:
    checks = []
    for run in runs:
        if run.result.ok:
            continue
        verdict = Verdict.WARN if run.result.status == "interrupted" else Verdict.FAIL
        error = (run.result.error or "no error recorded").strip().splitlines()
        checks.append(
            Check(
                "status",
                verdict,
                f"{run.spec.benchmark}/{run.spec.dataset}: {run.where}",
                f"run {run.result.status}: {error[0] if error else ''} (excluded from statistics)",
                {"run_id": run.result.run_id, "status": run.result.status, "error": run.result.error},
            )
        )
    return checks


def _env_signature(result: RunResult) -> str:
    env = result.environment if isinstance(result.environment, dict) else {}
    keys = ("tensorflow_version", "keras_version", "cpu_model", "gpus", "tf_build_info")
    return json.dumps({k: env.get(k) for k in keys}, sort_keys=True, default=str)


EPOCH_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


def first_difference(results: list[RunResult]) -> dict[str, Any] | None:
    """Where repeated runs first part: the earliest epoch and metric (then the test metrics) whose
    values are not all bit-identical; None when nothing differs."""
    for i in range(max(len(r.epochs) for r in results)):
        rows = [r.epochs[i] if i < len(r.epochs) else None for r in results]
        if any(row is None for row in rows):
            return {"metric": "epochs", "epoch": i + 1, "values": [len(r.epochs) for r in results]}
        for metric in EPOCH_METRICS:
            values = [getattr(row, metric) for row in rows]
            if any(v != values[0] for v in values[1:]):
                return {"metric": metric, "epoch": i + 1, "values": values}
    for metric in ("test_loss", "test_accuracy"):
        values = [getattr(r, metric) for r in results]
        if any(v != values[0] for v in values[1:]):
            return {"metric": metric, "epoch": None, "values": values}
    return None


def _where(diff: dict[str, Any]) -> str:
    """``first at epoch 2 val_loss (0.312345678 vs 0.312345912)``."""
    distinct = list(dict.fromkeys(diff["values"]))[:2]
    shown = " vs ".join("n/a" if v is None else format(v, ".9g") for v in distinct)
    at = f"epoch {diff['epoch']} " if diff["epoch"] is not None else ""
    return f"first at {at}{diff['metric']} ({shown})"


def check_determinism(runs: list[Run]) -> list[Check]:
    """Runs with identical specs in the same software/hardware environment must agree exactly when
    op determinism was on (evidence); otherwise the spread is reported. A difference names the
    first epoch and metric where the runs part."""
    clusters: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        if run.result.ok and run.spec.mode == "train":
            spec_key = json.dumps(run.spec.to_dict(), sort_keys=True)
            clusters.setdefault((spec_key, _env_signature(run.result)), []).append(run)
    return [_determinism(cluster) for cluster in clusters.values() if len(cluster) >= 2]


def _determinism(cluster: list[Run]) -> Check:
    first = cluster[0]
    subject = (
        f"{first.spec.benchmark}/{first.spec.dataset}: {first.spec.path.name} seed {first.spec.seed} "
        f"× {len(cluster)} runs ({', '.join(sorted({x.group for x in cluster}))})"
    )
    diff = first_difference([x.result for x in cluster])
    deterministic = all(x.result.evidence is not None and x.result.evidence.deterministic_ops for x in cluster)
    acc = [x.result.test_accuracy for x in cluster if x.result.test_accuracy is not None]
    loss = [x.result.test_loss for x in cluster if x.result.test_loss is not None]
    spread_pp = 100.0 * (max(acc) - min(acc)) if acc else None
    loss_spread = (max(loss) - min(loss)) if loss else None
    details = {
        "run_ids": [x.result.run_id for x in cluster],
        "identical": diff is None,
        "deterministic_ops": deterministic,
        "first_difference": diff,
        "test_accuracy_spread_pp": spread_pp,
        "test_loss_spread": loss_spread,
    }
    if diff is None:
        return Check("determinism", Verdict.PASS, subject, f"bit-identical metrics across {len(cluster)} runs", details)
    spread = f"test accuracy spread {fmt(spread_pp, '.3g')} pp, test loss spread {fmt(loss_spread, '.3g')}"
    if deterministic:
        summary = f"deterministic_ops on but metrics differ, {_where(diff)}; {spread}"
        return Check("determinism", Verdict.FAIL, subject, summary, details)
    summary = f"metrics differ (deterministic_ops off, so expected), {_where(diff)}; {spread}"
    return Check("determinism", Verdict.WARN, subject, summary, details)


def check_evidence(group: str, runs: list[Run]) -> Check | None:
    problems: list[str] = []
    warnings: list[str] = []
    checked = 0
    for run in runs:
        if not run.result.ok:
            continue
        ev = run.result.evidence
        if ev is None:
            warnings.append(f"seed {run.spec.seed}: no evidence recorded")
            continue
        checked += 1
        problems += [f"seed {run.spec.seed}: {problem}" for problem in ev.mismatches(run.spec)]
    if not problems and not warnings and checked == 0:
        return None
    details = {"runs_checked": checked, "problems": problems, "warnings": warnings}
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return Check(
            "evidence",
            Verdict.FAIL,
            group,
            f"the path that ran is not the path asked for: {problems[0]}{more}",
            details,
        )
    if warnings:
        more = f" (+{len(warnings) - 1} more)" if len(warnings) > 1 else ""
        return Check("evidence", Verdict.WARN, group, f"{warnings[0]}{more}", details)
    path = runs[0].spec.path
    tf32 = "on" if path.tensor_float_32 else "off"
    return Check(
        "evidence",
        Verdict.PASS,
        group,
        f"{checked} run(s): variables on {path.device}, policy {path.policy}, jit_compile {path.xla}, TF32 {tf32}",
        details,
    )


def check_throttling(group: str, runs: list[Run]) -> Check | None:
    """GPU runs whose clocks were held down by power or heat during the measured window (a WARN: their
    speed is the throttled GPU's), and GPU runs without GPU samples to tell (a WARN: unknown)."""
    gpu_runs = [x for x in runs if x.result.ok and x.spec.path.device == "gpu" and x.spec.mode == "train"]
    if not gpu_runs:
        return None
    throttled: dict[str, dict[str, float]] = {}
    unknown: dict[str, str] = {}
    for run in gpu_runs:
        telemetry = run.result.telemetry
        readable, counts = telemetry.throttle_counts() if telemetry is not None else (0, {})
        if readable == 0:
            why = telemetry.unavailable if telemetry is not None else None
            unknown[run.result.run_id] = why or "no clocks-event reasons recorded"
        elif counts:
            throttled[run.result.run_id] = {reason: n / readable for reason, n in sorted(counts.items())}
    worst = _reasons(throttled)
    details = {"runs": len(gpu_runs), "throttled": throttled, "unknown": unknown, "reasons": worst}
    if throttled:
        reasons = ", ".join(f"{name} (up to {share:.0%} of samples)" for name, share in worst.items())
        summary = f"{len(throttled)} of {len(gpu_runs)} GPU run(s) throttled during training: {reasons}"
        return Check("throttling", Verdict.WARN, group, summary + "; speed figures are the throttled GPU's", details)
    if unknown:
        first = next(iter(unknown.values()))
        summary = f"{len(unknown)} of {len(gpu_runs)} GPU run(s) have no GPU samples to tell: {first}"
        return Check("throttling", Verdict.WARN, group, summary, details)
    return Check(
        "throttling", Verdict.PASS, group, f"{len(gpu_runs)} GPU run(s): no power or thermal throttling", details
    )


def _reasons(throttled: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each throttle reason with the largest share of window samples it held in any run."""
    worst: dict[str, float] = {}
    for shares in throttled.values():
        for reason, share in shares.items():
            worst[reason] = max(share, worst.get(reason, 0.0))
    return dict(sorted(worst.items()))
