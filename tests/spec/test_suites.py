"""Named suites expand into the planned RunSpecs; an unknown suite lists the valid names."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.spec.run_spec import RunSpec
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
