"""The CLI's small commands (list, show) and its rule for user errors: one line, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.store.results import load_result
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


def test_offline_mnist_with_missing_data_dir_is_one_line(tmp_path: Path) -> None:
    # HOME points at an empty directory so no cached Keras download can be found.
    proc = tfparity(
        "run",
        "--model",
        "baseline",
        "--dataset",
        "mnist",
        "--data-dir",
        "/nonexistent",
        "--results-dir",
        str(tmp_path),
        env={"HOME": str(tmp_path / "home"), "KERAS_HOME": str(tmp_path / "k")},
    )
    if proc.returncode == 0:  # pragma: no cover - a machine with internet downloaded MNIST
        pytest.skip("MNIST was downloadable here; the offline path is covered in tests/data")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "mnist-5k" in proc.stderr, proc.stderr


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
