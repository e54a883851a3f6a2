"""benchmarks/gate_calibration.py: the figures from campaign records, and one tiny campaign with real workers."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import gate_calibration, gate_report
from harness.analysis import stats
from tests.helpers import ROOT


def _campaign(kind: str, exit_code: int, throughputs: dict[str, list[float]], realized: float | None = None) -> dict:
    verdict = {1: "FAIL", 0: "WARN"}[exit_code]
    runs = {side: [{"throughput_samples_per_s": t, "realized_factor": realized if side == "B" else None,
                    "load_1m_start": 1.0} for t in ts] for side, ts in throughputs.items()}  # fmt: skip
    decision = "regression" if exit_code else "inconclusive"
    return {"kind": kind, "runs": runs, "gate": {"exit_code": exit_code, "verdict": verdict, "decision": decision,
                                                 "first_decision": decision, "confirm_realized": []}}  # fmt: skip


def test_summary_counts_rates_and_the_runs_the_measured_noise_needs() -> None:
    spread = [9000.0 * math.exp(d) for d in (-0.2, -0.1, 0.0, 0.1, 0.2)]  # sd of ln ~0.16
    campaigns = [_campaign("aa", 1 if i == 0 else 0, {"A": spread, "B": spread}) for i in range(20)]
    campaigns += [_campaign("ab", 1 if i < 8 else 0, {"A": spread, "B": [t / 1.15 for t in spread]}, 1.15)
                  for i in range(10)]  # fmt: skip
    s = gate_report.summarize(campaigns, runs=5, slowdown=0.15)
    assert (s["aa_false_alarms"], s["aa_campaigns"], s["aa_target_met"]) == (1, 20, True)
    assert (s["ab_detected"], s["ab_campaigns"], s["ab_target_met"]) == (8, 10, False)
    expected_sigma = stats.pooled_robust_sd(
        [[math.log(t) for t in spread * 2]] * 20 + [[math.log(t) for t in spread]] * 10
    )
    assert s["sigma_within_campaign"] == pytest.approx(expected_sigma)
    assert s["runs_needed_power_0.90"] == stats.runs_needed(
        s["sigma"], detect=math.log(1.15), threshold=-math.log(0.95)
    )
    assert s["runs_needed_power_0.90"] > 5 and s["power_at_default_runs"] < 0.9
    assert s["realized_slowdown"]["median"] == 1.15
    text = gate_report.render_markdown({"created_utc": "now", "gate": "throughput:-5%", "summary": s, "settings": {
        "confirm": 5, "runs": 5, "model": "baseline", "dataset": "mnist-5k", "epochs": 11, "max_train_samples": None,
        "slowdown": 0.15}})  # fmt: skip
    assert "**1 of 20**" in text and "**8 of 10**" in text
    assert s["acceptance"] == "not met"
    assert f"**Acceptance: NOT MET**: 8 of 10 slowdowns detected; at sigma {s['sigma']:.3f} per run that needs " \
        f"{s['runs_needed_power_0.97']} runs per side, not 5" in text  # fmt: skip
    few = gate_report.summarize(campaigns[:2], runs=5, slowdown=0.15)
    # 2 pairs, 1 false alarm: the target is not evaluated, and the noise says 5 runs cannot decide
    assert (few["aa_target_met"], few["acceptance"]) == (None, "inconclusive")
    assert "cannot detect a 15 % slowdown in 9 of 10 campaigns" in few["acceptance_why"]


def test_too_few_campaigns_decide_only_a_failure_and_a_quiet_run_passes() -> None:
    quiet = [9000.0 * math.exp(d) for d in (-0.02, -0.01, 0.0, 0.01, 0.02)]  # sd of ln ~0.016
    two_alarms = [_campaign("aa", 1, {"A": quiet, "B": quiet}) for _ in range(2)]
    s = gate_report.summarize(two_alarms, runs=5, slowdown=0.15)
    assert (s["aa_target_met"], s["acceptance"]) == (False, "not met")  # 2 false alarms exceed 1 in 20 already
    slowed = {"A": quiet, "B": [t / 1.15 for t in quiet]}
    good = [_campaign("aa", 0, {"A": quiet, "B": quiet}) for _ in range(20)]
    good += [_campaign("ab", 1, slowed) for _ in range(10)]
    s = gate_report.summarize(good, runs=5, slowdown=0.15)
    assert (s["aa_target_met"], s["ab_target_met"], s["acceptance"]) == (True, True, "met")
    s = gate_report.summarize(good[:3] + good[-3:], runs=5, slowdown=0.15)
    assert s["acceptance"] == "inconclusive" and "too few campaigns" in s["acceptance_why"]


def test_campaigns_alternate() -> None:
    assert gate_calibration.campaign_plan(3, 1) == [("aa", 0), ("ab", 0), ("aa", 1), ("aa", 2)]


def test_report_only_summarizes_an_earlier_report_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spread = [9000.0 * math.exp(d) for d in (-0.2, -0.1, 0.0, 0.1, 0.2)]
    settings = {"aa_pairs": 20, "ab_campaigns": 10, "runs": 5, "confirm": 5, "slowdown": 0.15, "model": "baseline",
                "dataset": "mnist-5k", "epochs": 11, "max_train_samples": None}  # fmt: skip
    path = tmp_path / "gate-calibration-x.json"
    campaigns = [_campaign("aa", 0, {"A": spread, "B": spread}), _campaign("ab", 0, {"A": spread, "B": spread})]
    path.write_text(json.dumps({"created_utc": "then", "gate": "throughput:-5%", "settings": settings,
                                "campaigns": campaigns}))  # fmt: skip
    assert gate_calibration.main(["--report-only", str(path)]) == 0
    report = json.loads(path.read_text())
    assert report["campaigns_done"] == 2 and report["summary"]["aa_campaigns"] == 1
    text = path.with_suffix(".md").read_text()
    assert "Stopped after 2 of the 30 planned campaigns" in text and "**Acceptance: INCONCLUSIVE**" in text
    assert capsys.readouterr().out == text + "\n"
    (tmp_path / "bad.json").write_text("{}")
    assert gate_calibration.main(["--report-only", str(tmp_path / "bad.json")]) == 2
    assert "not a gate calibration report" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--runs", "0"], ["--aa-pairs", "-1"], ["--slowdown", "0"]])
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        gate_calibration.parse_args(argv)
    assert exc.value.code == 2


@pytest.mark.slow
def test_a_tiny_campaign_with_real_workers(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gate_calibration.py"), "--out", str(tmp_path), "--aa-pairs", "0",
         "--ab-campaigns", "1", "--runs", "2", "--confirm", "0", "--epochs", "1", "--max-train-samples", "640"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (report_file,) = tmp_path.glob("gate-calibration-*.json")
    report: dict[str, Any] = json.loads(report_file.read_text())
    (campaign,) = report["campaigns"]
    assert [len(campaign["runs"][side]) for side in ("A", "B")] == [2, 2]
    for side in ("A", "B"):
        assert all(r["status"] == "ok" and r["load_1m_start"] >= 0 and r["load_1m_finish"] >= 0
                   for r in campaign["runs"][side])  # fmt: skip
    assert all(r["realized_factor"] == pytest.approx(1.15, abs=0.05) for r in campaign["runs"]["B"])
    assert all(r["realized_factor"] is None for r in campaign["runs"]["A"])
    # Two runs per side: the gate decides nothing, and says so.
    assert campaign["gate"]["exit_code"] == 0 and campaign["gate"]["decision"] == "inconclusive"
    assert "runs per side a 15 % slowdown needs at this sigma" in proc.stdout
    assert "**Acceptance: INCONCLUSIVE**" in proc.stdout
    assert (tmp_path / report_file.name.replace(".json", ".md")).read_text() == proc.stdout.rstrip("\n") + "\n"
