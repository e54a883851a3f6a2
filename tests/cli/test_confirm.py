"""`tfparity compare --baseline B --confirm N`: the re-run plan, and a real confirm with a slowed side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.analysis.confirm import Suspect
from harness.cli.confirm import plan
from tests.factories import CPU, XLA, result
from tests.helpers import tfparity


def test_plan_interleaves_groups_cycles_seeds_and_gives_new_repeats() -> None:
    cpu = [result("baseline", path=CPU, seed=s, repeat=r) for s in (0, 1) for r in (0, 1)]
    xla = [result("baseline", path=XLA, seed=0, backend="docker")]
    found = [
        Suspect("cpu-fp32", "nightly", [r.run_id for r in cpu], ["a"]),
        Suspect("cpu-fp32-xla", "nightly", [r.run_id for r in xla], ["b"]),
    ]
    planned = plan(found, cpu + xla, 3)
    assert [(s.path.name, s.seed, s.repeat, backend) for s, _, backend in planned] == [
        ("cpu-fp32", 0, 2, "local"),
        ("cpu-fp32-xla", 0, 1, "docker"),  # each result's own backend re-runs it
        ("cpu-fp32", 1, 2, "local"),
        ("cpu-fp32-xla", 0, 2, "docker"),
        ("cpu-fp32", 0, 3, "local"),
        ("cpu-fp32-xla", 0, 3, "docker"),
    ]
    assert {source for _, source, _ in planned} == {"nightly"}
    assert len({s.run_id for s, _, _ in planned} | {r.run_id for r in cpu + xla}) == 6 + 5  # all new run ids


# Real runs, kept short: 320 training samples (8 steps per epoch), 2 epochs. The current side is
# slowed 4x (every step sleeps 3x its own time), far beyond the run-to-run noise of a busy machine.
RUN = ("run", "--model", "baseline", "--dataset", "mnist-5k", "--epochs", "2", "--max-train-samples", "400")


@pytest.mark.slow
def test_confirm_reruns_a_real_regression_and_keeps_it(tmp_path: Path) -> None:
    for name, extra in (("base", ()), ("cur", ("--inject-fault", "slow:3"))):
        proc = tfparity(*RUN, "--repeats", "4", *extra, "--results-dir", str(tmp_path / name))
        assert proc.returncode == 0, proc.stderr[-3000:]
    (base,) = (tmp_path / "base").iterdir()
    (cur,) = [p for p in (tmp_path / "cur").iterdir() if p.is_dir()]
    assert (base / "noise.json").is_file()  # the baseline's repeats measured its A/A spread
    proc = tfparity("compare", str(cur), "--baseline", str(base), "--gate", "throughput:-5%", "--confirm", "2",
                    "--json", timeout=1200)  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    (check,) = [c for c in json.loads(proc.stdout)["checks"] if c["name"] == "regression"]
    assert check["verdict"] == "FAIL" and check["summary"].startswith("confirmed by 2 more run(s)")
    confirm = check["details"]["confirm"]
    assert confirm["confirmed"] is True and confirm["before"]["decision"] == "regression"
    assert check["details"]["n_current"] == 6 and check["details"]["n_baseline"] == 4
    assert check["details"]["shift"]["floor_source"].endswith("noise.json")
    # The confirming runs: a new suite next to the current results, the same (slowed) spec, new repeats.
    (confirm_dir,) = [p for p in (tmp_path / "cur").iterdir() if p.name.startswith(f"{cur.name}-confirm-")]
    assert str(confirm_dir) == confirm["directory"]
    results = sorted(p for p in confirm_dir.glob("*.json") if p.name != "suite.json")
    assert [json.loads(p.read_text())["spec"]["repeat"] for p in results] == [4, 5]
    for p in results:
        slowed = json.loads(p.read_text())["extra"]["injected_slowdown"]
        assert slowed["realized_factor"] == pytest.approx(4.0, abs=0.05)  # measured in the worker
    assert "confirming suspected regression(s): 2 more run(s)" in proc.stderr
