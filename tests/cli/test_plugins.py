"""Plugin benchmarks and users' data through the real CLI: discovery and origins, one-line refusals with
nothing written, results that record their definition, compare and resume refusing changed definitions,
and a plugin that raises during training recorded as a failed run (real TensorFlow, small real data)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.spec.benchmarks.registry import ENTRY_POINT_GROUP
from harness.store.results import load_results
from tests.factories import npz_file, plugin_file
from tests.helpers import ROOT, tfparity

QUICK = ("--epochs", "1", "--max-train-samples", "200")
RAISES_IN_TRAINING = """
def optimizer(learning_rate):
    import keras

    class Exploding(keras.optimizers.SGD):
        def apply(self, *args, **kwargs):
            raise RuntimeError("the plugin's optimizer exploded")

    return Exploding(learning_rate=learning_rate)
"""


def installed_plugin(site: Path) -> dict[str, str]:
    """A real installed distribution (dist-info + entry point) on PYTHONPATH: the environment to use it."""
    plugin_file(site / "epbench", name="epnet", attr="NET", file_name="__init__.py")
    info = site / "epbench-2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: epbench\nVersion: 2.0\n")
    (info / "top_level.txt").write_text("epbench\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nepnet = epbench:NET\n")
    return {"PYTHONPATH": f"{site}:{ROOT}"}


def one_line_refusal(proc: object, results: Path) -> str:
    assert proc.returncode == 2, proc.stderr  # type: ignore[attr-defined]
    stderr: str = proc.stderr  # type: ignore[attr-defined]
    assert stderr.count("\n") == 1 and stderr.startswith("tfparity: error: "), stderr
    assert not results.exists() or not any(results.iterdir()), "a refused plan wrote something"
    return stderr


def test_list_shows_where_each_benchmark_comes_from(tmp_path: Path) -> None:
    proc = tfparity("list", env=installed_plugin(tmp_path / "site"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    origin = {lines[i].split()[0]: lines[i + 1].strip() for i, line in enumerate(lines[:-1])
              if lines[i + 1].strip().startswith("from ")}  # fmt: skip
    assert origin["baseline"].startswith("from built-in: harness.spec.benchmarks.mlp:BASELINE (tfparity ")
    assert origin["cnn"].startswith("from built-in: harness.spec.benchmarks.cnn:CNN")
    assert origin["epnet"].startswith("from entry-point: epbench:NET (epbench 2.0), sha256 ")


@pytest.mark.parametrize(
    ("plugin", "extra", "message"),
    [
        ("import tensorflow_addons_gone\n", (), "failed to import: ModuleNotFoundError: No module named"),
        ("", ("--dataset", "npz:{npz_bad}"), "npz file '{npz_bad}': y_test labels out of range"),
        ("", ("--dataset", "npz:{npz}"), "benchmark 'tiny' does not accept dataset 'npz-cells': its samples have shape "
                                         "(4, 4), the benchmark takes (784,)"),
        ("", ("--dataset", "npz:{npz_many}"), "dataset 'npz-many' has labels 0..11, out of range for benchmark 'tiny'"),
        ("", ("--dataset", "nosuchset"), "unknown dataset 'nosuchset'"),
    ],
)  # fmt: skip
def test_a_bad_plugin_or_data_file_is_one_line_and_writes_nothing(
    tmp_path: Path, plugin: str, extra: tuple[str, ...], message: str
) -> None:
    files = {"npz": npz_file(tmp_path / "cells.npz"), "npz_bad": npz_file(tmp_path / "bad.npz", y_test=np.full(40, 9)),
             "npz_many": npz_file(tmp_path / "many.npz", shape=(784,), classes=12)}  # fmt: skip
    path = plugin_file(tmp_path / "p", header=plugin)
    results = tmp_path / "results"
    args = [a.format(**files) for a in extra]
    proc = tfparity("run", "--benchmark", f"{path}:TINY", *args, *QUICK, "--results-dir", str(results))
    assert message.format(**files) in one_line_refusal(proc, results)


@pytest.mark.slow
def test_a_build_that_is_not_a_model_is_refused_before_anything_runs(tmp_path: Path) -> None:
    path = plugin_file(tmp_path, build="def build(ctx):\n    return {'layers': 3}\n")
    results = tmp_path / "results"
    proc = tfparity("run", "--benchmark", f"{path}:TINY", *QUICK, "--results-dir", str(results))
    stderr = one_line_refusal(proc, results)
    assert f"benchmark 'tiny' ({path}:TINY): build() returned dict, not a keras.Model" in stderr


@pytest.mark.slow
def test_a_plugin_that_raises_in_training_is_a_failed_result(tmp_path: Path) -> None:
    path = plugin_file(tmp_path, header=RAISES_IN_TRAINING, fields="input_shape=(784,), optimizer=optimizer")
    proc = tfparity("run", "--benchmark", f"{path}:TINY", *QUICK, "--results-dir", str(tmp_path / "r"))
    assert proc.returncode == 1, proc.stderr[-2000:]
    (result,) = load_results([tmp_path / "r"])
    assert result.status == "failed" and result.error == "RuntimeError: the plugin's optimizer exploded"
    assert any(f'File "{path}"' in line for line in result.log_tail)  # the traceback tail names the plugin
    assert result.benchmark is not None and result.benchmark.origin == "file"


@pytest.mark.slow
def test_plugin_results_record_their_definition_and_compare_refuses_another(tmp_path: Path) -> None:
    env = installed_plugin(tmp_path / "site")
    proc = tfparity("run", "--model", "epnet", *QUICK, "--results-dir", str(tmp_path / "ep"), env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (ep,) = load_results([tmp_path / "ep"])
    assert ep.ok and ep.run_spec.benchmark_source == "entry-point:epbench:NET"
    info = ep.benchmark
    assert info is not None and (info.origin, info.version, info.delivery) == ("entry-point", "2.0", "host")
    # The same definition copied elsewhere (another machine's path) compares; an edited one is refused.
    copy = plugin_file(tmp_path / "copy", name="epnet", attr="NET", file_name="__init__.py")
    assert copy.read_bytes() == (tmp_path / "site" / "epbench" / "__init__.py").read_bytes()
    edited = plugin_file(tmp_path / "edited", name="epnet", attr="NET", fields="input_shape=(784,), n_classes=12")
    for label, path in (("copy", copy), ("edited", edited)):
        proc = tfparity("run", "--benchmark", f"{path}:NET", *QUICK, "--results-dir", str(tmp_path / label))
        assert proc.returncode == 0, proc.stderr[-2000:]
    (same,) = load_results([tmp_path / "copy"])
    assert same.benchmark is not None and same.benchmark.sha256 == info.sha256 and same.benchmark.origin == "file"
    assert tfparity("compare", str(tmp_path / "ep"), str(tmp_path / "copy")).returncode == 0
    proc = tfparity("compare", str(tmp_path / "ep"), str(tmp_path / "edited"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "benchmark definitions differ for epnet/mnist-5k" in proc.stderr
    assert "results of different definitions cannot be compared" in proc.stderr


@pytest.mark.slow
def test_resume_runs_what_is_missing_and_refuses_a_changed_plugin_or_dataset(tmp_path: Path) -> None:
    work = tmp_path / "work"
    path = plugin_file(work, fields="input_shape=(4, 4)")
    # 200 rows: Keras's split leaves 160 / 40, one full batch of 32 in each part (the split rule).
    npz = npz_file(work / "cells.npz", n_train=200)
    proc = tfparity("run", "--benchmark", f"{path}:TINY", "--dataset", f"npz:{npz}", "--seeds", "2", "--epochs", "1",
                    "--results-dir", str(tmp_path / "r"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    (suite,) = (tmp_path / "r").iterdir()
    manifest = json.loads((suite / "suite.json").read_text())
    assert manifest["benchmarks"]["tiny"]["origin"] == "file" and "npz-cells" in manifest["datasets"]
    first = sorted(suite.glob("tiny-*.json"))
    kept = first[0].read_bytes()
    first[1].unlink()  # as if the suite had been interrupted
    proc = tfparity("run", "--resume", str(suite))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert first[0].read_bytes() == kept and first[1].is_file()
    first[1].unlink()
    shutil.copy(npz_file(tmp_path / "other.npz", n_train=200, seed=9), npz)
    proc = tfparity("run", "--resume", str(suite))
    assert proc.returncode == 2 and "dataset 'npz-cells' changed since suite" in proc.stderr
    path.write_text(path.read_text() + "\n# edited\n")
    proc = tfparity("run", "--resume", str(suite))
    assert proc.returncode == 2 and "benchmark 'tiny' changed since suite" in proc.stderr
    assert not first[1].exists()
