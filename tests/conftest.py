"""Shared fixtures. Markers (slow, docker, gpu, browser) are registered in pyproject.toml.

Test data comes from one factory module (:mod:`tests.factories`, also the ``factories`` fixture);
process helpers (the CLI, the docker CLI) from :mod:`tests.helpers`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests import factories as _factories
from tests.helpers import tfparity


@pytest.fixture()
def factories() -> ModuleType:
    """The shared factory module (``factories.result(path=..., seed=..., **overrides)``)."""
    return _factories


@pytest.fixture(scope="session")
def quick_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real 1-epoch `bn` suite on mnist-5k (baseline + batchnorm), shared by read-only tests."""
    out = tmp_path_factory.mktemp("quick")
    proc = tfparity("run", "--suite", "bn", "--dataset", "mnist-5k", "--epochs", "1", "--results-dir", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (suite_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return suite_dir


@pytest.fixture()
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Plugins loaded by a test stay in that test: the benchmark registry's plugin tables start empty and
    entry points are discovered afresh (from the test's sys.path)."""
    from harness.spec.benchmarks import registry

    monkeypatch.setattr(registry, "_loaded", {})
    monkeypatch.setattr(registry, "_provided", {})
    registry.entry_points.cache_clear()
    yield
    registry.entry_points.cache_clear()
