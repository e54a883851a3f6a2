"""The numerics checks: each probe run against its float64 reference, and probes across groups.

A probe run (``tfparity run --mode probe``) records one fixed batch's activations, loss and
gradients against a float64 clone with the same weights (:mod:`harness.worker.probe`); its payload
is ``result.extra["probe"]``.
"""

from __future__ import annotations

from typing import Any

from harness.analysis.checks import Check, Verdict, fmt
from harness.analysis.samples import Run

PAYLOAD_FIELDS = (
    "compute_dtype", "numerics", "tensor_float_32", "jit_compile", "tolerance", "loss", "loss_float64",
    "loss_rel_err", "logits_rel_err", "first_divergent_layer", "divergence", "passed", "initial_weights_sha256",
    "batch_sha256",
)  # fmt: skip


def probe_payload(run: Run) -> dict[str, Any] | None:
    payload = run.result.extra.get("probe") if isinstance(run.result.extra, dict) else None
    return payload if isinstance(payload, dict) else None


def check_numerics(probe_runs: list[Run], reference: str) -> list[Check]:
    """Every probe against float64; then every non-reference probe against the reference's of its seed."""
    checks = []
    by_unit: dict[tuple[str, str], list[Run]] = {}
    for run in probe_runs:
        by_unit.setdefault(run.unit, []).append(run)
    for unit_runs in by_unit.values():
        checks += [_against_float64(run) for run in unit_runs]
        # Across groups: every probe must start from the same weights and batch, or its float64
        # comparison does not describe the same computation.
        ref_runs = [x for x in unit_runs if x.group == reference and probe_payload(x)]
        for run in unit_runs:
            peer = next((x for x in ref_runs if x.spec.seed == run.spec.seed), None)
            if run.group != reference and probe_payload(run) is not None and peer is not None:
                check = _against_reference(run, peer, reference)
                if check is not None:
                    checks.append(check)
    return checks


def _against_float64(run: Run) -> Check:
    subject = f"{run.spec.benchmark}/{run.spec.dataset}: {run.where} vs float64"
    payload = probe_payload(run)
    if payload is None:
        summary = "probe run has no probe payload (extra['probe'])"
        return Check("numerics", Verdict.FAIL, subject, summary, {"run_id": run.result.run_id})
    details = {k: payload.get(k) for k in PAYLOAD_FIELDS}
    layers: list[dict[str, Any]] = payload.get("layers") or []
    details["layers"] = layers
    worst_act = max((x.get("activation_rel_err") or 0.0 for x in layers), default=0.0)
    worst_grad = max((x.get("gradient_rel_err") or 0.0 for x in layers), default=0.0)
    tol = payload.get("tolerance") or {}
    numbers = (
        f"max rel err activations {worst_act:.2e} (tol {fmt(tol.get('activation'), '.2g')}), "
        f"gradients {worst_grad:.2e} (tol {fmt(tol.get('gradient'), '.2g')}), "
        f"loss {fmt(payload.get('loss_rel_err'), '.1e')}; {payload.get('numerics') or payload.get('compute_dtype')}"
    )
    if payload.get("passed"):
        return Check("numerics", Verdict.PASS, subject, f"within tolerance: {numbers}", details)
    where = f"{payload.get('first_divergent_layer')} ({payload.get('divergence') or 'values'})"
    return Check("numerics", Verdict.FAIL, subject, f"first layer beyond tolerance: {where}; {numbers}", details)


def _against_reference(run: Run, peer: Run, reference: str) -> Check | None:
    """Same initial weights and batch as the reference's probe, and a loss within the looser tolerance."""
    payload, ref = probe_payload(run) or {}, probe_payload(peer) or {}
    subject = f"{run.spec.benchmark}/{run.spec.dataset}: {run.where} vs {reference} (probe)"
    same_w = payload.get("initial_weights_sha256") == ref.get("initial_weights_sha256")
    same_b = payload.get("batch_sha256") == ref.get("batch_sha256")
    loss_a, loss_b = payload.get("loss"), ref.get("loss")
    details: dict[str, Any] = {"same_initial_weights": same_w, "same_batch": same_b, "loss_a": loss_a, "loss_b": loss_b}
    if not (same_w and same_b):
        what = " and ".join(w for w, ok in (("initial weights", same_w), ("batch", same_b)) if not ok)
        summary = f"probe {what} differ from the reference's: the probes are not comparable"
        return Check("numerics", Verdict.FAIL, subject, summary, details)
    if loss_a is None or loss_b is None:
        return None
    tol = max(
        (payload.get("tolerance") or {}).get("activation") or 0.0, (ref.get("tolerance") or {}).get("activation") or 0.0
    )
    rel = abs(loss_a - loss_b) / max(abs(loss_b), 1e-12)
    details.update({"loss_rel_diff": rel, "tolerance": tol})
    verdict = Verdict.PASS if rel <= tol else Verdict.FAIL
    summary = f"same weights and batch; loss {loss_a:.6g} vs {loss_b:.6g} (rel diff {rel:.2e}, tol {tol:.2g})"
    return Check("numerics", verdict, subject, summary, details)
