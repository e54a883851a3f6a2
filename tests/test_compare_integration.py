"""compare on real runs: `tfparity run` on mnist-5k over three CPU paths, then `tfparity compare`;
and the numerics probe through the real worker (fp32 vs bf16 against float64)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, tfparity

from harness.config import PathSpec, RunSpec
from harness.results import load_result, load_results

pytestmark = pytest.mark.slow

# Small and quick: 1,000 training samples (800 after the validation split), 2 epochs, 2 seeds.
RUN = ("run", "--model", "batchnorm", "--dataset", "mnist-5k", "--epochs", "2", "--max-train-samples", "1000")


@pytest.fixture(scope="module")
def three_paths(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fp32, fp32+XLA and mixed bf16 (2 seeds each) plus a repeat of fp32 seed 0, one directory each."""
    root = tmp_path_factory.mktemp("paths")
    for name, extra in (("fp32", ()), ("xla", ("--xla", "on")), ("bf16", ("--precision", "mixed"))):
        proc = tfparity(*RUN, "--seeds", "2", *extra, "--results-dir", str(root / name))
        assert proc.returncode == 0, proc.stderr[-3000:]
    proc = tfparity(*RUN, "--seed", "0", "--results-dir", str(root / "repeat"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


def test_compare_real_paths_verdict_table(three_paths: Path) -> None:
    dirs = [str(three_paths / n) for n in ("fp32", "xla", "bf16", "repeat")]
    proc = tfparity("compare", *dirs, "--json")
    assert proc.returncode in (0, 1), proc.stderr
    data = json.loads(proc.stdout)
    assert data["reference"] == "fp32:cpu-fp32"
    assert data["groups"] == ["fp32:cpu-fp32", "cpu-fp32-xla", "cpu-mixed_bfloat16", "repeat:cpu-fp32"]
    checks = data["checks"]
    # Exit code follows the verdict.
    assert proc.returncode == (1 if data["verdict"] == "FAIL" else 0)
    # The paths that ran are the paths asked for.
    evidence = [c for c in checks if c["name"] == "evidence"]
    assert len(evidence) == 4 and all(c["verdict"] == "PASS" for c in evidence)
    # Same spec, same machine, op determinism on: bit-identical (TF-FACTS), so a PASS.
    (det,) = [c for c in checks if c["name"] == "determinism"]
    assert det["verdict"] == "PASS" and det["details"]["identical"] is True
    # Every non-reference group gets test accuracy, curves and speed checks against the reference.
    for group in data["groups"][1:]:
        names = {c["name"] for c in checks if f": {group} vs fp32:cpu-fp32" in c["subject"]}
        assert {"accuracy-equivalence", "curves", "speed", "memory"} <= names, (group, names)
    gates = [c for c in checks if c["name"] == "relative-gate"]
    assert {c["subject"].split(": ")[1].split(" vs ")[0] for c in gates} == {"cpu-fp32-xla", "cpu-mixed_bfloat16"}
    acc = {c["subject"]: c for c in checks if c["name"] == "accuracy-equivalence"}
    repeat = acc["batchnorm/mnist-5k: repeat:cpu-fp32 vs fp32:cpu-fp32 (test_accuracy)"]
    assert repeat["verdict"] == "PASS" and repeat["details"]["exact"] is True
    # The numbers behind each verdict come from the real result files.
    bf16 = acc["batchnorm/mnist-5k: cpu-mixed_bfloat16 vs fp32:cpu-fp32 (test_accuracy)"]
    assert bf16["details"]["n_a"] == 2 and bf16["details"]["seeds"] == [0, 1]
    results = {(r.run_spec.path.name, r.run_spec.seed): r
               for d in dirs[:3] for r in load_results([d])}
    expected = [100 * (results[("cpu-mixed_bfloat16", s)].test_accuracy - results[("cpu-fp32", s)].test_accuracy)
                for s in (0, 1)]
    assert bf16["details"]["mean"] == pytest.approx(sum(expected) / 2)

    table = tfparity("compare", *dirs)
    assert table.returncode == proc.returncode
    assert "VERDICT  CHECK" in table.stdout and f"verdict: {data['verdict']}" in table.stdout


def test_compare_real_results_against_themselves_as_baseline(three_paths: Path) -> None:
    proc = tfparity("compare", str(three_paths / "fp32"), "--baseline", str(three_paths / "fp32"),
                    "--gate", "throughput:-5%", "--gate", "test_accuracy:-0.5pp")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("regression") == 2
    bad = tfparity("compare", str(three_paths / "fp32"), "--baseline", str(three_paths / "fp32"),
                   "--gate", "throughput:5pp")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "throughput is gated in '%'" in bad.stderr


def _probe_result(tmp: Path, path: PathSpec) -> Path:
    spec = RunSpec(benchmark="batchnorm", dataset="mnist-5k", path=path, seed=0, mode="probe")
    (tmp / "specs").mkdir(exist_ok=True)  # result_files() skips specs/ (as the backends lay it out)
    spec_file = tmp / "specs" / f"{spec.run_id}.json"
    spec_file.write_text(json.dumps(spec.to_dict()))
    out = tmp / f"{spec.run_id}.json"
    proc = subprocess.run([sys.executable, "-m", "harness.worker", str(spec_file), str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return out


def test_probe_through_worker_fp32_and_bf16(tmp_path: Path) -> None:
    files = [_probe_result(tmp_path, PathSpec()), _probe_result(tmp_path, PathSpec(precision="mixed"))]
    fp32 = load_result(files[0])
    payload = fp32.extra["probe"]
    assert payload["passed"] is True and payload["compute_dtype"] == "float32"
    assert payload["layers"][0]["name"] == "dense_1"
    proc = tfparity("compare", str(tmp_path), "--json")
    assert proc.stdout, proc.stderr
    data = json.loads(proc.stdout)
    numerics = {c["subject"]: c for c in data["checks"] if c["name"] == "numerics"}
    assert numerics["batchnorm/mnist-5k: cpu-fp32 seed 0 vs float64"]["verdict"] == "PASS"
    assert numerics["batchnorm/mnist-5k: cpu-mixed_bfloat16 seed 0 vs float64"]["verdict"] == "PASS"
    cross = numerics["batchnorm/mnist-5k: cpu-mixed_bfloat16 seed 0 vs cpu-fp32 (probe)"]
    assert cross["verdict"] == "PASS" and cross["details"]["same_initial_weights"] is True
    assert proc.returncode == 0
