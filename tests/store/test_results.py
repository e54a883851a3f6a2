"""Result schema: round trip, strict loading, version refusal, results never overwritten."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import ModuleType

import pytest

from harness.errors import ResultError
from harness.spec.run_spec import PathSpec
from harness.store.results import SCHEMA_VERSION, load_result, load_results, write_result


def test_round_trip(tmp_path: Path, factories: ModuleType) -> None:
    result = factories.result()
    path = write_result(result, tmp_path / "r.json")
    assert load_result(path) == result
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION


def test_results_are_never_overwritten(tmp_path: Path, factories: ModuleType) -> None:
    path = write_result(factories.result(), tmp_path / "r.json")
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        write_result(factories.result(test_acc=0.1), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left behind


def test_newer_and_older_schema_refused_with_action(tmp_path: Path, factories: ModuleType) -> None:
    data = factories.result().to_dict()
    for version, hint in ((SCHEMA_VERSION + 1, "upgrade tfparity"), (0, "re-run"), ("1", "re-run")):
        path = tmp_path / f"v{version}.json"
        path.write_text(json.dumps({**data, "schema_version": version}))
        with pytest.raises(ResultError, match=hint):
            load_result(path)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("run_id"),
        lambda d: d.update(status="weird"),
        lambda d: d.update(test_accuracy="high"),
        lambda d: d.update(epochs=[{"epoch": 1}]),
        lambda d: d.update(timing={"step_time_ms": ["x"]}),
        lambda d: d.update(surprise=1),
        lambda d: d["spec"].update(epochs=0),
    ],
)
def test_malformed_results_refused(tmp_path: Path, factories: ModuleType, mutate) -> None:
    data = factories.result().to_dict()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ResultError, match="bad.json"):
        load_result(path)


def test_load_results_dir_skips_specs_and_manifest(tmp_path: Path, factories: ModuleType) -> None:
    write_result(factories.result(), tmp_path / "a.json")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "a.json").write_text("{}")
    (tmp_path / "suite.json").write_text("{}")
    assert len(load_results([tmp_path])) == 1
    with pytest.raises(ResultError, match="no result files"):
        load_results([tmp_path / "specs" / ".." / "specs"])
    with pytest.raises(ResultError, match="no such results"):
        load_results([tmp_path / "missing"])


def test_gpu_facts_round_trip_and_are_checked_strictly(tmp_path: Path, factories: ModuleType) -> None:
    result = factories.result(path=factories.GPU, telemetry=factories.gpu_telemetry(reasons=[0, 4, None]))
    path = write_result(result, tmp_path / "gpu.json")
    loaded = load_result(path)
    assert loaded == result and loaded.telemetry.samples[0].clocks_event_reasons == [0, 4, None]
    assert loaded.memory.tf_gpu_peak_mb == {"GPU:0": 2100.0} and loaded.memory.gpu_peak_mb == 2100.0
    data = json.loads(path.read_text())
    for where, bad in (("samples", [{"index": 0, "power_w": ["hot"]}]), ("gpus", [{"name": "no index"}])):
        broken = json.loads(json.dumps(data))
        broken["telemetry"][where] = bad
        (tmp_path / "bad.json").write_text(json.dumps(broken))
        with pytest.raises(ResultError, match=rf"bad.json.*telemetry\.{where}\[0\]"):
            load_result(tmp_path / "bad.json")
    broken = json.loads(json.dumps(data))
    broken["memory"]["tf_gpu_peak_mb"] = {"GPU:0": "big"}
    (tmp_path / "bad2.json").write_text(json.dumps(broken))
    with pytest.raises(ResultError, match=r"tf_gpu_peak_mb\['GPU:0'\] must be a number"):
        load_result(tmp_path / "bad2.json")


def test_cpu_result_has_no_gpu_memory(factories: ModuleType) -> None:
    assert factories.result().memory.gpu_peak_mb is None


@pytest.mark.parametrize(
    ("path", "overrides", "problem"),
    [
        # fp32 means fp32: TF32 on under an fp32 request is refused, and the reverse for tf32.
        ("CPU", {"tensor_float_32": True}, "TensorFloat-32 execution is on, asked for off (precision 'fp32')"),
        ("GPU_TF32", {"tensor_float_32": False}, "TensorFloat-32 execution is off, asked for on (precision 'tf32')"),
        ("GPU_TF32", {"nvidia_tf32_override": "0"}, "NVIDIA_TF32_OVERRIDE=0"),
        ("GPU_MIXED", {"loss_scaling": False}, "mixed_float16 without loss scaling"),
        ("BF16", {"loss_scaling": True}, "loss scaling on under policy 'mixed_bfloat16'"),
    ],
)
def test_numerics_evidence_mismatches(factories: ModuleType, path: str, overrides: dict, problem: str) -> None:
    spec_path = getattr(factories, path)
    result = factories.result(path=spec_path, evidence_overrides=overrides)
    problems = result.evidence.mismatches(result.run_spec)
    assert len(problems) == 1 and problem in problems[0], problems
    clean = factories.result(path=spec_path)
    assert clean.evidence.mismatches(clean.run_spec) == []


def test_unrecorded_tf32_state_is_a_mismatch(factories: ModuleType) -> None:
    result = factories.result()
    evidence = dataclasses.replace(result.evidence, tensor_float_32=None)
    assert evidence.mismatches(result.run_spec) == ["TensorFloat-32 state was not recorded, asked for TF32 off"]


X2 = PathSpec(replicas=2)


@pytest.mark.parametrize(
    ("spec_changes", "overrides", "problem"),
    [
        ({}, {"num_replicas_in_sync": 1}, "TensorFlow trained 1 replica(s) in sync, asked for 2"),
        ({}, {"variable_replica_devices": ["/job:localhost/replica:0/task:0/device:CPU:0"]}, "have 1 copy(ies)"),
        ({}, {"replica_devices": ["/device:CPU:0", "/device:GPU:0"]}, "replica device '/device:GPU:0' is not a 'cpu'"),
        ({"benchmark": "batchnorm", "sync_batchnorm": True}, {"sync_batchnorm": False}, "synchronized=False"),
        ({}, {"global_batch_size": 64}, "global batch 64, asked for 32"),
    ],
)
def test_replica_evidence_mismatches(factories: ModuleType, spec_changes: dict, overrides: dict, problem: str) -> None:
    result = factories.result(path=X2, evidence_overrides=overrides, **spec_changes)
    problems = result.evidence.mismatches(result.run_spec)
    assert len(problems) == 1 and problem in problems[0], problems
    clean = factories.result(path=X2, **spec_changes)
    assert clean.evidence.mismatches(clean.run_spec) == []


def test_replicas_must_be_recorded_when_asked_for_and_old_one_device_results_pass(factories: ModuleType) -> None:
    x2 = factories.result(path=X2)
    unrecorded = dataclasses.replace(x2.evidence, num_replicas_in_sync=None)
    assert unrecorded.mismatches(x2.run_spec) == ["replicas were not recorded, asked for 2"]
    old = factories.result()  # written before replicas existed: no tf.distribute fields at all
    assert old.evidence.num_replicas_in_sync is None and old.evidence.mismatches(old.run_spec) == []


def test_replica_evidence_round_trips(factories: ModuleType, tmp_path: Path) -> None:
    result = factories.result(path=X2, benchmark="batchnorm", sync_batchnorm=True)
    path = factories.write([result], tmp_path) / f"{result.run_id}.json"
    back = load_result(path)
    assert back.evidence == result.evidence and back.evidence.variable_replica_devices[1].endswith("CPU:1")


def test_a_version_1_result_loads_as_written_and_keeps_its_run_id() -> None:
    # A real result written by the first version (commit b520020, schema 1): every field added since
    # has a default meaning "not recorded", and the spec serialises as it did (same run id).
    path = Path(__file__).parent / "fixtures" / "result-v1.json"
    result = load_result(path)
    assert result.schema_version == 1 and result.ok and result.environment["git_commit"].startswith("b520020")
    assert result.run_spec.run_id == result.run_id == "batchnorm-mnist-5k-cpu-fp32-s0-4941a375"
    assert result.telemetry is None and result.benchmark is None and result.evidence is not None
    assert result.evidence.num_replicas_in_sync is None and result.memory is not None
    assert result.memory.tf_gpu_peak_mb == {}
