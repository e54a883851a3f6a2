"""``compare``: do the paths agree? Plan which groups are compared, then run the checks on each pair.

Results are labelled with their group (:mod:`harness.analysis.samples`), refused when data or
hyperparameters of one benchmark differ, and paired (:func:`plan_pairs`): every group against the
reference group (accuracy equivalence, curves, speed, memory, GPU memory), every mixed-precision,
TF32 or XLA group against its fp32 sibling (the relative gate), a GPU group against its CPU counterpart
(speed), every group of N replicas (or N workers) against its one-replica counterpart (the first epoch's losses within
a numerical tolerance: :mod:`harness.analysis.replicas`). A group whose global batch differs from the
reference's (weak scaling) trains another optimisation: it is not compared for agreement, and a WARN
says so (its throughput is in the report's scaling table). Integrity checks (status, determinism,
evidence, GPU throttling) and the numerics probe run per group; with a baseline, regression checks
(:mod:`harness.analysis.regress`) too. TF-free.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.analysis import agreement, coverage, integrity, numerics, performance, regress, replicas
from harness.analysis.checks import Check, Comparison, GroupInfo, Verdict
from harness.analysis.gates import Gate, default_gates
from harness.analysis.noise import NoiseFloors
from harness.analysis.samples import Run, groups_of, label_runs
from harness.errors import CompareError
from harness.store.results import RunResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tolerances:
    """How close is close enough (validated once, at the CLI edge)."""

    margin_pp: float = agreement.DEFAULT_MARGIN_PP
    curve_tol_pp: float = agreement.DEFAULT_CURVE_TOL_PP
    loss_tol_rel: float = agreement.DEFAULT_LOSS_TOL_REL
    replica_loss_tol_rel: float = replicas.DEFAULT_REPLICA_LOSS_TOL_REL

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise CompareError(f"{name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class Pair:
    """Two groups' runs of one benchmark on one dataset, and why they are compared."""

    kind: str  # "reference" | "sibling" | "device" | "replicas"
    unit: tuple[str, str]  # (benchmark, dataset)
    group: str
    other: str
    runs: list[Run]
    other_runs: list[Run]

    @property
    def subject(self) -> str:
        return f"{self.unit[0]}/{self.unit[1]}: {self.group} vs {self.other}"


def resolve_reference(runs: list[Run], groups: list[str], reference: str | None) -> str:
    if reference is not None:
        if reference in groups:
            return reference
        by_path = sorted({r.group for r in runs if r.spec.path.name == reference})
        if len(by_path) == 1:
            return by_path[0]
        if len(by_path) > 1:
            raise CompareError(f"reference {reference!r} is ambiguous: it matches groups {by_path}; name one of them")
        raise CompareError(f"unknown reference {reference!r}; the compared groups are {groups}")
    for run in runs:  # first in argument order
        path = run.spec.path
        if path.device == "cpu" and path.precision == "fp32" and not path.xla and path.replicas_in_sync == 1:
            return run.group
    log.info("no cpu-fp32 group present; using the first group %r as reference", groups[0])
    return groups[0]


def validate_units(runs: list[Run]) -> None:
    """Refuse (one line) to compare runs of one benchmark/dataset/mode whose data or
    hyperparameters differ: such a comparison would silently mix different experiments."""
    by_unit: dict[tuple[str, str, str], list[Run]] = {}
    for run in runs:
        if run.result.ok:
            by_unit.setdefault((*run.unit, run.spec.mode), []).append(run)
    for (bench, data, mode), unit_runs in by_unit.items():
        fingerprints = [(run, run.result.dataset.sha256) for run in unit_runs if run.result.dataset is not None]
        for run, sha in fingerprints[1:]:
            first, first_sha = fingerprints[0]
            if sha != first_sha:
                raise CompareError(
                    f"dataset fingerprints differ for {bench}/{data}: {first.where} has {first_sha[:12]}, "
                    f"{run.where} has {sha[:12]}; runs on different data cannot be compared"
                )
        check_definitions(bench, data, unit_runs)
        first = unit_runs[0]
        hp0 = first.spec.hyperparameters
        for run in unit_runs[1:]:
            hp = run.spec.hyperparameters
            if hp != hp0:
                diff = sorted(k for k in set(hp) | set(hp0) if hp.get(k) != hp0.get(k))
                what = ", ".join(f"{k} {hp0.get(k)!r} vs {hp.get(k)!r}" for k in diff)
                raise CompareError(
                    f"hyperparameters differ for {bench}/{data} ({mode}): {first.where} vs {run.where}: {what}; "
                    "compare runs of one configuration at a time"
                )


