"""README's "Your own benchmark" example, run exactly as written (five commands, local backend), so it cannot rot.

The docker variant is tests/orchestrate/test_docker_plugins.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.store.results import load_results
from tests.helpers import readme_example_commands, run_readme_example


def test_the_example_is_five_commands_through_run_compare_and_report() -> None:
    commands = readme_example_commands()
    assert [c[:2] for c in commands] == [
        ["python", "benchmarks/examples/make_blobs.py"], ["tfparity", "run"], ["tfparity", "run"],
        ["tfparity", "compare"], ["tfparity", "report"]]  # fmt: skip
    assert all("--benchmark" in c and "benchmarks/examples/blobs.py:BLOBS" in c for c in commands[1:3])


@pytest.mark.slow
def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    procs = run_readme_example(tmp_path)
    for proc in procs:
        assert proc.returncode == 0, f"{proc.args}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert len(procs) == 5
    results = load_results([tmp_path / "results" / "blobs" / "fp32", tmp_path / "results" / "blobs" / "mixed"])
    assert len(results) == 6 and all(r.ok for r in results)
    assert {r.evidence.dtype_policy for r in results if r.evidence} == {"float32", "mixed_bfloat16"}
    assert {r.dataset.name for r in results if r.dataset} == {"npz-blobs"}
    assert len({r.dataset.sha256 for r in results if r.dataset}) == 1
    info = results[0].benchmark
    assert info is not None and (info.name, info.origin, info.delivery) == ("blobs", "file", "host")
    assert all(r.test_accuracy is not None and r.test_accuracy >= 0.9 for r in results)  # the plugin's own claim
    compare = procs[3].stdout
    assert "blobs/npz-blobs: cpu-mixed_bfloat16 vs cpu-fp32" in compare and "verdict:" in compare
    report = (tmp_path / "results" / "blobs" / "report" / "report.md").read_text()
    assert "the blob net finds the quadrant" in report  # the benchmark's claim, measured per path
