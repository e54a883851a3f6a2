"""RunSpec / PathSpec validation: every bad value refused with the value quoted; specs round-trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.spec.run_spec import SPEC_VERSION, PathSpec, RunSpec, load_spec, parse_fault


@pytest.mark.parametrize(
    ("kwargs", "quoted"),
    [
        ({"benchmark": "resnet"}, "'resnet'"),
        ({"dataset": "cifar"}, "'cifar'"),
        ({"epochs": 0}, "0"),
        ({"epochs": -3}, "-3"),
        ({"batch_size": 0}, "0"),
        ({"epochs": 2.5}, "2.5"),
        ({"epochs": True}, "True"),
        ({"validation_split": 1.0}, "1.0"),
        ({"learning_rate": 0.0}, "0.0"),
        ({"learning_rate": float("nan")}, "nan"),
        ({"steps_per_execution": 0}, "0"),
        ({"input": "csv"}, "'csv'"),
        ({"suite": "../escape"}, "'../escape'"),
        ({"suite": "a/b"}, "'a/b'"),
    ],
)
def test_bad_run_values_are_quoted(kwargs: dict, quoted: str) -> None:
    with pytest.raises(ConfigError) as err:
        RunSpec(**kwargs)
    assert quoted in str(err.value)


def test_registry_miss_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="baseline.*batchnorm.*batchnorm_dropout"):
        RunSpec(benchmark="nosuch")
    with pytest.raises(ConfigError, match="mnist-5k"):
        RunSpec(dataset="nosuch")


@pytest.mark.parametrize(
    ("kwargs", "quoted"),
    [
        ({"device": "tpu"}, "'tpu'"),
        ({"precision": "fp16"}, "'fp16'"),
        ({"xla": "on"}, "'on'"),
        ({"precision": "mixed", "mixed_policy": "float8"}, "'float8'"),
        ({"precision": "fp32", "mixed_policy": "mixed_float16"}, "'mixed_float16'"),
    ],
)
def test_bad_path_values_are_quoted(kwargs: dict, quoted: str) -> None:
    with pytest.raises(ConfigError) as err:
        PathSpec(**kwargs)
    assert quoted in str(err.value)


def test_mixed_policy_per_device_and_override() -> None:
    assert PathSpec("cpu", "mixed").policy == "mixed_bfloat16"
    assert PathSpec("gpu", "mixed").policy == "mixed_float16"
    assert PathSpec("cpu", "mixed", mixed_policy="mixed_float16").policy == "mixed_float16"
    assert PathSpec("gpu", "fp32").policy == "float32"
    assert PathSpec("gpu", "mixed", True).name == "gpu-mixed_float16-xla"
    assert PathSpec().name == "cpu-fp32"


def test_determinism_resolution_and_xla_conflict() -> None:
    assert RunSpec().deterministic_ops is True
    # XLA runs turn determinism off: Keras would silently drop jit_compile otherwise.
    assert RunSpec(path=PathSpec(xla=True)).deterministic_ops is False
    assert RunSpec(deterministic=False).deterministic_ops is False
    with pytest.raises(ConfigError, match="jit_compile"):
        RunSpec(path=PathSpec(xla=True), deterministic=True)


def test_seed_defaults() -> None:
    spec = RunSpec()
    assert (spec.epochs, spec.batch_size, spec.validation_split, spec.learning_rate) == (10, 32, 0.2, 0.001)
    assert spec.steps_per_execution == 1 and spec.dropout_rate == 0.2


def test_execution_names_the_loop_settings_not_the_experiment() -> None:
    assert RunSpec().execution == "tfdata,spe1"
    fast = RunSpec(input="numpy", steps_per_execution=64, loop="compiled")
    assert fast.execution == "numpy,spe64,compiled"
    assert fast.hyperparameters == RunSpec().hyperparameters  # same experiment, another execution


def test_spec_round_trip_and_stable_run_id() -> None:
    spec = RunSpec(benchmark="batchnorm_dropout", path=PathSpec("cpu", "mixed", True), seed=3, epochs=2)
    again = RunSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert again.run_id == spec.run_id
    assert spec.run_id.startswith("batchnorm_dropout-mnist-5k-cpu-mixed_bfloat16-xla-s3-")
    assert spec.replace(epochs=3).run_id != spec.run_id


def test_from_dict_is_strict() -> None:
    data = RunSpec().to_dict()
    assert data["spec_version"] == SPEC_VERSION
    with pytest.raises(ConfigError, match="unknown key.*'epochz'"):
        RunSpec.from_dict({**data, "epochz": 3})
    with pytest.raises(ConfigError, match="spec_version 99"):
        RunSpec.from_dict({**data, "spec_version": 99})
    with pytest.raises(ConfigError, match="JSON object"):
        RunSpec.from_dict([1, 2])
    with pytest.raises(ConfigError, match="path must be a JSON object"):
        RunSpec.from_dict({**data, "path": "cpu"})


def test_load_spec_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError, match="cannot read spec.*nope.json"):
        load_spec(str(missing))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json.*not valid JSON"):
        load_spec(str(bad))
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"epochs": -1}))
    with pytest.raises(ConfigError, match="wrong.json.*epochs.*-1"):
        load_spec(str(wrong))


def test_repeats_change_the_run_id_but_not_the_experiment() -> None:
    spec = RunSpec(benchmark="baseline", seed=3)
    again = spec.replace(repeat=2)
    assert again.run_id.startswith("baseline-mnist-5k-cpu-fp32-s3-r2-") and again.run_id != spec.run_id
    assert again.hyperparameters == spec.hyperparameters and again.execution == spec.execution
    assert "repeat" not in spec.to_dict()  # repeat 0: the run ids of specs written before repeats existed
    assert RunSpec.from_dict(again.to_dict()) == again
    with pytest.raises(ConfigError, match="repeat"):
        RunSpec(repeat=-1)


@pytest.mark.parametrize("fault, parsed", [("raise", ("raise", None)), ("slow:0.15", ("slow", 0.15))])
def test_faults_parse(fault: str, parsed: tuple[str, float | None]) -> None:
    assert parse_fault(fault) == parsed
    assert RunSpec(inject_fault=fault).inject_fault == fault


@pytest.mark.parametrize("fault", ["slow", "slow:0", "slow:-1", "slow:nan", "slow:11", "slow:x", "raise:1", "spin"])
def test_bad_faults_are_quoted(fault: str) -> None:
    with pytest.raises(ConfigError, match="inject_fault") as exc:
        RunSpec(inject_fault=fault)
    assert repr(fault) in str(exc.value)