def check_definitions(bench: str, data: str, unit_runs: list[Run]) -> None:
    """Refuse (one line) runs of one benchmark name whose definitions differ: the sha256 of the
    defining source file when both results have it, else the version (results from before
    definitions were recorded carry none and are not refused)."""
    recorded = [(run, run.result.benchmark) for run in unit_runs if run.result.benchmark is not None]
    if not recorded:
        return
    first, info0 = recorded[0]
    for run, info in recorded[1:]:
        both_hashed = info.sha256 is not None and info0.sha256 is not None
        if (info.sha256 != info0.sha256) if both_hashed else (info.version != info0.version):
            what = "sha256" if both_hashed else "version"
            mine, theirs = (info0.sha256 or "")[:12], (info.sha256 or "")[:12]
            if not both_hashed:
                mine, theirs = str(info0.version), str(info.version)
            raise CompareError(
                f"benchmark definitions differ for {bench}/{data}: {first.where} ran {info0.ref} ({what} {mine}), "
                f"{run.where} ran {info.ref} ({what} {theirs}); results of different definitions cannot be compared"
            )


def plan_pairs(
    train: list[Run], groups: list[str], reference: str, runs: Sequence[Run] = ()
) -> tuple[list[Pair], list[Check]]:
    """Which groups are compared with which, per benchmark/dataset; and what is not compared, and why.

    ``runs`` (every run, any status) lets the coverage warnings say exactly what was missing: a
    benchmark/dataset the reference never ran, one whose reference runs all failed, or one that a
    group never ran although the reference did.
    """
    pairs: list[Pair] = []
    missing: list[Check] = []
    units: dict[tuple[str, str], dict[str, list[Run]]] = {}
    for run in train:
        units.setdefault(run.unit, {}).setdefault(run.group, []).append(run)
    for unit, by_group in units.items():
        if reference not in by_group:
            missing.append(coverage.reference_missing(unit, sorted(by_group), reference, runs))
            continue
        present = [g for g in groups if g in by_group]
        batch = by_group[reference][0].spec.global_batch_size
        for g in present:
            if g == reference:
                continue
            if by_group[g][0].spec.global_batch_size != batch:
                missing.append(_weak_scaling(unit, g, by_group[g][0], reference, batch))
                continue
            pairs.append(Pair("reference", unit, g, reference, by_group[g], by_group[reference]))
        pairs += _replica_pairs(unit, by_group, present, reference)
        for group in present:
            pair_or_missing = _sibling_pair(unit, group, by_group, present, reference)
            if isinstance(pair_or_missing, Pair):
                pairs.append(pair_or_missing)
            elif pair_or_missing is not None:
                missing.append(pair_or_missing)
        pairs += _device_pairs(unit, by_group, present, reference)
    covered = [unit for unit, by_group in units.items() if reference in by_group]
    return pairs, missing + coverage.units_missing(covered, groups, reference, runs)


def _sibling_pair(
    unit: tuple[str, str], group: str, by_group: dict[str, list[Run]], present: list[str], reference: str
) -> Pair | Check | None:
    """A mixed-precision, TF32 or XLA group against the fp32 group of its device (the relative gate)."""
    first = by_group[group][0]
    path = first.spec.path
    if not (path.precision != "fp32" or path.xla):
        return None
    candidates = [s for s in present if _is_fp32_sibling(by_group[s][0], path.device, path.replicas, path.workers)]
    # Prefer the sibling from the same source (local vs docker), then the reference, then any
    # (one directory per path is a common layout: sources differ, siblings still exist).
    sibling = next(
        (s for s in candidates if by_group[s][0].source == first.source),
        reference if reference in candidates else (candidates[0] if candidates else None),
    )
    if sibling is None:
        return Check(
            "relative-gate",
            Verdict.WARN,
            f"{unit[0]}/{unit[1]}: {group}",
            f"no fp32 sibling ({dataclasses.replace(path, precision='fp32', xla=False, mixed_policy=None).name}) "
            "to gate against",
            {},
        )
    return Pair("sibling", unit, group, sibling, by_group[group], by_group[sibling])


