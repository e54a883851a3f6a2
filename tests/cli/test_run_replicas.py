"""``tfparity run --replicas``: the refused combinations are one line with nothing written, and real runs on
two logical CPU devices answer the parity questions through ``tfparity compare`` and ``report``: the
baseline on x2 agrees with x1, batchnorm with per-replica statistics does not, synchronised it does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.store.results import load_results
from tests.helpers import tfparity

QUICK = ("--epochs", "2", "--max-train-samples", "640")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--replicas", "2", "--xla", "on"], "xla=on cannot run with 2 replicas"),
        (["--replicas", "2", "--preset", "fast"], "xla=on cannot run with 2 replicas"),
        (["--replicas", "2", "--steps-per-execution", "8"], "steps_per_execution 8 with 2 replicas fails in keras"),
        (["--replicas", "3"], "batch_size 32 (the global batch) does not split evenly over 3 replicas"),
        (["--replicas", "1", "--replicas", "2", "--mode", "probe"], "replicas 2 needs mode 'train'"),
        (["--replicas", "0"], "expected a positive integer, got '0'"),
        (["--sync-bn", "maybe"], "--sync-bn must be 'on' or 'off', got 'maybe'"),
    ],
)
def test_refused_combinations_are_one_line_and_write_nothing(tmp_path: Path, flags: list[str], message: str) -> None:
    proc = tfparity("run", "--model", "baseline", "--results-dir", str(tmp_path / "results"), *flags)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr
    assert not (tmp_path / "results").exists()


def checks(*sources: Path) -> list[dict[str, Any]]:
    proc = tfparity("compare", *map(str, sources), "--json")
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    checks: list[dict[str, Any]] = json.loads(proc.stdout)["checks"]
    return checks


def one(found: list[dict[str, Any]], name: str, subject: str) -> dict[str, Any]:
    (check,) = [c for c in found if c["name"] == name and c["subject"].startswith(subject)]
    return check


@pytest.mark.slow
def test_x2_agrees_with_x1_and_batchnorm_only_when_synchronised(tmp_path: Path) -> None:
    plain, synced = tmp_path / "plain", tmp_path / "synced"
    proc = tfparity("run", "--suite", "bn", "--replicas", "1", "--replicas", "2", *QUICK, "--results-dir", str(plain))
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = tfparity(
        "run", "--model", "batchnorm", "--replicas", "2", "--sync-bn", "on", *QUICK, "--results-dir", str(synced)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ran = {
        (r.run_spec.benchmark, r.run_spec.path.name, r.run_spec.sync_batchnorm): r
        for r in load_results([plain, synced])
    }
    assert len(ran) == 5 and all(r.ok for r in ran.values())
    assert ran["batchnorm", "cpu-fp32-x2", True].evidence.sync_batchnorm is True
    assert ran["batchnorm", "cpu-fp32-x2", False].evidence.sync_batchnorm is False

    found = checks(plain, synced)  # x1, x2 and x2 with synchronised BN: three groups
    base = one(found, "replicas", "baseline/mnist-5k: cpu-fp32-x2[tfdata,spe1] vs cpu-fp32")
    assert base["verdict"] == "PASS" and base["details"]["max_rel_epoch1"] < 1e-4
    assert one(found, "curves", "baseline/mnist-5k: cpu-fp32-x2[tfdata,spe1] vs cpu-fp32")["verdict"] == "PASS"
    # Per-replica statistics (16 of the 32 samples each): another experiment, from the first epoch on.
    bn = one(found, "replicas", "batchnorm/mnist-5k: cpu-fp32-x2[tfdata,spe1] vs cpu-fp32")
    assert bn["verdict"] == "FAIL" and bn["details"]["max_rel_epoch1"] > 0.01
    assert "--sync-bn on" in bn["summary"]
    # Synchronised, the same model on two replicas is the one-device experiment again.
    sync = one(found, "replicas", "batchnorm/mnist-5k: cpu-fp32-x2[tfdata,spe1,syncbn] vs cpu-fp32")
    assert sync["verdict"] == "PASS" and sync["details"]["max_rel_epoch1"] < 1e-3

    report = tfparity("report", str(plain), "-o", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr[-2000:]
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## Scaling (replicas)" in md and "| cpu-fp32-x2 | tfdata,spe1 | global 32 | 2 | 1 |" in md
