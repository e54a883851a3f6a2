"""Group identity and the values a verdict is computed from, taken from results in one way only.

A **group** is the set of runs one verdict speaks for: the same source (a results directory, a
backend, a machine of a history entry), the same path, and the same execution settings (input
mode, steps per execution, training loop, op determinism when it is not the automatic setting).
:class:`GroupKey` (source, path, ``RunSpec.execution``) is its one definition; compare, report,
regressions, history and the end-of-run summary all label runs with :func:`label_runs`, so no two
views can group the same results differently.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.spec.run_spec import RunSpec
from harness.store.results import RunResult


def default_source(result: RunResult) -> str:
    """The source of a result when none is given: the backend that produced it."""
    backend = result.environment.get("backend") if isinstance(result.environment, dict) else None
    return str(backend) if backend else "local"


@dataclass(frozen=True, order=True)
class GroupKey:
    """What makes runs one group: source x path x execution settings."""

    source: str
    path: str  # PathSpec.name, e.g. "cpu-fp32"
    execution: str  # RunSpec.execution, e.g. "tfdata,spe1"

    @classmethod
    def of(cls, result: RunResult, source: str) -> GroupKey:
        spec = result.run_spec
        return cls(source, spec.path.name, spec.execution)


def group_labels(keys: Iterable[GroupKey]) -> dict[GroupKey, str]:
    """The shortest unambiguous label of each key.

    The path name; suffixed ``[execution]`` when runs of that path differ in execution settings
    (the seed way vs the fast preset: ``cpu-fp32[numpy,spe1]`` vs ``cpu-fp32[numpy,spe64,compiled]``);
    prefixed ``source:`` when that label occurs in more than one source (``local:cpu-fp32`` vs
    ``docker:cpu-fp32``).
    """
    keys = sorted(set(keys))
    executions: dict[str, set[str]] = {}
    for key in keys:
        executions.setdefault(key.path, set()).add(key.execution)
    names = {k: k.path + (f"[{k.execution}]" if len(executions[k.path]) > 1 else "") for k in keys}
    sources: dict[str, set[str]] = {}
    for key, name in names.items():
        sources.setdefault(name, set()).add(key.source)
    return {k: (f"{k.source}:{name}" if len(sources[name]) > 1 else name) for k, name in names.items()}


@dataclass(frozen=True)
class Run:
    """One result with its group (key and label)."""

    result: RunResult
    spec: RunSpec
    key: GroupKey
    group: str  # the group's label

    @property
    def source(self) -> str:
        return self.key.source

    @property
    def unit(self) -> tuple[str, str]:
        """What is compared across groups: the same benchmark on the same dataset."""
        return (self.spec.benchmark, self.spec.dataset)

    @property
    def where(self) -> str:
        return f"{self.group} seed {self.spec.seed}"


def label_runs(results: Sequence[RunResult], sources: Sequence[str] | None = None) -> list[Run]:
    """Every result with its group; ``sources`` (one per result) default to each result's backend."""
    if sources is None:
        sources = [default_source(r) for r in results]
    if len(sources) != len(results):
        raise ValueError(f"sources must name the source of every result: {len(sources)} for {len(results)}")
    keys = [GroupKey.of(r, s) for r, s in zip(results, sources, strict=True)]
    labels = group_labels(keys)
    return [Run(r, r.run_spec, k, labels[k]) for r, k in zip(results, keys, strict=True)]


def groups_of(runs: Iterable[Run]) -> list[str]:
    """Group labels in first-seen order."""
    return list(dict.fromkeys(run.group for run in runs))


# --- values taken from one result ------------------------------------------------------------


def last_val_accuracy(result: RunResult) -> float | None:
    return result.epochs[-1].val_accuracy if result.epochs else None


def generalization_gap(result: RunResult) -> float | None:
    """Train accuracy minus validation accuracy at the last epoch (recorded or derived)."""
    if result.generalization_gap is not None:
        return result.generalization_gap
    if not result.epochs or result.epochs[-1].val_accuracy is None:
        return None
    return result.epochs[-1].train_accuracy - result.epochs[-1].val_accuracy


def is_synthetic(result: RunResult) -> bool:
    return bool(result.dataset is not None and result.dataset.synthetic) or result.run_spec.dataset == "synthetic"


def steady_step_times_ms(result: RunResult) -> list[float]:
    """Steady-state per-step times (ms): the warm-up samples are dropped.

    ``timing.step_time_ms`` holds every sample from the first step on, one sample per
    ``steps_per_sample`` steps, and ``warmup_steps`` counts steps (see store.results.Timing).
    """
    t = result.timing
    if t is None or not t.step_time_ms:
        return []
    skip = math.ceil(t.warmup_steps / max(t.steps_per_sample, 1))
    return [v for v in t.step_time_ms[skip:] if v is not None and math.isfinite(v) and v > 0]


def metric_value(result: RunResult, metric: str) -> float | None:
    """``test_accuracy`` or ``val_accuracy`` (last epoch) of one result."""
    if metric == "test_accuracy":
        return result.test_accuracy
    if metric == "val_accuracy":
        return last_val_accuracy(result)
    raise ValueError(f"unknown metric {metric!r}")


def per_seed_pp(results: Iterable[RunResult], metric: str) -> dict[int, float]:
    """Per-seed value of an accuracy metric in percentage points (repeats of one seed averaged)."""
    acc: dict[int, list[float]] = {}
    for result in results:
        value = metric_value(result, metric)
        if value is not None and math.isfinite(value):
            acc.setdefault(result.run_spec.seed, []).append(100.0 * value)
    return {seed: sum(v) / len(v) for seed, v in sorted(acc.items())}


def metric_vector(result: RunResult) -> list[float | int | None]:
    """Everything that must be bit-identical for two deterministic runs (timings excluded)."""
    vec: list[float | int | None] = [result.test_accuracy, result.test_loss]
    for e in result.epochs:
        vec.extend([e.epoch, e.train_loss, e.train_accuracy, e.val_loss, e.val_accuracy])
    return vec
