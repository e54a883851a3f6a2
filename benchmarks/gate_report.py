"""Gate calibration figures from the campaigns' records: false alarms, detections, measured noise, runs needed."""

from __future__ import annotations

import math
from typing import Any

from scipy import stats as sps

from harness.analysis import stats

GATE_THETA = -math.log(0.95)  # throughput -5 %


def power(sigma: float, n: int, detect: float, theta: float = GATE_THETA, alpha: float = stats.ALPHA) -> float:
    """Per-campaign power of "worse than max(gate, noise floor at n) and significant" (before confirm),
    the approximation stats.runs_needed inverts."""
    if n < 2 or sigma <= 0:
        return 0.0 if n < 2 else 1.0
    se = sigma * math.sqrt(2.0 / n)
    hurdle = max(theta, stats.resolution(sigma, n, alpha))
    return float(sps.t.cdf((detect - hurdle) / se, 2 * n - 2))


def _ln_throughputs(campaign: dict[str, Any], sides: tuple[str, ...]) -> list[float]:
    return [math.log(r["throughput_samples_per_s"]) for s in sides for r in campaign["runs"][s]
            if r.get("throughput_samples_per_s")]  # fmt: skip


def summarize(campaigns: list[dict[str, Any]], *, runs: int, slowdown: float) -> dict[str, Any]:
    """Counts, rates, the measured per-run spread and the run counts it implies."""
    aa = [c for c in campaigns if c["kind"] == "aa"]
    ab = [c for c in campaigns if c["kind"] == "ab"]

    def count(group: list[dict[str, Any]], key: str, value: Any) -> int:
        return sum(1 for c in group if c["gate"].get(key) == value)

    # Identical configurations: both sides of an A/A campaign, the A side of an A/B campaign.
    sets = [_ln_throughputs(c, ("A", "B") if c["kind"] == "aa" else ("A",)) for c in campaigns]
    sigma_within = stats.pooled_robust_sd(sets)
    sigma_session = stats.robust_sd([v for s in sets for v in s])
    detect = math.log1p(slowdown)
    realized = [r["realized_factor"] for c in ab for r in c["runs"]["B"] if r.get("realized_factor")]
    realized += [v for c in ab for v in c["gate"].get("confirm_realized", [])]
    loads = [r.get("load_1m_start") for c in campaigns for s in ("A", "B") for r in c["runs"][s]]
    loads = [v for v in loads if v is not None]
    sigma = max(sigma_within or 0.0, sigma_session or 0.0) or None
    needed = {}
    if sigma is not None:
        needed = {
            "runs_needed_power_0.90": stats.runs_needed(sigma, detect=detect, threshold=GATE_THETA),
            "runs_needed_power_0.97": stats.runs_needed(sigma, detect=detect, threshold=GATE_THETA, power=0.97),
            "power_at_default_runs": power(sigma, runs, detect),
        }
    summary = {
        "aa_campaigns": len(aa),
        "aa_false_alarms": count(aa, "exit_code", 1),
        "aa_inconclusive": count(aa, "verdict", "WARN"),
        "aa_pass": count(aa, "verdict", "PASS"),
        # Suspected: what the gate re-ran (a REGRESSION first, or INCONCLUSIVE beyond the gate unproven).
        "aa_suspected_before_confirm": sum(1 for c in aa if c["gate"].get("confirm_run_ids")),
        "ab_campaigns": len(ab),
        "ab_detected": count(ab, "exit_code", 1),
        "ab_inconclusive": count(ab, "verdict", "WARN"),
        "ab_missed_as_pass": count(ab, "verdict", "PASS"),
        "gate_errors": sum(1 for c in campaigns if c["gate"].get("exit_code") not in (0, 1)),
        "aa_target_met": _target(count(aa, "exit_code", 1), len(aa), per=20),
        "ab_target_met": _target(len(ab) - count(ab, "exit_code", 1), len(ab), per=10),
        "sigma_within_campaign": sigma_within,
        "sigma_session": sigma_session,
        "sigma": sigma,
        "runs_per_side": runs,
        "detect": detect,
        "realized_slowdown": {
            "n": len(realized),
            "median": stats.median(realized),
            "min": min(realized, default=None),
            "max": max(realized, default=None),
        },  # fmt: skip
        "load_1m_at_run_start": {"median": stats.median(loads), "max": max(loads, default=None)},
        **needed,
    }
    return {**summary, **acceptance(summary)}


def _target(misses: int, campaigns: int, *, per: int) -> bool | None:
    """At most one miss (a false alarm, an undetected slowdown) per ``per`` campaigns. Fewer campaigns than
    ``per`` decide only a failure (two misses already exceed "1 in 20" / "9 of 10"), never a success."""
    if campaigns >= per:
        return misses <= campaigns // per
    return False if misses > 1 else None


