"""Replicas through the real worker: MirroredStrategy on two logical CPU devices of this machine.

The compiled loop's adapter is bit-identical to ``model.fit`` under the same strategy (both data orders,
several steps per call, synchronised BN); the evidence reads the strategy, the replicas and the
variables' copies back from TensorFlow; the one-device path records itself as such.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.orchestrate.backends.local import LocalBackend
from harness.spec.run_spec import PathSpec, RunSpec
from harness.store.results import RunResult
from harness.worker import distribute

X2 = PathSpec(replicas=2)
DEVICE = "/job:localhost/replica:0/task:0/device:CPU:{}"


def history(result: RunResult) -> list[tuple[float, float, float | None, float | None]]:
    return [(e.train_loss, e.train_accuracy, e.val_loss, e.val_accuracy) for e in result.epochs]


def run_pair(base: RunSpec, compiled: RunSpec, tmp_path: Path) -> tuple[RunResult, RunResult]:
    fit = LocalBackend().run(base, tmp_path)
    loop = LocalBackend().run(compiled, tmp_path)
    assert fit.ok, fit.error
    assert loop.ok, loop.error
    return fit, loop


@pytest.mark.slow
def test_compiled_loop_under_the_strategy_is_fit_under_the_strategy_bit_for_bit(tmp_path: Path) -> None:
    # tf.data order, 4 steps per compiled call: what Keras's own steps_per_execution cannot run on replicas.
    base = RunSpec(benchmark="baseline", epochs=2, max_train_samples=640, path=X2)
    fit, loop = run_pair(base, base.replace(loop="compiled", steps_per_execution=4), tmp_path)
    assert history(fit) == history(loop)
    assert (fit.test_loss, fit.test_accuracy) == (loop.test_loss, loop.test_accuracy)
    for result in (fit, loop):
        ev = result.evidence
        assert ev.distribute_strategy == "MirroredStrategy" and ev.num_replicas_in_sync == 2
        assert ev.replica_devices == [DEVICE.format(0), DEVICE.format(1)]
        assert ev.variable_class == "MirroredVariable"
        assert ev.variable_replica_devices == [DEVICE.format(0), DEVICE.format(1)]
        assert (ev.global_batch_size, ev.per_replica_batch_size) == (32, 16)
        assert ev.sync_batchnorm is None  # baseline: no BN layer
    assert loop.evidence.training_loop == "compiled" and loop.timing.steps_per_sample == 4


@pytest.mark.slow
def test_adapter_keeps_numpy_order_and_synchronised_bn_like_fit(tmp_path: Path) -> None:
    base = RunSpec(benchmark="batchnorm", epochs=2, max_train_samples=640, path=X2, input="numpy", sync_batchnorm=True)
    fit, loop = run_pair(base, base.replace(loop="compiled"), tmp_path)
    assert history(fit) == history(loop)
    assert fit.evidence.sync_batchnorm is True and loop.evidence.sync_batchnorm is True


@pytest.mark.slow
def test_weak_scaling_feeds_the_global_batch_and_records_both(tmp_path: Path) -> None:
    spec = RunSpec(benchmark="baseline", epochs=1, max_train_samples=640, path=X2, batch_per_replica=True)
    result = LocalBackend().run(spec, tmp_path)
    assert result.ok, result.error
    assert (result.evidence.global_batch_size, result.evidence.per_replica_batch_size) == (64, 32)
    assert result.run_spec.batch_per_replica is True
    # 512 training samples in global batches of 64: 8 steps per epoch, each timed.
    assert len(result.timing.step_time_ms) == 8


def fake_tf(gpus: int) -> SimpleNamespace:
    """Stands in for the ``tensorflow`` module's device listing (a CPU host cannot show GPUs)."""
    listing = {"GPU": [f"GPU:{i}" for i in range(gpus)], "CPU": ["CPU:0"]}
    return SimpleNamespace(config=SimpleNamespace(list_physical_devices=lambda kind: listing[kind]))


def test_a_gpu_path_needs_as_many_gpus_as_replicas() -> None:
    spec = RunSpec(path=PathSpec(device="gpu", replicas=4))
    with pytest.raises(distribute.ReplicaError, match="replicas 4 on device 'gpu' needs 4 GPUs, TensorFlow sees 2"):
        distribute.configure_devices(fake_tf(2), spec)
    distribute.configure_devices(fake_tf(4), spec)  # enough GPUs: nothing to configure
    assert distribute.replica_devices(spec) == ["/gpu:0", "/gpu:1", "/gpu:2", "/gpu:3"]
    assert distribute.replica_devices(RunSpec(path=X2)) == ["/cpu:0", "/cpu:1"]


def test_a_worker_without_its_cluster_refuses_before_touching_tensorflow(monkeypatch: pytest.MonkeyPatch) -> None:
    w2 = RunSpec(path=PathSpec(workers=2), loop="compiled")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.start_cluster(None, RunSpec()) is None  # one worker: no cluster, no TF_CONFIG needed
    with pytest.raises(distribute.ReplicaError, match="workers 2 need TF_CONFIG in the environment"):
        distribute.start_cluster(None, w2)
    monkeypatch.setenv(
        "TF_CONFIG", '{"cluster": {"chief": ["127.0.0.1:23456"]}, "task": {"type": "chief", "index": 0}}'
    )
    with pytest.raises(distribute.ReplicaError, match=r"TF_CONFIG names 1 member\(s\) .* the run asks for 2"):
        distribute.start_cluster(None, w2)
