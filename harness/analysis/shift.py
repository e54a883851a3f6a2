"""The decision rule for speed and memory: has one group's per-run value shifted against another's?

Inputs are one ln value per run (:mod:`harness.analysis.per_run`) for each side; side ``a`` is the
current (or compared) group, side ``b`` the baseline (or reference). The rule (stats.md §4, §6):

* estimate d = median(a) - median(b) (ln units: exp(d) is the ratio of per-run medians);
* sigma = max(sigma_obs, sigma_floor): sigma_obs is the robust within-side spread of the per-run
  values, sigma_floor the stored A/A noise floor (:mod:`harness.analysis.noise`) or the rule's default;
* resolution(n) = t_(1-alpha, 2n-2) sigma sqrt(2/n), the noise floor at n = min(n_a, n_b) runs per side;
* n_req = the runs per side that detect a ``detect``-sized change with 90 % power (stats.runs_needed).

One-sided (a gate: ``worse`` is "lower" or "higher"), hurdle = max(threshold, resolution):
  n < n_min                                      -> INCONCLUSIVE ("N more runs needed", per side)
  worsening > hurdle, p < a                      -> REGRESSION
  n >= n_req and worsening <= hurdle             -> NO_REGRESSION
  worsening > hurdle, not significant            -> INCONCLUSIVE, *suspected* (as many runs again)
  otherwise                                      -> INCONCLUSIVE (n_req - n more runs per side)
Two-sided (``worse`` None, compare's faster/slower): the same with |d| and HIGHER / LOWER / NO_CHANGE.

Power is required for the "nothing changed" verdicts: above n_min an exact test plus the
resolution hurdle already bound false alarms at any n, while a "no change" from too few runs is
a claim the data cannot back. Power alone is not enough either: it is a property of the design,
not of the data. Measured on a quiet machine (the gate calibration, 5 runs per side): a 15 %
slowdown was observed as -17 % with p = 0.075 and would have passed as "no regression beyond 5 %".
So a "nothing changed" verdict also needs the observed change inside the hurdle; an observed change
beyond it that is not significant is *suspected*: INCONCLUSIVE, and what ``--confirm`` re-runs.
Speed uses the exact Mann-Whitney U (robust to runs in a 3x slower
mode; it cannot reject below 4 runs per side); memory, whose per-run noise is tiny and near-normal,
uses Welch's t on ln values with each side's SD raised to the floor (n_min 2; 3 with XLA).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from harness.analysis import stats
from harness.store.jsonio import json_safe


class Outcome(str, enum.Enum):
    REGRESSION = "regression"
    NO_REGRESSION = "no-regression"
    HIGHER = "higher"
    LOWER = "lower"
    NO_CHANGE = "no-change"
    INCONCLUSIVE = "inconclusive"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Rule:
    """The constants of one kind of decision (validated by the module's tests, documented in README)."""

    name: str
    test: str  # "mann-whitney" | "welch"
    n_min: int  # runs per side below which nothing is decided
    detect: float  # ln size of the change a "no change" verdict must have been able to see (90 % power)
    default_floor: float  # per-run SD (ln) assumed when no noise floor is stored
    alpha: float = stats.ALPHA
    power: float = 0.9


# Speed: a 15 % per-step slowdown must be detectable; without a stored floor, a per-run SD of
# 0.05 is assumed (the quietest spread worth believing from a handful of runs; measured on the
# 2-core VMs: 0.12-0.25, see README "Statistics").
SPEED = Rule("speed", "mann-whitney", n_min=4, detect=math.log(1.15), default_floor=0.05)
# Memory: per-run peak RSS varies by ~0.1 % (1.2 % with XLA); 0.5 % is the default floor.
MEMORY = Rule("memory", "welch", n_min=2, detect=math.log(1.05), default_floor=math.log(1.005))
MEMORY_XLA_N_MIN = 3


@dataclass(frozen=True)
class Shift:
    """One decision and every number behind it (ln units unless the name says otherwise)."""

    rule: str
    test: str
    alternative: str  # "less" | "greater" | "two-sided": the direction tested for a
    n_a: int
    n_b: int
    estimate: float | None  # median(a) - median(b)
    ci_low: float | None  # 95 % interval of the shift (Hodges-Lehmann for U, t for Welch)
    ci_high: float | None
    p_value: float | None
    sigma_observed: float | None
    sigma_floor: float
    floor_source: str  # where sigma_floor came from: a noise.json file, or "default"
    sigma: float
    threshold: float
    resolution: float | None  # None below 2 runs per side (infinite)
    detect: float
    n_min: int
    n_required: int | None  # None: more than stats.RUNS_NEEDED_MAX
    more_a: int | None  # runs still needed on each side (None: more than stats.RUNS_NEEDED_MAX)
    more_b: int | None
    outcome: Outcome

    @property
    def n(self) -> int:
        return min(self.n_a, self.n_b)

    @property
    def ratio(self) -> float | None:
        return None if self.estimate is None else math.exp(self.estimate)

    @property
    def ci_ratio(self) -> tuple[float | None, float | None]:
        return tuple(None if v is None else math.exp(v) for v in (self.ci_low, self.ci_high))  # type: ignore[return-value]

    @property
    def hurdle(self) -> float | None:
        return None if self.resolution is None else max(self.threshold, self.resolution)

    @property
    def decided(self) -> bool:
        return self.outcome is not Outcome.INCONCLUSIVE

    @property
    def worsening(self) -> float | None:
        """The observed change in the direction tested (|d| when two-sided), ln units."""
        if self.estimate is None:
            return None
        return {"less": -self.estimate, "greater": self.estimate}.get(self.alternative, abs(self.estimate))

    @property
    def suspected(self) -> bool:
        """A regression, or an observed change beyond the hurdle that is not (yet) significant: what a
        confirmation re-runs before a gate may pass or fail."""
        if self.outcome is Outcome.REGRESSION:
            return True
        hurdle, worsening = self.hurdle, self.worsening
        return (
            self.outcome is Outcome.INCONCLUSIVE and hurdle is not None and worsening is not None
            and self.n >= self.n_min and worsening > hurdle
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        data.update(ratio=self.ratio, ci_ratio=list(self.ci_ratio), hurdle=self.hurdle, suspected=self.suspected)
        return dict(json_safe(data))


def decide(
    a: Sequence[float],
    b: Sequence[float],
    *,
    rule: Rule,
    worse: str | None,
    threshold: float = 0.0,
    sigma_floor: float | None = None,
    floor_source: str = "default",
    n_min: int | None = None,
) -> Shift:
    """Decide whether ``a`` shifted against ``b`` (per-run ln values); ``worse`` "lower"/"higher" for a
    one-sided gate with ``threshold`` (ln), None for a two-sided comparison."""
    xa, xb = stats.finite(a), stats.finite(b)
    alternative = {"lower": "less", "higher": "greater", None: "two-sided"}[worse]
    alpha = rule.alpha if worse else rule.alpha / 2
    n_min = n_min or rule.n_min
    floor = rule.default_floor if sigma_floor is None else sigma_floor
    observed = stats.pooled_robust_sd([xa, xb])
    sigma = max(observed or 0.0, floor)
    n = min(len(xa), len(xb))
    med_a, med_b = stats.median(xa), stats.median(xb)
    estimate = med_a - med_b if med_a is not None and med_b is not None else None
    detect = max(rule.detect, 2 * threshold)
    n_req = stats.runs_needed(sigma, detect=detect, threshold=threshold, alpha=alpha, power=rule.power)
    res = stats.resolution(sigma, n, alpha)
    p = _p_value(rule, xa, xb, alternative, floor) if n else None
    low, high = _interval(rule, xa, xb, floor)
    outcome = _outcome(estimate, p, n, n_min, n_req, max(threshold, res), worse, rule.alpha)
    # Runs per side for a decision either way: at least n_min, and n_req for a powered "no change".
    need = None if n_req is None else max(n_min, n_req)
    more = [None if need is None else max(0, need - k) for k in (len(xa), len(xb))]
    if outcome is not Outcome.INCONCLUSIVE:
        more = [0, 0]
    elif need is not None and more == [0, 0]:  # suspected: powered, beyond the hurdle, not significant
        more = [need, need]  # as many runs again per side (what a --confirm of that size adds)
    return Shift(
        rule=rule.name, test=rule.test, alternative=alternative, n_a=len(xa), n_b=len(xb), estimate=estimate,
        ci_low=low, ci_high=high, p_value=p, sigma_observed=observed, sigma_floor=floor, floor_source=floor_source,
        sigma=sigma, threshold=threshold, resolution=None if math.isinf(res) else res, detect=detect, n_min=n_min,
        n_required=n_req, more_a=more[0], more_b=more[1], outcome=outcome,
    )  # fmt: skip


def _outcome(
    estimate: float | None,
    p: float | None,
    n: int,
    n_min: int,
    n_req: int | None,
    hurdle: float,
    worse: str | None,
    alpha: float,
) -> Outcome:
    if estimate is None or p is None or n < n_min:
        return Outcome.INCONCLUSIVE
    powered = n_req is not None and n >= n_req
    if worse is None:
        if abs(estimate) > hurdle and p < alpha:
            return Outcome.HIGHER if estimate > 0 else Outcome.LOWER
        return Outcome.NO_CHANGE if powered and abs(estimate) <= hurdle else Outcome.INCONCLUSIVE
    worsening = -estimate if worse == "lower" else estimate
    if worsening > hurdle and p < alpha:
        return Outcome.REGRESSION
    return Outcome.NO_REGRESSION if powered and worsening <= hurdle else Outcome.INCONCLUSIVE


def _p_value(rule: Rule, xa: np.ndarray, xb: np.ndarray, alternative: str, floor: float) -> float | None:
    if rule.test == "welch":
        return stats.welch_p(xa, xb, alternative, sd_floor=floor)
    return stats.mannwhitney_p(xa, xb, alternative)


def _interval(rule: Rule, xa: np.ndarray, xb: np.ndarray, floor: float) -> tuple[float | None, float | None]:
    """95 % interval of the shift a - b, from the same test's distribution."""
    if len(xa) == 0 or len(xb) == 0:
        return None, None
    if rule.test == "mann-whitney":
        found = stats.shift_interval(xa, xb, 0.95)
        return (None, None) if found is None else found
    if len(xa) < 2 and len(xb) < 2:
        return None, None
    sx = max(float(xa.std(ddof=1)) if len(xa) > 1 else 0.0, floor)
    sy = max(float(xb.std(ddof=1)) if len(xb) > 1 else 0.0, floor)
    vx, vy = sx * sx / len(xa), sy * sy / len(xb)
    df = (vx + vy) ** 2 / (vx * vx / max(len(xa) - 1, 1) + vy * vy / max(len(xb) - 1, 1)) if vx + vy else 1.0
    half = float(sps.t.ppf(0.975, df)) * math.sqrt(vx + vy)
    diff = float(xa.mean() - xb.mean())
    return diff - half, diff + half


# --- words for the summaries (decisions are the data above; this only renders them) ------------


def pct(ln_value: float | None, signed: bool = True) -> str:
    """A ln difference as a percentage change: 0.0953 -> '+10.0 %'."""
    if ln_value is None or not math.isfinite(ln_value):
        return "n/a"
    return format(100 * math.expm1(ln_value), "+.1f" if signed else ".1f") + " %"


def more_runs_text(shift: Shift, a: str, b: str) -> str:
    """'13 more runs of A and 13 more of B needed' (None: more than the cap)."""
    if shift.more_a is None or shift.more_b is None:
        return f"more than {stats.RUNS_NEEDED_MAX} runs per side needed at this noise"
    parts = [
        f"{k} more run{'s' if k != 1 else ''} of {name}" for k, name in ((shift.more_a, a), (shift.more_b, b)) if k
    ]
    return " and ".join(parts) + " needed" if parts else "no more runs needed"


def noise_text(shift: Shift) -> str:
    """'σ 0.125 per run (noise floor), noise floor at n=4: 17.2 %'."""
    if shift.sigma_observed is not None and shift.sigma_observed >= shift.sigma_floor:
        source = "observed"
    else:
        source = "noise floor" if shift.floor_source != "default" else "default floor"
    text = f"σ {shift.sigma:.3f} per run ({source})"
    if shift.resolution is not None:
        text += f", noise floor at n={shift.n}: {pct(shift.resolution, signed=False)}"
    return text


def ci_text(shift: Shift) -> str:
    low, high = shift.ci_ratio
    if low is None or high is None:
        return "no 95 % CI with this few runs"
    return f"95 % CI ×{low:.3f}..×{high:.3f}"


def p_text(shift: Shift) -> str:
    name = "U" if shift.test == "mann-whitney" else "Welch t"
    if shift.p_value is None:
        return f"{name} p n/a"
    return f"{name} p<0.001" if shift.p_value < 0.001 else f"{name} p={shift.p_value:.3f}"
