"""Shared fixtures. Markers (slow, docker, gpu, browser) are registered in pyproject.toml."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def tfparity(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
             timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess (as a user would), capturing output."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd or ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def quick_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real 1-epoch `bn` suite on mnist-5k (baseline + batchnorm), shared by read-only tests."""
    out = tmp_path_factory.mktemp("quick")
    proc = tfparity("run", "--suite", "bn", "--dataset", "mnist-5k", "--epochs", "1", "--results-dir", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (suite_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return suite_dir
