"""Presets change how the training loop executes, never the experiment."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.spec.presets import PRESETS, apply_preset, get_preset
from harness.spec.run_spec import PathSpec, RunSpec


def test_fast_preset_keeps_the_experiment_and_sets_xla_and_loop() -> None:
    base = RunSpec(benchmark="batchnorm", dataset="fashion-mnist", seed=2, epochs=10)
    fast = apply_preset("fast", base)
    assert fast.hyperparameters == base.hyperparameters  # same experiment
    assert fast.seed == 2 and fast.batch_size == 32 and fast.epochs == 10
    assert fast.path == PathSpec(xla=True) and fast.deterministic_ops is False
    assert fast.input == "numpy"  # the seed script's data order
    assert fast.loop == "compiled" and fast.steps_per_execution == 64
    seed = apply_preset("seed", base)
    assert (seed.input, seed.steps_per_execution, seed.path.xla, seed.loop) == ("numpy", 1, False, "fit")
    # The seed script runs with TF's defaults: op determinism off (another numerical path on CPU).
    assert seed.deterministic_ops is False and seed.execution == "numpy,spe1,det-off"
    assert seed.hyperparameters == base.hyperparameters
    # A preset's fields stay RunSpec fields (the CLI applies them to the spec it builds).
    for preset in PRESETS.values():
        RunSpec(**preset.fields)


def test_a_preset_without_xla_leaves_the_path_as_given() -> None:
    base = RunSpec(path=PathSpec(precision="mixed", xla=True), deterministic=False)
    assert get_preset("seed").xla is None
    assert apply_preset("seed", base).path == base.path


def test_unknown_preset_is_a_config_error_naming_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"preset must be one of \('seed', 'fast'\), got 'turbo'"):
        apply_preset("turbo", RunSpec())
