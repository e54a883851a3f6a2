"""The A/A noise floor: measured from identical repeats, written as noise.json, read back strictly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from harness.analysis import noise, per_run, stats
from harness.errors import ResultError
from tests.factories import CPU, XLA, result, write


def _repeats(path=CPU, seed: int = 0, steps=(2.5, 2.8, 2.4, 3.1), **kw) -> list:  # type: ignore[no-untyped-def]
    return [result("baseline", path=path, seed=seed, repeat=r, step_ms=ms, step_sd_frac=0.0, **kw)
            for r, ms in enumerate(steps)]  # fmt: skip


def test_floor_is_the_pooled_spread_of_identical_repeats() -> None:
    seed0, seed1 = _repeats(seed=0), _repeats(seed=1, steps=(3.0, 3.3, 2.9))
    failed = result("baseline", seed=0, repeat=9, status="failed")
    (floor,) = noise.measure([*seed0, *seed1, failed, result("baseline", path=XLA)])  # XLA: one run, no floor
    expected = stats.pooled_robust_sd(
        [per_run.log_values(seed0, "throughput"), per_run.log_values(seed1, "throughput")]
    )
    assert floor.sigma_ln["throughput"] == pytest.approx(expected)
    assert (floor.path, floor.runs, floor.configs) == ("cpu-fp32", 7, 2)  # seeds are separate sets, pooled
    assert floor.sigma_ln["peak_rss"] == 0.0  # identical peak RSS in every repeat
    assert [s["run_ids"] for s in floor.sets] == [[r.run_id for r in seed0], [r.run_id for r in seed1]]
    # With steps exactly step_ms, ln throughput differences are ln step ratios: a spread of ~0.1.
    assert 0.05 < floor.sigma_ln["throughput"] < 0.2
    assert noise.measure(seed0[:1]) == []  # nothing repeated, nothing measured


def test_noise_json_round_trip_and_lookup(tmp_path: Path) -> None:
    runs = _repeats()
    path = noise.write_noise(tmp_path, runs)
    assert path == tmp_path / "noise.json"
    doc = json.loads(path.read_text())
    assert doc["noise_version"] == 1 and doc["host"]["cpu_count"] == 2 and len(doc["floors"]) == 1
    assert noise.noise_files(tmp_path) == [path]
    floors = noise.load_noise([path])
    sigma, source = floors.lookup("throughput", runs[0].run_spec.replace(seed=5, repeat=0))
    assert sigma == pytest.approx(doc["floors"][0]["sigma_ln"]["throughput"]) and source == str(path)
    # Another configuration (other epochs, or another path) gets no floor: the rule's default applies.
    assert floors.lookup("throughput", runs[0].run_spec.replace(epochs=9)) == (None, "default")
    assert floors.lookup("throughput", result("baseline", path=XLA).run_spec) == (None, "default")
    # noise.json is not a result file: loading the directory's results ignores it.
    write(runs, tmp_path)
    from harness.store.results import load_results

    assert len(load_results([tmp_path])) == 4


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON"),
    ('{"kind": "something else"}', "is not a tfparity noise floor file"),
    ('{"kind": "tfparity noise floor", "noise_version": 2, "floors": []}', "has noise_version 2"),
    ('{"kind": "tfparity noise floor", "noise_version": 1, "floors": [{"benchmark": "b"}]}', "is malformed"),
])  # fmt: skip
def test_bad_noise_files_are_refused_naming_the_file(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "noise.json"
    bad.write_text(content)
    with pytest.raises(ResultError, match=message) as exc:
        noise.load_noise([bad])
    assert str(bad) in str(exc.value)


def test_sigma_floor_of_lognormal_repeats_estimates_the_true_spread() -> None:
    rng = np.random.default_rng(11)
    steps = tuple(float(2.5 * math.exp(v)) for v in rng.normal(0, 0.12, 30))
    (floor,) = noise.measure(_repeats(steps=steps))
    assert floor.sigma_ln["throughput"] == pytest.approx(0.12, rel=0.35)  # 30 runs, a MAD-based estimate
