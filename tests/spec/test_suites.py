"""Named suites expand into the planned RunSpecs; an unknown suite lists the valid names."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.spec.run_spec import PathSpec, RunSpec
from harness.spec.suites import get_suite


def test_suites_expand() -> None:
    base = RunSpec(epochs=1)
    seed_runs = get_suite("seed").expand(base, [0, 1])
    assert [s.benchmark for s in seed_runs[:3]] == ["baseline", "batchnorm", "batchnorm_dropout"]
    assert len(seed_runs) == 6 and {s.seed for s in seed_runs} == {0, 1}
    assert all(s.suite == "seed" and s.epochs == 1 for s in seed_runs)
    paths = get_suite("paths", device="cpu").expand(base, [0])
    assert len(paths) == 12
    assert {s.path.name for s in paths} == {"cpu-fp32", "cpu-fp32-xla", "cpu-mixed_bfloat16", "cpu-mixed_bfloat16-xla"}
    assert len({s.run_id for s in paths}) == 12
    with pytest.raises(ConfigError, match="seed.*'nosuch'"):
        get_suite("nosuch")


def test_suites_repeat_every_path_per_replica_count() -> None:
    runs = get_suite("bn").expand(RunSpec(epochs=1), [0], replicas=(1, 2))
    assert [(s.benchmark, s.path.name) for s in runs] == [
        ("baseline", "cpu-fp32"),
        ("batchnorm", "cpu-fp32"),
        ("baseline", "cpu-fp32-x2"),
        ("batchnorm", "cpu-fp32-x2"),
    ]
    # A path the replica count cannot run on is refused, not dropped: the paths suite has XLA paths.
    with pytest.raises(ConfigError, match="xla=on cannot run with 2 replicas"):
        get_suite("paths").expand(RunSpec(epochs=1), [0], replicas=(2,))


def test_paths_suite_has_tf32_on_gpu_only() -> None:
    # TF32 is its own GPU path (fp32 turns it off); on CPU it does not exist, so the suite leaves it out.
    gpu = get_suite("paths", device="gpu").expand(RunSpec(epochs=1, path=PathSpec(device="gpu")), [0])
    assert {s.path.precision for s in gpu} == {"fp32", "tf32", "mixed"}
    assert {s.path.name for s in gpu} >= {"gpu-tf32", "gpu-tf32-xla"}
    cpu = get_suite("paths", device="cpu").expand(RunSpec(epochs=1), [0])
    assert "tf32" not in {s.path.precision for s in cpu}
