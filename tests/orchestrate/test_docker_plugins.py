"""Plugins and users' data in containers (real engine, real image): README's example through the docker
backend, the plugin's source on a read-only mount, the npz data prepared into /data with the host's fingerprint,
and a module plugin mounted under /opt/tfparity/plugins."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from harness import data
from harness.spec.names import npz_dataset_name
from harness.spec.run_spec import RunSpec
from harness.store.results import load_results
from tests.factories import plugin_file
from tests.helpers import run_readme_example

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.mark.usefixtures("engine")
def test_the_readme_example_runs_in_containers(tmp_path: Path) -> None:
    procs = run_readme_example(tmp_path, "--backend", "docker")
    for proc in procs:
        assert proc.returncode == 0, f"{proc.args}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert len(procs) == 5
    results = load_results([tmp_path / "results" / "blobs" / "fp32", tmp_path / "results" / "blobs" / "mixed"])
    assert len(results) == 6 and all(r.ok and r.environment["backend"] == "docker" for r in results)
    plugin = tmp_path / "benchmarks" / "examples" / "blobs.py"
    for result in results:
        info = result.benchmark
        assert info is not None and info.delivery == "read-only mount"  # read from the mount's flags inside
        assert info.sha256 == hashlib.sha256(plugin.read_bytes()).hexdigest() and info.ref == f"{plugin}:BLOBS"
    npz = tmp_path / "results" / "blobs" / "blobs.npz"
    host = data.load(npz_dataset_name(str(npz)), file=str(npz))
    assert {r.dataset.sha256 for r in results if r.dataset} == {host.info.sha256}  # the container saw these bytes
    source = results[0].dataset.source if results[0].dataset else ""
    assert source.startswith("prepared:/data/npz-blobs-") and source.endswith(".npz")


@pytest.mark.usefixtures("fresh_registry")
def test_a_module_plugin_is_mounted_on_the_containers_path(tmp_path: Path, cpu_backend: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    site = tmp_path / "site"
    plugin_file(site / "dockbench", name="dock", attr="DOCK", file_name="__init__.py")
    for path in (site, site / "dockbench", site / "dockbench" / "__init__.py"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    monkeypatch.syspath_prepend(str(site))
    spec = RunSpec(benchmark="dock", benchmark_source="module:dockbench:DOCK", epochs=1, max_train_samples=200)
    out = tmp_path / "out"
    out.mkdir()
    result = cpu_backend.run(spec, out)
    assert result.ok, (result.error, result.log_tail[-5:])
    assert result.benchmark is not None and result.benchmark.origin == "module"
    assert result.benchmark.delivery == "read-only mount" and result.benchmark.ref == "dockbench:DOCK"
