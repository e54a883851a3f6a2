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


def test_tf32_is_its_own_gpu_path_and_fp32_means_fp32() -> None:
    tf32 = PathSpec("gpu", "tf32")
    assert (tf32.name, tf32.policy, tf32.tensor_float_32) == ("gpu-tf32", "float32", True)
    assert PathSpec("gpu", "tf32", xla=True).name == "gpu-tf32-xla"
    # fp32 and the mixed policies run with TF32 off on every device.
    assert not PathSpec("gpu", "fp32").tensor_float_32 and not PathSpec("gpu", "mixed").tensor_float_32
    assert RunSpec.from_dict(RunSpec(path=tf32).to_dict()).path == tf32


def test_tf32_on_cpu_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError) as err:
        PathSpec("cpu", "tf32")
    message = str(err.value)
    assert "\n" not in message and "'tf32'" in message and "device 'cpu'" in message and "'fp32'" in message
    with pytest.raises(ConfigError, match="needs precision 'mixed'"):
        PathSpec("gpu", "tf32", mixed_policy="mixed_float16")


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


def test_op_determinism_off_without_xla_is_an_execution_of_its_own() -> None:
    # On CPU determinism on/off gives other numbers (TF-FACTS): never one group. The automatic
    # setting (on; off with XLA) keeps the plain names.
    assert RunSpec(deterministic=False).execution == "tfdata,spe1,det-off"
    assert RunSpec(deterministic=True).execution == RunSpec().execution == "tfdata,spe1"
    xla = PathSpec(xla=True)
    assert RunSpec(path=xla, deterministic=False).execution == RunSpec(path=xla).execution == "tfdata,spe1"
    assert RunSpec(deterministic=False).hyperparameters == RunSpec().hyperparameters


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


# --- replicas, batch semantics, synchronised BN -------------------------------------------------


def test_one_replica_keeps_the_path_name_and_n_replicas_name_it() -> None:
    assert PathSpec().name == "cpu-fp32" and PathSpec(xla=True).name == "cpu-fp32-xla"
    assert PathSpec(replicas=2).name == "cpu-fp32-x2"
    assert PathSpec(device="gpu", precision="mixed", replicas=4).name == "gpu-mixed_float16-x4"


@pytest.mark.parametrize(
    ("kwargs", "quoted"),
    [
        ({"replicas": 0}, "0"),
        ({"replicas": 1.5}, "1.5"),
        ({"replicas": True}, "True"),
        ({"replicas": "2"}, "'2'"),
    ],
)
def test_bad_replica_counts_are_quoted(kwargs: dict, quoted: str) -> None:
    with pytest.raises(ConfigError, match="replicas") as err:
        PathSpec(**kwargs)
    assert quoted in str(err.value)


def test_xla_with_replicas_is_refused_in_one_line_and_one_replica_with_xla_is_not() -> None:
    with pytest.raises(ConfigError) as err:
        PathSpec(xla=True, replicas=2)
    message = str(err.value)
    assert "\n" not in message and "xla=on cannot run with 2 replicas" in message and "xla=off" in message
    assert PathSpec(xla=True, replicas=1).xla


def test_refused_replica_combinations_say_why_in_one_line() -> None:
    x2 = PathSpec(replicas=2)
    cases = [
        (dict(path=x2, steps_per_execution=8), "steps_per_execution 8 with 2 replicas fails in keras Model.fit"),
        (dict(path=x2, mode="probe"), "replicas 2 needs mode 'train'"),
        (dict(path=PathSpec(replicas=3)), "batch_size 32 (the global batch) does not split evenly over 3 replicas"),
    ]
    for kwargs, expected in cases:
        with pytest.raises(ConfigError) as err:
            RunSpec(**kwargs)
        assert expected in str(err.value) and "\n" not in str(err.value)
    # The compiled loop runs several steps per call under the strategy; weak scaling splits any batch.
    assert RunSpec(path=x2, steps_per_execution=8, loop="compiled").path.replicas == 2
    assert RunSpec(path=PathSpec(replicas=3), batch_per_replica=True).global_batch_size == 96


