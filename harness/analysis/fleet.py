"""Which fleet host's numbers differ from the others' (``tfparity fleet check``).

Every host ran the same seeded runs (the float64 numerics probe, a short fp32 run); for each
quantity the hosts are grouped by agreement within a relative tolerance. The odd host is named only
when something decides it: a strict majority that agrees without it, or a reference host the user
trusts. Two hosts that disagree with no reference are INCONCLUSIVE: either could be the wrong one,
and a wrong name is worse than none. A host's own probe against its in-process float64 clone is a
reference of its own: a probe that fails there names that host whatever the others say.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class FleetFinding:
    """One quantity across hosts: OK, FAIL (``odd`` names the hosts that differ) or INCONCLUSIVE."""

    quantity: str
    status: str  # "OK" | "FAIL" | "INCONCLUSIVE"
    odd: tuple[str, ...]
    summary: str


def agree(a: float, b: float, rel_tol: float) -> bool:
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= rel_tol * max(abs(a), abs(b), 1e-300)


def _groups(values: dict[str, float], rel_tol: float) -> list[list[str]]:
    """Hosts grouped with the first host of a group they agree with (in host order)."""
    groups: list[list[str]] = []
    for host, value in values.items():
        for group in groups:
            if agree(values[group[0]], value, rel_tol):
                group.append(host)
                break
        else:
            groups.append([host])
    return groups


def odd_hosts(
    quantity: str, values: dict[str, float | None], rel_tol: float, reference: str | None = None
) -> FleetFinding:
    """Name the host(s) whose ``quantity`` differs, when a majority or ``reference`` decides it."""
    missing = tuple(h for h, v in values.items() if v is None)
    have = {h: float(v) for h, v in values.items() if v is not None}
    if missing:
        return FleetFinding(quantity, "FAIL", missing, f"{quantity}: no value from {', '.join(missing)} (run failed)")
    groups = _groups(have, rel_tol)
    shown = ", ".join(f"{h}={v:.17g}" for h, v in have.items())
    if len(groups) <= 1:
        return FleetFinding(quantity, "OK", (), f"{quantity}: all {len(have)} hosts agree within {rel_tol:g} ({shown})")
    if reference is not None and reference in have:
        trusted = next(g for g in groups if reference in g)
        odd = tuple(h for h in have if h not in trusted)
        return FleetFinding(
            quantity, "FAIL", odd, f"{quantity}: {', '.join(odd)} differ from reference {reference} ({shown})"
        )
    biggest = max(groups, key=len)
    if len(biggest) * 2 > len(have):
        odd = tuple(h for h in have if h not in biggest)
        return FleetFinding(
            quantity, "FAIL", odd, f"{quantity}: {', '.join(odd)} differ from the {len(biggest)} others ({shown})"
        )
    return FleetFinding(
        quantity,
        "INCONCLUSIVE",
        (),
        f"{quantity}: hosts disagree ({shown}) and no majority or reference decides which is wrong; "
        "add a third host or name a trusted one with --reference",
    )


def probe_self_check(passed: dict[str, bool | None]) -> FleetFinding:
    """Each host's probe against its own float64 clone: a failure names that host on its own."""
    odd = tuple(h for h, ok in passed.items() if ok is not True)
    if not odd:
        return FleetFinding("probe vs float64", "OK", (), "probe vs float64: every host within tolerance")
    return FleetFinding("probe vs float64", "FAIL", odd, f"probe vs float64: beyond tolerance on {', '.join(odd)}")
