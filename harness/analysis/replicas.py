"""x1 vs xN (and w1 vs wN): N replicas with the one-device global batch are the same optimisation, so the
numbers must agree, whether the replicas share one process (MirroredStrategy) or each is a worker of its own.

Which groups are each other's counterparts (:func:`is_counterpart`), and the numerical check on a
pair (:func:`check_replicas`). Agreement is judged on the **first epoch's losses**, per seed, against a
relative tolerance, never bit for bit: the gradient all-reduce sums per-replica partial gradients, so
the arithmetic differs by rounding, and rounding differences grow chaotically with training, fastest
with BatchNormalization (TF-FACTS: another rounding path ends ±0.5 points apart in test accuracy);
later epochs are the accuracy-equivalence and curve checks' to judge, over seeds.

Measured on this machine (2 logical CPU devices, fp32, seed 0; first epoch, |Δloss| / loss):
Fashion-MNIST (1,500 steps in the epoch): baseline x2 vs x1 2.3e-7; batchnorm with synchronised BN
on x2 vs synchronised on x1 6.7e-7, vs plain BN on x1 2.3e-3 (the synchronised layer computes its
moments as E[x²] - E[x]², another formula); batchnorm with per-replica statistics 8.7 % (another
experiment: each replica normalises over its 16 samples). mnist-5k: 1e-7, and 6-8 % per replica. TF-free.
"""

from __future__ import annotations

import math
from typing import Any

from harness.analysis.checks import Check, Verdict
from harness.analysis.samples import Run
from harness.spec.run_spec import RunSpec

# Relative tolerance on the first epoch's train and validation loss: 1 %, four times the largest
# difference measured for the same optimisation (synchronised vs plain BN), an eighth of what
# per-replica BN statistics gave (module docstring).
DEFAULT_REPLICA_LOSS_TOL_REL = 0.01
LOSSES = ("train_loss", "val_loss")


def is_counterpart(spec: RunSpec, one: RunSpec) -> bool:
    """Whether ``one`` (a one-replica run) trains the same optimisation as ``spec`` (N replicas in sync: on
    one host, or one per worker across containers, ``w1`` vs ``wN`` as ``x1`` vs ``xN``): the
    same device and numerics, input order, op determinism and global batch; the training loop may
    differ (it never changes the experiment), and so may synchronised BN (it is what makes a BN model
    on N replicas the one-device experiment)."""
    a, b = spec.path, one.path
    return (
        a.replicas_in_sync > 1
        and b.replicas_in_sync == 1
        and (a.device, a.precision, a.xla, a.policy) == (b.device, b.precision, b.xla, b.policy)
        and spec.input == one.input
        and spec.deterministic_ops == one.deterministic_ops
        and spec.global_batch_size == one.global_batch_size
    )


def relative(a: float | None, b: float | None) -> float | None:
    """|a - b| / |b| (None when either is missing or not finite)."""
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        return None
    return abs(a - b) / max(abs(b), 1e-12)


def _per_seed(g: list[Run], r: list[Run]) -> dict[int, dict[str, list[float | None]]]:
    """Per shared seed: each loss's relative difference at every epoch (first run of each seed)."""
    first_g = {x.spec.seed: x.result for x in reversed(g)}
    first_r = {x.spec.seed: x.result for x in reversed(r)}
    out: dict[int, dict[str, list[float | None]]] = {}
    for seed in sorted(set(first_g) & set(first_r)):
        a, b = first_g[seed].epochs, first_r[seed].epochs
        out[seed] = {
            loss: [relative(getattr(ea, loss), getattr(eb, loss)) for ea, eb in zip(a, b, strict=False)]
            for loss in LOSSES
        }
    return out


def check_replicas(subject: str, g: list[Run], r: list[Run], tol_rel: float) -> Check:
    """Do N replicas (``g``) and their one-device counterpart (``r``) train the same numbers?"""
    per_seed = _per_seed(g, r)
    details: dict[str, Any] = {"tolerance_rel": tol_rel, "epoch": 1, "per_seed": per_seed}
    if not per_seed:
        summary = "no seed ran on both: the first-epoch losses can only be compared on the same seeds"
        return Check("replicas", Verdict.WARN, subject, summary, details)
    first = [(seed, loss, d[loss][0]) for seed, d in per_seed.items() for loss in LOSSES if d[loss]]
    measured = [(seed, loss, v) for seed, loss, v in first if v is not None]
    if not measured:
        return Check("replicas", Verdict.WARN, subject, "no first-epoch losses recorded to compare", details)
    seed, loss, worst = max(measured, key=lambda t: t[2])
    later = [v for d in per_seed.values() for vals in d.values() for v in vals[1:] if v is not None]
    details.update(max_rel_epoch1=worst, worst_seed=seed, worst_metric=loss, max_rel_later=max(later, default=None))
    seeds = f"{len(per_seed)} seed{'s' if len(per_seed) != 1 else ''}"
    trail = f"; later epochs up to {max(later):.2g} (judged by the accuracy and curve checks)" if later else ""
    if worst <= tol_rel:
        summary = f"first-epoch losses agree within {worst:.2g} relative (≤ {tol_rel:g}) over {seeds}{trail}"
        return Check("replicas", Verdict.PASS, subject, summary, details)
    summary = (
        f"first-epoch {loss} differs by {worst:.2%} (seed {seed}) > {tol_rel:g} relative: not the one-device "
        f"optimisation{_why(g)}"
    )
    return Check("replicas", Verdict.FAIL, subject, summary, details)


def _why(g: list[Run]) -> str:
    """The known cause, from the evidence: BatchNormalization layers that did not synchronise."""
    unsynced = any(x.result.evidence is not None and x.result.evidence.sync_batchnorm is False for x in g)
    if unsynced:
        return (
            "; its BatchNormalization computes statistics per replica (evidence sync_batchnorm false): "
            "--sync-bn on makes them global"
        )
    return ""