def test_global_batch_is_the_spec_batch_unless_per_replica() -> None:
    assert RunSpec(path=PathSpec(replicas=2)).global_batch_size == 32
    assert RunSpec(path=PathSpec(replicas=2), batch_per_replica=True).global_batch_size == 64
    assert RunSpec(batch_per_replica=True).global_batch_size == 32
    # The split rule counts global batches: 40 training samples hold one batch of 32, not one of 64.
    weak = RunSpec(path=PathSpec(replicas=2), batch_per_replica=True, validation_split=0.0)
    assert weak.split_too_small(40, 0) and not RunSpec(validation_split=0.0).split_too_small(40, 0)


def test_batch_semantics_are_hyperparameters_and_sync_bn_is_execution() -> None:
    strong, weak = RunSpec(path=PathSpec(replicas=2)), RunSpec(path=PathSpec(replicas=2), batch_per_replica=True)
    assert strong.hyperparameters["batch_per_replica"] is False and weak.hyperparameters["batch_per_replica"] is True
    # x1 and x2 of one configuration are one experiment: same hyperparameters, other paths.
    assert strong.hyperparameters == RunSpec().hyperparameters
    synced = strong.replace(sync_batchnorm=True)
    assert synced.hyperparameters == strong.hyperparameters
    assert (strong.execution, synced.execution) == ("tfdata,spe1", "tfdata,spe1,syncbn")
    with pytest.raises(ConfigError, match="sync_batchnorm must be true or false, got 'on'"):
        RunSpec(sync_batchnorm="on")
    with pytest.raises(ConfigError, match="batch_per_replica must be true or false, got 1"):
        RunSpec(batch_per_replica=1)


def test_replica_fields_round_trip_and_old_specs_read_as_one_replica() -> None:
    spec = RunSpec(path=PathSpec(replicas=2), batch_per_replica=True, sync_batchnorm=True)
    assert RunSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    # At their defaults the replica fields are left out: a spec written before they existed is the same
    # dict (and run id), and reads back as one replica.
    old = RunSpec().to_dict()
    assert not {"batch_per_replica", "sync_batchnorm"} & set(old) and "replicas" not in old["path"]
    assert RunSpec.from_dict(old) == RunSpec()
    assert spec.to_dict()["path"]["replicas"] == 2 and spec.to_dict()["sync_batchnorm"] is True


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


def test_workers_name_the_path_and_one_worker_keeps_the_spec_and_run_id() -> None:
    assert PathSpec(workers=2).name == "cpu-fp32-w2" and PathSpec(workers=1).name == "cpu-fp32"
    w2 = RunSpec(path=PathSpec(workers=2), loop="compiled")
    assert w2.path.replicas_in_sync == 2 and w2.global_batch_size == 32
    assert RunSpec(path=PathSpec(workers=2), loop="compiled", batch_per_replica=True).global_batch_size == 64
    assert RunSpec.from_dict(json.loads(json.dumps(w2.to_dict()))) == w2
    # One worker is every run before workers existed: the spec JSON (and so the run id) is unchanged.
    assert "workers" not in RunSpec().to_dict()["path"] and "workers" in w2.to_dict()["path"]
    assert RunSpec().run_id == RunSpec(path=PathSpec(workers=1)).run_id
    assert w2.hyperparameters == RunSpec().hyperparameters  # w1 and w2: one experiment, other paths


def test_refused_worker_combinations_say_why_in_one_line() -> None:
    w2 = PathSpec(workers=2)
    cases = [
        (lambda: RunSpec(path=w2), "workers 2 need loop 'compiled'"),
        (lambda: RunSpec(path=w2, loop="compiled", mode="probe"), "replicas 2 needs mode 'train'"),
        (lambda: RunSpec(path=PathSpec(workers=3), loop="compiled"), "does not split evenly over 3 replicas"),
        (lambda: PathSpec(workers=2, replicas=2), "workers 2 with replicas 2: each worker runs one replica"),
        (lambda: PathSpec(workers=2, xla=True), "xla=on cannot run with 2 replicas"),
        (lambda: PathSpec(workers=0), "workers must be an integer >= 1, got 0"),
        (lambda: PathSpec(workers="2"), "workers must be an integer >= 1, got '2'"),
    ]
    for make, expected in cases:
        with pytest.raises(ConfigError) as err:
            make()
        assert expected in str(err.value) and "\n" not in str(err.value)