def _is_fp32_sibling(run: Run, device: str, replicas: int = 1, workers: int = 1) -> bool:
    path = run.spec.path
    return (
        path.device == device
        and path.precision == "fp32"
        and not path.xla
        and (path.replicas, path.workers) == (replicas, workers)
    )


def _weak_scaling(unit: tuple[str, str], group: str, run: Run, reference: str, batch: int) -> Check:
    """A group whose global batch differs from the reference's: another optimisation, not compared."""
    spec = run.spec
    return Check(
        "agreement-not-compared",
        Verdict.WARN,
        f"{unit[0]}/{unit[1]}: {group} vs {reference}",
        f"not compared for agreement: global batch {spec.global_batch_size} vs {batch} "
        f"({spec.path.replicas_in_sync} replicas x {spec.batch_size} per replica: weak scaling trains another "
        "optimisation); its throughput is in the report's scaling table",
        {"global_batch_size": spec.global_batch_size, "reference_global_batch_size": batch},
    )


def _replica_pairs(
    unit: tuple[str, str], by_group: dict[str, list[Run]], present: list[str], reference: str
) -> list[Pair]:
    """Every group of N replicas against its one-replica counterpart: the one with the same BN setting
    first (synchronised BN computes its moments by another formula), then the same source, then the
    reference, then any."""
    pairs = []
    for group in present:
        first = by_group[group][0]
        candidates = [s for s in present if replicas.is_counterpart(first.spec, by_group[s][0].spec)]

        def preference(s: str, first: Run = first) -> tuple[bool, bool, bool]:
            other = by_group[s][0]
            same_bn = other.spec.sync_batchnorm == first.spec.sync_batchnorm
            return (not same_bn, other.source != first.source, s != reference)

        if candidates:
            one = min(candidates, key=preference)
            pairs.append(Pair("replicas", unit, group, one, by_group[group], by_group[one]))
    return pairs


def _device_pairs(
    unit: tuple[str, str], by_group: dict[str, list[Run]], present: list[str], reference: str
) -> list[Pair]:
    """GPU vs CPU speed, when the reference is not already the CPU counterpart."""
    pairs = []
    for group in present:
        first = by_group[group][0]
        path = first.spec.path
        if path.device != "gpu":
            continue
        cpu = next(
            (
                s
                for s in present
                if s != reference
                and by_group[s][0].source == first.source
                and by_group[s][0].spec.path.device == "cpu"
                and by_group[s][0].spec.path.precision == path.precision
                and by_group[s][0].spec.path.xla == path.xla
                and by_group[s][0].spec.path.replicas == path.replicas
                and by_group[s][0].spec.path.workers == path.workers
            ),
            None,
        )
        if cpu is not None:
            pairs.append(Pair("device", unit, group, cpu, by_group[group], by_group[cpu]))
    return pairs


def _reference_checks(pair: Pair, tol: Tolerances, floors: NoiseFloors) -> list[Check]:
    g_device = pair.runs[0].spec.path.device
    r_device = pair.other_runs[0].spec.path.device
    checks = [
        agreement.check_accuracy(pair.subject, metric, pair.runs, pair.other_runs, tol.margin_pp)
        for metric in ("test_accuracy", "val_accuracy")
    ]
    checks += [
        agreement.check_curves(pair.subject, pair.runs, pair.other_runs, tol.curve_tol_pp, tol.loss_tol_rel),
        performance.check_speed(pair.subject, pair.runs, pair.other_runs, g_device, r_device, floors),
        performance.check_memory(pair.subject, pair.runs, pair.other_runs, floors),
        performance.check_gpu_memory(pair.subject, pair.runs, pair.other_runs, floors),
    ]
    found = [c for c in checks if c is not None]
    return agreement.unless_learned(found, (pair.runs, pair.other_runs), (pair.group, pair.other))


