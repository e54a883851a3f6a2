"""TensorFloat-32 on this CPU wheel: the switch the fp32 and tf32 paths use reads back, and the worker's
evidence check refuses a run whose TF32 state is not the one asked for."""

from __future__ import annotations

import subprocess
import sys

import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from harness.spec.run_spec import PathSpec, RunSpec  # noqa: E402
from harness.worker import evidence  # noqa: E402
from harness.worker.models import build_model  # noqa: E402
from harness.worker.tf_setup import PathMismatchError, gpu_devices, gpu_peak_mb, set_tensor_float_32  # noqa: E402
from tests.helpers import ROOT  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_tf32():
    before = tf.config.experimental.tensor_float_32_execution_enabled()
    yield
    tf.config.experimental.enable_tensor_float_32_execution(before)


def test_tensorflow_turns_tf32_on_by_default() -> None:
    # In a fresh process (this one may have changed it): the default that makes "fp32" not fp32 on Ampere+.
    code = "import tensorflow as tf; print(tf.config.experimental.tensor_float_32_execution_enabled())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "True"


@pytest.mark.parametrize("enabled", [True, False])
def test_switch_reads_back_and_evidence_records_it(enabled: bool) -> None:
    set_tensor_float_32(tf, enabled)
    assert tf.config.experimental.tensor_float_32_execution_enabled() is enabled
    path = PathSpec("gpu", "tf32") if enabled else PathSpec()
    spec = RunSpec(benchmark="baseline", path=path)
    model = build_model(spec.replace(path=PathSpec()))  # built on CPU: only TF32 is under test here
    ran = evidence.collect(tf, model, spec)
    assert ran.tensor_float_32 is enabled
    assert ran.loss_scaling is False and ran.loss_scale is None  # float32: no LossScaleOptimizer
    assert not [p for p in ran.mismatches(spec) if "TensorFloat-32" in p]


def test_a_run_whose_tf32_state_differs_from_the_request_is_refused() -> None:
    spec = RunSpec(benchmark="baseline", deterministic=False)  # cpu-fp32: TF32 must be off
    model = build_model(spec)
    set_tensor_float_32(tf, True)  # TF's default, as if the worker had not turned it off
    ran = evidence.collect(tf, model, spec)
    with pytest.raises(PathMismatchError, match=r"TensorFloat-32 execution is on, asked for off \(precision 'fp32'\)"):
        evidence.require_match(ran, spec)
    set_tensor_float_32(tf, False)
    evidence.require_match(evidence.collect(tf, model, spec), spec)  # the same run with TF32 off passes


def test_nvidia_override_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NVIDIA_TF32_OVERRIDE", "0")
    spec = RunSpec(benchmark="baseline", path=PathSpec("gpu", "tf32"))
    set_tensor_float_32(tf, True)
    ran = evidence.collect(tf, build_model(spec.replace(path=PathSpec())), spec)
    assert ran.nvidia_tf32_override == "0"
    assert any("NVIDIA_TF32_OVERRIDE=0" in p for p in ran.mismatches(spec))


def test_no_gpu_memory_figures_on_a_cpu_host() -> None:
    assert gpu_devices(tf) == [] and gpu_peak_mb(tf) == {}


def test_one_device_evidence_and_the_sync_bn_hook_read_back() -> None:
    from harness.worker import distribute

    spec = RunSpec(benchmark="batchnorm", sync_batchnorm=True)
    model = build_model(spec)
    assert distribute.sync_batchnorm_state(model) is False  # as built: Keras's per-replica default
    distribute.synchronize_batchnorm(model, spec)
    assert distribute.sync_batchnorm_state(model) is True
    assert [layer.synchronized for layer in distribute.batchnorm_layers(model)] == [True, True]
    ran = evidence.collect(tf, model, spec, global_batch_size=32)
    assert ran.distribute_strategy == "_DefaultDistributionStrategy" and ran.num_replicas_in_sync == 1
    assert ran.replica_devices == [] and len(ran.variable_replica_devices) == 1
    assert (ran.sync_batchnorm, ran.global_batch_size, ran.per_replica_batch_size) == (True, 32, 32)
    assert not [p for p in ran.mismatches(spec) if "replica" in p or "synchron" in p or "batch" in p]
    baseline = build_model(spec.replace(benchmark="baseline"))
    assert distribute.sync_batchnorm_state(baseline) is None
