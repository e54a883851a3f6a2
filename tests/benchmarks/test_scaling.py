"""benchmarks/scaling.py's analysis (``--analyse``) over written result files: the scaling table per family,
the header read from the results, compare's x2 vs x1 checks per comparison. The runs themselves are real
``tfparity run`` suites (tests/cli/test_run_replicas.py covers x1/x2 runs); here factory results stand in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import scaling
from harness.spec.run_spec import PathSpec
from tests.factories import CPU, result, write

X2 = PathSpec(replicas=2)


def written_campaign(out: Path) -> Path:
    """Two rounds of every family, laid out as the benchmark's runs leave them (OUT/<family>/<suite>/)."""
    rounds = (0, 1)
    families = {
        "strong": [
            result("baseline", path=p, seed=s, throughput=t) for s in rounds for p, t in ((CPU, 9000), (X2, 12000))
        ],
        "strong-compiled": [
            result("baseline", path=p, seed=s, throughput=t, loop="compiled", steps_per_execution=32)
            for s in rounds
            for p, t in ((CPU, 20000), (X2, 20000))
        ],
        "weak": [result("baseline", path=p, seed=s, batch_per_replica=True) for s in rounds for p in (CPU, X2)],
        # per-replica BN statistics: first-epoch losses apart; synchronised: the one-device numbers
        "bn": [result(path=CPU, seed=s) for s in rounds] + [result(path=X2, seed=s, curve_shift=0.01) for s in rounds],
        "bn-sync": [result(path=X2, seed=s, sync_batchnorm=True) for s in rounds],
    }
    campaign = out / "scaling-20261202T000000Z"
    for name, results in families.items():
        write(results, campaign / name / "run-20261202T000000Z")
    return campaign


def test_analyse_tables_each_family_and_compares_bn_and_sync_bn_apart(tmp_path: Path) -> None:
    campaign = written_campaign(tmp_path)
    assert scaling.main(["--analyse", str(campaign), "--out", str(tmp_path / "report")]) == 0
    (md,) = (tmp_path / "report").glob("scaling-*.md")
    (js,) = (tmp_path / "report").glob("scaling-*.json")
    text = md.read_text()
    assert "mnist-5k, 3 epochs, 2 seed(s) (0, 1), 18 runs." in text  # read from the results
    assert "min wall" not in text  # nothing ran: no wall time claimed
    rows = json.loads(js.read_text())["rows"]
    by_key = {(r["series"]["execution"], r["series"]["batch_per_replica"], r["replicas"]): r for r in rows}
    assert len(rows) == len(by_key) == 6  # strong, strong-compiled, weak: x1 and x2 each
    strong = by_key[("tfdata,spe1", False, 2)]
    assert strong["speedup"] == pytest.approx(12000 / 9000, rel=0.03)
    assert strong["efficiency"] == pytest.approx(12000 / (2 * 9000), rel=0.03)
    assert by_key[("tfdata,spe32,compiled", False, 2)]["efficiency"] == pytest.approx(0.5, rel=0.03)
    assert by_key[("tfdata,spe1", True, 2)]["global_batch_size"] == 64  # weak scaling: 32 per replica
    checks = {(c["name"], c["subject"]): c["verdict"] for c in json.loads(js.read_text())["checks"]}
    replicas = {subject: verdict for (name, subject), verdict in checks.items() if name == "replicas"}
    assert replicas["baseline/mnist-5k: cpu-fp32-x2 vs cpu-fp32"] == "PASS"
    assert sorted(replicas.values()) == ["FAIL", "PASS", "PASS"], replicas  # bn x2 fails, bn x2 sync-BN agrees