def _sibling_checks(pair: Pair, tol: Tolerances, floors: NoiseFloors) -> list[Check]:
    return [agreement.check_relative_gate(pair.subject, pair.runs, pair.other_runs, tol.margin_pp)]


def _device_checks(pair: Pair, tol: Tolerances, floors: NoiseFloors) -> list[Check]:
    check = performance.check_speed(pair.subject, pair.runs, pair.other_runs, "gpu", "cpu", floors)
    return [] if check is None else [check]


def _replica_checks(pair: Pair, tol: Tolerances, floors: NoiseFloors) -> list[Check]:
    return [replicas.check_replicas(pair.subject, pair.runs, pair.other_runs, tol.replica_loss_tol_rel)]


CHECKS: dict[str, Callable[[Pair, Tolerances, NoiseFloors], list[Check]]] = {
    "reference": _reference_checks,
    "sibling": _sibling_checks,
    "device": _device_checks,
    "replicas": _replica_checks,
}


def compare_results(
    results: list[RunResult],
    *,
    reference: str | None = None,
    tolerances: Tolerances | None = None,
    sources: Sequence[str] | None = None,
    baseline: list[RunResult] | None = None,
    baseline_sources: Sequence[str] | None = None,
    gates: Sequence[Gate] | None = None,
    allow_hardware_change: bool = False,
    floors: NoiseFloors | None = None,
) -> Comparison:
    """Compare groups of results (one group per source, path and execution) against a reference group.

    ``sources`` gives the source of each result (default: its backend). ``baseline``/``gates`` add
    the regression checks of :mod:`harness.analysis.regress` (a baseline on other GPU hardware is
    refused unless ``allow_hardware_change``); ``floors`` are stored A/A noise floors
    (:mod:`harness.analysis.noise`) for the speed and memory decisions. Raises :class:`CompareError`
    for results that cannot be compared: none, one result given twice, groups without a dataset in
    common with the reference, different data or hyperparameters. A comparison in which no two groups
    (nor a baseline) were compared carries a WARN saying so, so its verdict is never PASS.
    """
    if not results:
        raise CompareError("no results to compare")
    coverage.refuse_same_results(results)
    tol = tolerances or Tolerances()
    floors = floors or NoiseFloors()
    runs = label_runs(results, sources)
    groups = groups_of(runs)
    ref = resolve_reference(runs, groups, reference)
    coverage.refuse_disjoint_datasets(runs, groups, ref)
    validate_units(runs)
    train = [x for x in runs if x.result.ok and x.spec.mode == "train"]
    probes = [x for x in runs if x.result.ok and x.spec.mode == "probe"]
    pairs, checks = plan_pairs(train, groups, ref, runs)
    checks = integrity.check_status(runs) + checks
    for pair in pairs:
        checks += CHECKS[pair.kind](pair, tol, floors)
    checks += integrity.check_determinism(runs) + _group_checks(runs, groups)
    checks += numerics.check_numerics(probes, ref)
    if baseline is not None:
        checks += regress.regression_checks(
            runs,
            baseline,
            gates or default_gates(tol.margin_pp),
            baseline_sources=baseline_sources,
            allow_hardware_change=allow_hardware_change,
            floors=floors,
        )
    elif not pairs and not coverage.probe_pairs(probes, ref):
        checks.append(coverage.nothing_compared(groups))
    return Comparison(
        reference=ref,
        groups=groups,
        checks=checks,
        margin_pp=float(tol.margin_pp),
        group_info=_group_info(runs, groups),
    )


def _group_checks(runs: list[Run], groups: list[str]) -> list[Check]:
    """Each group on its own: the evidence says it ran what it asked for; its GPU clocks held."""
    checks: list[Check] = []
    for group in groups:
        members = [x for x in runs if x.group == group]
        found = (integrity.check_evidence(group, members), integrity.check_throttling(group, members))
        checks += [c for c in found if c is not None]
    return checks


def _group_info(runs: list[Run], groups: list[str]) -> dict[str, GroupInfo]:
    info = {}
    for group in groups:
        members = [x for x in runs if x.group == group]
        key = members[0].key
        info[group] = GroupInfo(key.source, key.path, key.execution, len(members), sum(x.result.ok for x in members))
    return info
