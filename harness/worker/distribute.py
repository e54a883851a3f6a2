"""Replicas on one host: ``tf.distribute.MirroredStrategy`` over N devices, and what the harness adds to it.

A path with ``replicas`` N >= 2 trains under a MirroredStrategy over N GPUs, or over N *logical* CPU
devices on a CPU path (configured before TensorFlow initialises), so that the real strategy runs on a
CPU-only machine. One replica keeps the path as it always ran: no strategy, the model on one device.

What this module owns, each measured against one device (TF 2.21 / Keras 3.15):

* **Placement** (:func:`placement`): the strategy's scope (model, optimizer and metric variables are
  created under it, so Keras records the strategy and mirrors the variables) or ``tf.device``.
* **The data order** (:func:`keep_data_order`): under any strategy ``Model.fit`` draws one batch from
  a fresh iterator of the training data to build the model symbolically, then resets the iterator;
  with ``shuffle(reshuffle_each_iteration=True)`` that spends one reshuffle, so epoch k would see the
  order one device sees in epoch k+1. The harness builds the model itself beforehand and skips that
  draw, so N replicas see exactly the batches one device sees: the same optimisation.
* **Synchronised BatchNormalization** (:func:`synchronize_batchnorm`): every BN layer of the built model
  computes its batch statistics over the global batch (``synchronized=True``, read by the layer when
  the training step is traced), whatever benchmark built it.
* **The compiled loop's steps** (:func:`step_functions`): ``strategy.run`` per step, called from the
  compiled loop in cross-replica context (the structure of Keras's own multi-step function); each
  replica trains on its contiguous share of the global batch, the split ``fit``'s distributed dataset
  gives it, so the compiled loop stays bit-identical to ``fit`` under the same strategy.
* **Read-back** (:func:`read_back`): the strategy, the replicas in sync, their devices, and where the
  first trainable variable's copies live; for workers, the cluster and this process's task.

Workers across processes (:func:`start_cluster`) train under ``MultiWorkerMirroredStrategy``, one
replica per process, with the compiled loop only (Keras 3.15's ``fit`` fails under it): every worker
draws the same permutation from the seed and trains its share of each global batch (:func:`step_functions`;
the replica id is global), so N workers run the one-device optimisation too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from harness.spec.run_spec import RunSpec

log = logging.getLogger(__name__)


class ReplicaError(RuntimeError):
    """The replicas asked for cannot be placed (e.g. fewer GPUs than replicas)."""


def configure_devices(tf: Any, spec: RunSpec) -> None:
    """N logical CPU devices for a CPU path with N >= 2 replicas; a GPU path needs N visible GPUs.

    Must run before TensorFlow initialises its devices (before the first op).
    """
    n = spec.path.replicas
    if n < 2:
        return
    if spec.path.device == "gpu":
        gpus = tf.config.list_physical_devices("GPU")
        if len(gpus) < n:
            raise ReplicaError(f"replicas {n} on device 'gpu' needs {n} GPUs, TensorFlow sees {len(gpus)}")
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)])


def replica_devices(spec: RunSpec) -> list[str]:
    """The devices the strategy mirrors over, given explicitly: with no GPU, MirroredStrategy's default
    device list is only ``/cpu:0`` whatever the logical devices."""
    return [f"/{spec.path.device}:{i}" for i in range(spec.path.replicas)]


@dataclass(frozen=True)
class Placement:
    """Where the model lives: under ``strategy`` (N >= 2 replicas) or on ``device`` (one replica)."""

    tf: Any
    device: str  # e.g. "CPU:0"
    strategy: Any | None = None

    def scope(self) -> Any:
        """The context to build (and train) the model in."""
        if self.strategy is not None:
            return self.strategy.scope()
        return self.tf.device(f"/{self.device}")


def start_cluster(tf: Any, spec: RunSpec) -> Any | None:
    """The ``MultiWorkerMirroredStrategy`` of a run with N >= 2 workers (None for one worker).

    Created before any op runs (collective ops are configured at program start-up) from the
    ``TF_CONFIG`` the backend set (:mod:`harness.spec.cluster`); blocks until every member of the
    cluster is up (a member that never starts is the backend's timeout to end). One replica per worker.
    """
    if spec.path.workers < 2:
        return None
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ReplicaError(
            f"workers {spec.path.workers} need TF_CONFIG in the environment (the docker backend sets it)"
        )
    cluster = json.loads(raw).get("cluster", {})
    members = sum(len(v) for v in cluster.values())
    if members != spec.path.workers:
        raise ReplicaError(f"TF_CONFIG names {members} member(s) {cluster!r}, the run asks for {spec.path.workers}")
    log.info("MultiWorkerMirroredStrategy, cluster %s (waiting for every member)", cluster)
    return tf.distribute.MultiWorkerMirroredStrategy()


def placement(tf: Any, spec: RunSpec, device: str, cluster: Any | None = None) -> Placement:
    """The run's placement: ``cluster`` (the multi-worker strategy of :func:`start_cluster`), a
    MirroredStrategy over the replicas, or one device."""
    if cluster is not None:
        return Placement(tf, device, cluster)
    if spec.path.replicas < 2:
        return Placement(tf, device)
    strategy = tf.distribute.MirroredStrategy(devices=replica_devices(spec))
    log.info("MirroredStrategy over %s", replica_devices(spec))
    return Placement(tf, device, strategy)


def keep_data_order(model: Any, place: Placement, x_batch: Any, y_batch: Any) -> None:
    """Build ``model`` under the strategy now, so that ``model.fit`` does not draw a batch to build it.

    Keras's ``fit`` under a strategy calls ``_maybe_symbolic_build(iterator=...)``, which iterates the
    training data once (spending one tf.data reshuffle) even for a built model. Building here from
    the first rows (only shapes and dtypes matter) and replacing that method on this model instance
    keeps the one-device data order; a Keras without the method fails here, loudly, instead of
    silently training on another order.
    """
    if place.strategy is None:
        return
    if not callable(getattr(model, "_maybe_symbolic_build", None)):
        raise ReplicaError(
            "this Keras has no Model._maybe_symbolic_build: the harness cannot keep the one-device data order "
            "under a strategy (written for Keras 3.15)"
        )
    with place.strategy.scope():
        model._symbolic_build(data_batch=(x_batch, y_batch))

    def already_built(iterator: Any = None, data_batch: Any = None) -> None:
        """The model was built under the strategy by keep_data_order: nothing to draw, nothing to build."""

    model._maybe_symbolic_build = already_built


def batchnorm_layers(model: Any) -> Iterator[Any]:
    """Every BatchNormalization layer of ``model``, nested models included."""
    import keras

    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.layers.BatchNormalization):
            yield layer
        elif hasattr(layer, "layers"):
            yield from batchnorm_layers(layer)


def synchronize_batchnorm(model: Any, spec: RunSpec) -> None:
    """With ``spec.sync_batchnorm``: every BN layer computes batch statistics over all replicas.

    Keras reads ``synchronized`` when the training step is traced (``BatchNormalization._moments``), so
    setting it on the built model is the same as building the layer with it (measured bit-identical),
    and no model definition needs to know about replicas.
    """
    if spec.sync_batchnorm:
        for layer in batchnorm_layers(model):
            layer.synchronized = True


def sync_batchnorm_state(model: Any) -> bool | None:
    """Whether every BN layer synchronises its statistics; None when the model has no BN layer."""
    flags = [bool(layer.synchronized) for layer in batchnorm_layers(model)]
    return all(flags) if flags else None


def step_functions(model: Any, strategy: Any | None) -> tuple[Callable[[Any, Any], None], Callable[[Any, Any], None]]:
    """(train, test) functions of one global batch ``(x, y)`` for the compiled loop.

    Without a strategy: the model's own ``train_step``/``test_step``. With one: ``strategy.run`` of the
    step on each replica's share, called in cross-replica context (from inside the loop's
    ``tf.while_loop``, never the loop inside ``strategy.run``: the optimizer's ``merge_call`` cannot
    sit in a control-flow body in replica context). Metrics read after the loop in cross-replica
    context are the sums over replicas (SyncOnRead), i.e. the global values.
    """
    if strategy is None:
        return (lambda x, y: model.train_step((x, y))), (lambda x, y: model.test_step((x, y)))
    import tensorflow as tf

    def share(t: Any) -> Any:
        """This replica's rows of a global batch: contiguous ceil(b/n) rows each, as tf.data's rebatch splits."""
        ctx = tf.distribute.get_replica_context()
        n = ctx.num_replicas_in_sync
        rid = tf.cast(ctx.replica_id_in_sync_group, tf.int32)
        b = tf.shape(t)[0]
        per = (b + n - 1) // n
        start = tf.minimum(rid * per, b)
        return t[start : tf.minimum(start + per, b)]

    def train(x: Any, y: Any) -> None:
        strategy.run(lambda xb, yb: model.train_step((share(xb), share(yb))), args=(x, y))

    def test(x: Any, y: Any) -> None:
        strategy.run(lambda xb, yb: model.test_step((share(xb), share(yb))), args=(x, y))

    return train, test


def build_scope(strategy: Any | None) -> Any:
    """The scope optimizer and metric variables must be created in (the strategy's, or none)."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


@dataclass(frozen=True)
class ReadBack:
    """tf.distribute as TensorFlow reports it after the run."""

    strategy: str
    num_replicas_in_sync: int
    replica_devices: list[str] = field(default_factory=list)
    variable_class: str = ""
    variable_devices: list[str] = field(default_factory=list)
    # Multi-worker runs: the cluster as TensorFlow resolved it and this process's task in it.
    cluster: dict[str, Any] = field(default_factory=dict)
    task_type: str | None = None
    task_index: int | None = None


def read_back(tf: Any, model: Any) -> ReadBack:
    """The model's strategy (``_DefaultDistributionStrategy`` for one device), replicas in sync, the
    strategy's devices, and the first trainable variable's class and the device of each of its copies
    (a MirroredVariable has one per replica; its own ``.device`` names only the primary copy)."""
    strategy = model.distribute_strategy
    try:
        devices = [str(d) for d in strategy.extended.worker_devices]
    except RuntimeError:  # the default strategy: "worker_devices() method unsupported by default strategy"
        devices = []
    var = model.trainable_variables[0]
    value = getattr(var, "value", var)
    if isinstance(value, tf.distribute.DistributedValues):
        copies = [str(v.device) for v in value.values]
    else:
        copies = [str(getattr(value, "device", "") or "")]
    resolver: Any = getattr(strategy, "cluster_resolver", None)  # multi-worker strategies only
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    return ReadBack(
        strategy=type(strategy).__name__,
        num_replicas_in_sync=int(strategy.num_replicas_in_sync),
        replica_devices=devices,
        variable_class=type(value).__name__,
        variable_devices=copies,
        cluster={job: list(tasks) for job, tasks in cluster.items()},
        task_type=resolver.task_type if cluster else None,
        task_index=int(resolver.task_id) if cluster else None,
    )
