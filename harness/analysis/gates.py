"""Regression gates: which metric may worsen by how much (``throughput:-5%``), parsed at the edge.

:mod:`harness.analysis.regress` decides each gate against a baseline. TF-free.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from harness.errors import GateError

# metric -> (unit, direction in which the metric gets better)
METRICS: dict[str, tuple[str, str]] = {
    "throughput": ("%", "higher"),
    "step_time_p50": ("%", "lower"),
    "peak_rss": ("%", "lower"),
    "gpu_peak_mem": ("%", "lower"),
    "compile_time": ("%", "lower"),
    "test_accuracy": ("pp", "higher"),
    "val_accuracy": ("pp", "higher"),
}


_GATE_RE = re.compile(r"^\s*([A-Za-z0-9_]+)\s*:\s*([+-]?)\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(%|pp)\s*$")


@dataclass(frozen=True)
class Gate:
    """Tolerated worsening of one metric: ``threshold`` (>= 0) in ``unit``."""

    metric: str
    threshold: float
    unit: str

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.metric][1] == "higher"

    def __str__(self) -> str:
        sign = "-" if self.higher_is_better else "+"
        return f"{self.metric}:{sign}{self.threshold:g}{self.unit}"


def _syntax() -> str:
    return ", ".join(f"{m}:{'-' if d == 'higher' else '+'}N{u}" for m, (u, d) in METRICS.items())


def parse_gate(text: str) -> Gate:
    """Parse ``metric:[sign]number unit``, e.g. ``throughput:-5%`` or ``test_accuracy:-0.5pp``.

    The sign, when given, must point in the metric's worsening direction (throughput falls,
    step time rises); the number is the worsening tolerated before a change is a regression.
    """
    if not isinstance(text, str):
        raise GateError(f"gate must be a string like 'throughput:-5%', got {text!r}")
    m = _GATE_RE.match(text)
    if not m:
        raise GateError(f"bad gate {text!r}: expected METRIC:[+-]NUMBER UNIT, one of {_syntax()}")
    metric, sign, number, unit = m.group(1), m.group(2), m.group(3), m.group(4)
    if metric not in METRICS:
        raise GateError(f"bad gate {text!r}: unknown metric {metric!r}; valid metrics are {sorted(METRICS)}")
    want_unit, better = METRICS[metric]
    if unit != want_unit:
        raise GateError(f"bad gate {text!r}: {metric} is gated in {want_unit!r}, got {unit!r}")
    worse_sign = "-" if better == "higher" else "+"
    if sign and sign != worse_sign:
        raise GateError(
            f"bad gate {text!r}: {metric} gets worse when it {'falls' if better == 'higher' else 'rises'}; "
            f"write {metric}:{worse_sign}{number}{unit}"
        )
    threshold = float(number)
    if not math.isfinite(threshold):
        raise GateError(f"bad gate {text!r}: threshold must be finite")
    return Gate(metric, threshold, unit)


def check_unique(gates: Sequence[Gate]) -> list[Gate]:
    """The gates, refusing a metric gated twice."""
    seen: set[str] = set()
    for gate in gates:
        if gate.metric in seen:
            raise GateError(f"metric {gate.metric!r} is gated more than once in {[str(g) for g in gates]}")
        seen.add(gate.metric)
    return list(gates)


def parse_gates(texts: Sequence[str]) -> list[Gate]:
    """Parse several gates; a metric gated twice is an error."""
    return check_unique([parse_gate(t) for t in texts])


def default_gates(margin_pp: float = 1.0) -> list[Gate]:
    """Gates used with ``--baseline`` and no ``--gate``: throughput -5 %, test accuracy -margin."""
    return [Gate("throughput", 5.0, "%"), Gate("test_accuracy", float(margin_pp), "pp")]
