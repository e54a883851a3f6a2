"""The CLI's small commands (list, show) and its rule for user errors: one line, exit 2, nothing written."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness.store.results import load_result, write_result
from tests.factories import result
from tests.helpers import tfparity


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--model", "nosuch"],
        ["run", "--suite", "nosuch"],
        ["run", "--model", "baseline", "--epochs", "0"],
        ["run", "--model", "baseline", "--epochs", "-1"],
        ["run", "--model", "baseline", "--batch-size", "zero"],
        ["run", "--model", "baseline", "--precision", "fp8"],
        ["run", "--model", "baseline", "--precision", "tf32"],  # TF32 is GPU-only: refused at the edge
        ["run", "--model", "baseline", "--xla", "maybe"],
        ["run", "--model", "baseline", "--max-train-samples", "5"],
        ["run", "--model", "baseline", "--batch-size", "5000"],
        ["run"],
        ["show", "/nonexistent/result.json"],
        ["nosuchcommand"],
    ],
)
def test_user_errors_are_one_line_exit_2(tmp_path: Path, args: list[str]) -> None:
    proc = tfparity(*args, "--results-dir", str(tmp_path)) if args[0] == "run" else tfparity(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("tfparity: error:"), proc.stderr
    assert not any(tmp_path.iterdir())


def test_a_split_with_less_than_one_batch_per_part_is_refused_naming_the_minimum(tmp_path: Path) -> None:
    proc = tfparity("run", "--model", "baseline", "--max-train-samples", "5", "--results-dir", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert proc.stderr == (
        "tfparity: error: --max-train-samples 5 gives 4 training and 1 validation samples (validation_split 0.2), "
        "fewer than one batch of 32: each part needs at least one full batch; the smallest valid "
        "--max-train-samples is 156\n"
    )
    assert not (tmp_path / "r").exists()  # nothing written


def test_show_of_an_empty_directory_is_a_user_error(tmp_path: Path) -> None:
    proc = tfparity("show", str(tmp_path))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"tfparity: error: no result files found in {str(tmp_path)!r}\n"


def test_show_says_what_a_limited_run_trained_on(tmp_path: Path) -> None:
    run = dataclasses.replace(result(max_train_samples=640), n_train_used=512, n_val_used=128)
    path = tmp_path / "r.json"
    write_result(run, path)
    proc = tfparity("show", str(path))
    assert proc.returncode == 0, proc.stderr
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("dataset")]
    assert "512 train / 128 val / 1000 test (of 3200 / 800: max_train_samples 640)" in line


def test_offline_mnist_with_missing_data_dir_is_one_line(tmp_path: Path) -> None:
    # HOME points at an empty directory so no cached Keras download can be found, and a dead proxy
    # makes the machine offline for Keras's download whether or not it has internet.
    dead = "http://127.0.0.1:9"
    offline = {"https_proxy": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "HTTP_PROXY": dead, "no_proxy": "",
               "NO_PROXY": ""}  # fmt: skip
    proc = tfparity(
        "run",
        "--model",
        "baseline",
        "--dataset",
        "mnist",
        "--data-dir",
        "/nonexistent",
        "--results-dir",
        str(tmp_path / "r"),
        env={"HOME": str(tmp_path / "home"), "KERAS_HOME": str(tmp_path / "k"), **offline},
    )
    assert proc.returncode == 2, proc.stderr
    # Exactly one line: no TensorFlow/absl start-up lines before it.
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("tfparity: error:"), proc.stderr
    assert "mnist-5k" in proc.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_show_renders_a_result(quick_suite: Path) -> None:
    path = next(p for p in quick_suite.glob("batchnorm-*.json"))
    result = load_result(path)
    proc = tfparity("show", str(path))
    assert proc.returncode == 0, proc.stderr
    assert result.run_id in proc.stdout
    assert f"accuracy {result.test_accuracy:.4f}" in proc.stdout
    assert "samples/s" in proc.stdout and result.evidence.variable_device in proc.stdout


def test_list_names_everything() -> None:
    proc = tfparity("list")
    assert proc.returncode == 0
    for name in ("baseline", "batchnorm_dropout", "mnist-5k", "fashion-mnist", "synthetic", "seed", "paths", "fast"):
        assert name in proc.stdout
    assert "x --xla {off,on} x --replicas N (e.g. cpu-fp32-x2)" in proc.stdout  # replicas are a path axis
