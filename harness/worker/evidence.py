"""Evidence, not intent: what actually ran, read back from TensorFlow and Keras after the run."""

from __future__ import annotations

import os
from typing import Any

from harness.spec.run_spec import RunSpec
from harness.store.results import Evidence
from harness.worker import distribute
from harness.worker.tf_setup import PathMismatchError


def variable_device(model: Any) -> str:
    """Device string of the first trainable variable, e.g. '/job:localhost/replica:0/task:0/device:CPU:0'."""
    var = model.trainable_variables[0]
    value = getattr(var, "value", var)
    return str(getattr(value, "device", "") or "")


def op_determinism_enabled() -> bool:
    """Read back op determinism (the public API only exposes enable/disable in TF 2.21)."""
    from tensorflow.python.framework import config as tf_config

    return bool(tf_config.is_op_determinism_enabled())


def loss_scale(model: Any) -> tuple[bool, float | None]:
    """(the compiled optimizer scales the loss, its dynamic loss scale now or None before it was built)."""
    import keras

    optimizer = getattr(model, "optimizer", None)
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return False, None
    scale = getattr(optimizer, "dynamic_scale", None)  # created when the optimizer is built
    return True, None if scale is None else float(scale.numpy())


def collect(tf: Any, model: Any, spec: RunSpec, *, global_batch_size: int | None = None) -> Evidence:
    """The evidence of a run whose model has been built (and trained or probed); ``global_batch_size``:
    the batch the training input was built with (None for a probe)."""
    import keras

    scaling, scale = loss_scale(model)
    dist = distribute.read_back(tf, model)
    per_replica = None if global_batch_size is None else -(-global_batch_size // dist.num_replicas_in_sync)
    return Evidence(
        physical_devices=[d.name for d in tf.config.list_physical_devices()],
        variable_device=variable_device(model),
        dtype_policy=keras.mixed_precision.global_policy().name,
        jit_compile=bool(model.jit_compile),
        deterministic_ops=op_determinism_enabled(),
        steps_per_execution=int(getattr(model, "steps_per_execution", spec.steps_per_execution) or 1),
        training_loop=spec.loop,
        tensor_float_32=bool(tf.config.experimental.tensor_float_32_execution_enabled()),
        nvidia_tf32_override=os.environ.get("NVIDIA_TF32_OVERRIDE"),
        loss_scaling=scaling,
        loss_scale=scale,
        distribute_strategy=dist.strategy,
        num_replicas_in_sync=dist.num_replicas_in_sync,
        replica_devices=dist.replica_devices,
        variable_class=dist.variable_class,
        variable_replica_devices=dist.variable_devices,
        sync_batchnorm=distribute.sync_batchnorm_state(model),
        global_batch_size=global_batch_size,
        per_replica_batch_size=per_replica,
        cluster=dist.cluster,
        num_workers=sum(len(tasks) for tasks in dist.cluster.values()) if dist.cluster else None,
        task_type=dist.task_type,
        task_index=dist.task_index,
    )


def require_match(evidence: Evidence, spec: RunSpec) -> None:
    """A run whose resolved settings differ from the request is an error, not a quiet success."""
    problems = evidence.mismatches(spec)
    if problems:
        raise PathMismatchError("the path that ran is not the path asked for: " + "; ".join(problems))