def acceptance(s: dict[str, Any]) -> dict[str, str]:
    """The calibration's own verdict, as data: "met", "not met", or "inconclusive" (and why).

    Too few campaigns to evaluate a target is INCONCLUSIVE, never "met"; so is a measured noise at
    which the run count used cannot detect the slowdown in 9 of 10 campaigns, whatever the few
    campaigns happened to show (a lucky streak is not a capability).
    """
    n97 = s.get("runs_needed_power_0.97")
    underpowered = s.get("sigma") is not None and (n97 is None or n97 > s["runs_per_side"])
    need = "more than 1000" if n97 is None else str(n97)
    if s["aa_target_met"] is False:
        return {
            "acceptance": "not met",
            "acceptance_why": f"{s['aa_false_alarms']} false alarms in {s['aa_campaigns']} A/A pairs",
        }
    if s["ab_target_met"] is False:
        why = f"{s['ab_detected']} of {s['ab_campaigns']} slowdowns detected"
        if underpowered:
            why += f"; at sigma {s['sigma']:.3f} per run that needs {need} runs per side, not {s['runs_per_side']}"
        return {"acceptance": "not met", "acceptance_why": why}
    if underpowered:
        return {"acceptance": "inconclusive", "acceptance_why": (
            f"at the measured sigma {s['sigma']:.3f} per run, {s['runs_per_side']} runs per side cannot detect a "
            f"15 % slowdown in 9 of 10 campaigns: that needs {need} runs per side")}  # fmt: skip
    if s["aa_target_met"] is None or s["ab_target_met"] is None:
        return {"acceptance": "inconclusive", "acceptance_why": (
            f"too few campaigns to evaluate the targets: {s['aa_campaigns']} A/A of 20, "
            f"{s['ab_campaigns']} A/B of 10")}  # fmt: skip
    return {"acceptance": "met", "acceptance_why": "both targets met at a run count the measured noise supports"}


def _f(value: Any, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def render_markdown(report: dict[str, Any]) -> str:
    s, st = report["summary"], report["settings"]
    lines = [
        f"# Gate calibration ({report['created_utc']})",
        "",
        f"Gate `{report['gate']}` with `--confirm {st['confirm']}`; {st['runs']} runs per side, interleaved, "
        f"each a fresh local worker; {st['model']} on {st['dataset']}, {st['epochs']} epoch(s)"
        + (f", {st['max_train_samples']} training samples" if st["max_train_samples"] else "")
        + f"; B slowed by sleeping {100 * st['slowdown']:g} % of every step."
        + _stopped(report),
        "",
        "| figure | measured | target |",
        "|---|---|---|",
        f"| A/A: false alarms (exit 1) | **{s['aa_false_alarms']} of {s['aa_campaigns']}** "
        f"({s['aa_suspected_before_confirm']} suspected before confirm, {s['aa_inconclusive']} INCONCLUSIVE, "
        f"{s['aa_pass']} PASS) | ≤ 1 in 20 |",
        f"| A/B: 15 % slowdown detected (exit 1) | **{s['ab_detected']} of {s['ab_campaigns']}** "
        f"({s['ab_inconclusive']} INCONCLUSIVE, {s['ab_missed_as_pass']} PASS) | ≥ 9 of 10 |",
        f"| realized slowdown factor (in-process, median / min / max) | {_f(s['realized_slowdown']['median'])} / "
        f"{_f(s['realized_slowdown']['min'])} / {_f(s['realized_slowdown']['max'])} | {1 + st['slowdown']:.3f} |",
        f"| per-run sd of ln throughput, within campaigns / whole session | {_f(s['sigma_within_campaign'])} / "
        f"{_f(s['sigma_session'])} | ≤ 0.06 for 15 % at 5 runs |",
        f"| 1-min load average at run start (median / max) | {_f(s['load_1m_at_run_start']['median'], '.1f')} / "
        f"{_f(s['load_1m_at_run_start']['max'], '.1f')} | < 0.5 x cores |",
    ]
    if s.get("sigma") is not None:
        n90, n97 = s["runs_needed_power_0.90"], s["runs_needed_power_0.97"]
        lines += [
            f"| runs per side a 15 % slowdown needs at this sigma: 90 % power / 97 % (9 of 10 reliably) | "
            f"**{_f(n90, 'd') if n90 else '> 1000'} / {_f(n97, 'd') if n97 else '> 1000'}** | ≤ {s['runs_per_side']} |",
            f"| power per campaign at {s['runs_per_side']} runs per side (before confirm) | "
            f"{_f(s['power_at_default_runs'], '.2f')} | ≥ 0.97 |",
        ]
    lines += ["", _verdict(s), ""]
    return "\n".join(lines)


def _stopped(report: dict[str, Any]) -> str:
    st, done = report["settings"], report.get("campaigns_done")
    planned = st.get("aa_pairs", 0) + st.get("ab_campaigns", 0)
    if done is None or done >= planned:
        return ""
    return f" Stopped after {done} of the {planned} planned campaigns (A/A and A/B alternate)."


def _verdict(s: dict[str, Any]) -> str:
    def word(met: bool | None, what: str) -> str:
        return f"not evaluated (fewer than {what})" if met is None else ("met" if met else "NOT met")

    targets = (
        f"A/A target {word(s['aa_target_met'], '20 pairs')}; A/B target {word(s['ab_target_met'], '10 campaigns')}."
    )
    return f"**Acceptance: {s['acceptance'].upper()}**: {s['acceptance_why']}. {targets}"
