"""The numerics probe: one fixed batch through one path, layer by layer, against float64.

With the initial weights of the run (built from the seed) and one fixed batch, the path's model
computes every layer's activations, the loss and the gradients (with respect to each layer's
weights and to its output) under the path's dtype policy and ``jit_compile``. A float64 clone
with the same weights computes the same quantities in the same process; each quantity is compared
with a tolerance scaled to the path's compute dtype, and the first layer beyond tolerance is named:
forward, the first layer whose activations depart (errors flow forward from there); if every
activation agrees, backward, the last layer whose own gradients (with respect to its input and its
weights) depart (errors flow backward from there).

Probe semantics: BatchNormalization uses batch statistics (``training=True``, as in a training
step); Dropout is the identity (its random mask would differ between the path and the reference,
and the probe is about arithmetic, not randomness). The error measure is the relative L2
error ``||a - r|| / ||r||`` (of a layer's weight gradients taken together).

The worker sets policy, XLA and determinism before calling :func:`probe_payload`; ``compare`` reads the
payload from ``RunResult.extra["probe"]``. TensorFlow and Keras are imported lazily.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.spec.run_spec import RunSpec
from harness.store.jsonio import json_safe
from harness.worker import probe_routes
from harness.worker.probe_tolerances import NUMERICS_OF_DTYPE, path_numerics, tolerances

log = logging.getLogger(__name__)

PROBE_VERSION = 1
# float16 gradients underflow without loss scaling (Keras wraps the optimizer in a
# LossScaleOptimizer for mixed_float16); the probe scales the loss by a fixed power of two.
FLOAT16_LOSS_SCALE = 2.0**10
_TINY = 1e-30


def fixed_batch(dataset: Any, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``batch_size`` training rows: the same bytes for every path of one dataset."""
    n = min(int(batch_size), len(dataset.x_train))
    x = np.ascontiguousarray(dataset.x_train[:n], dtype=np.float32)
    y = np.ascontiguousarray(dataset.y_train[:n], dtype=np.int32)
    return x, y


def _sha256_arrays(arrays: list[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for arr in arrays:
        arr = np.ascontiguousarray(arr)
        digest.update(str(arr.dtype).encode())
        digest.update(str(arr.shape).encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def weights_sha256(model: Any) -> str:
    """Fingerprint of a model's weights as stored (float32 variables under every policy)."""
    return _sha256_arrays([np.asarray(w) for w in model.get_weights()])


def clone_with_dtype(model: Any, dtype: str, overrides: dict[str, str] | None = None) -> Any:
    """A copy of ``model`` whose layers use ``dtype`` (a dtype or policy name), with per-layer
    ``overrides`` (layer name -> dtype), and the same weights cast to each layer's variable dtype."""
    import keras

    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - {layer.name for layer in model.layers})
    if unknown:
        raise ValueError(f"no layer(s) {unknown} in model {model.name!r}")

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        config["dtype"] = overrides.get(layer.name, dtype)
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    for src, dst in zip(model.layers, copy.layers, strict=True):
        weights = src.get_weights()
        if weights:
            dst.set_weights([np.asarray(w).astype(v.dtype) for w, v in zip(weights, dst.weights, strict=True)])
    return copy


def _compute_layers(model: Any) -> list[Any]:
    import keras

    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def _forward_backward(
    model: Any,
    x: Any,
    y: Any,
    loss_scale: float,
    routes: dict[int, Any] | None = None,
    loss_name: str = "sparse_categorical_crossentropy",
) -> tuple[list[Any], Any, list[Any], list[Any]]:
    """Layer-by-layer forward pass and gradients; traceable by tf.function (with or without XLA).

    Returns (activations, loss, boundary grads, weight grads): ``boundary grads`` has one entry
    more than there are layers: the gradient with respect to the input, then to each layer's
    output; so layer ``i``'s input gradient is entry ``i`` and its output gradient entry ``i+1``.
    """
    import keras
    import tensorflow as tf

    layers = _compute_layers(model)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        h = x
        activations = []
        for i, layer in enumerate(layers):
            if isinstance(layer, keras.layers.Dropout):
                h = tf.identity(h)  # see module docstring: dropout is the identity in the probe
            elif isinstance(layer, keras.layers.BatchNormalization):
                h = layer(h, training=True)
            elif routes is not None and i in routes:
                h = probe_routes.routed(h, routes[i])  # the reference replays the path's pooling choice
            else:
                h = layer(h)
            activations.append(h)
        probs = tf.cast(activations[-1], tf.float32 if activations[-1].dtype != tf.float64 else tf.float64)
        loss = tf.reduce_mean(keras.losses.get(loss_name)(y, probs))  # the benchmark's loss, per sample
        scaled = loss * tf.cast(loss_scale, loss.dtype)
    act_grads = tape.gradient(scaled, [x, *activations])
    weight_grads = [
        tape.gradient(scaled, layer.trainable_weights) if layer.trainable_weights else [] for layer in layers
    ]
    del tape
    return activations, loss, act_grads, weight_grads


def _rel_err(a: Any, r: Any) -> float:
    """Relative L2 error ``||a - r|| / ||r||`` of one tensor or of a list of tensors taken together
    (a layer's kernel and bias gradients: a bias feeding BatchNorm has a gradient of ~0, whose own
    relative error would be meaningless)."""
    if isinstance(a, (list, tuple)):
        if not a:
            return 0.0
        a64 = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in a])
        r64 = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in r])
    else:
        a64 = np.asarray(a, dtype=np.float64)
        r64 = np.asarray(r, dtype=np.float64)
    if a64.shape != r64.shape:
        raise ValueError(f"shape mismatch {a64.shape} vs {r64.shape}")
    if not np.all(np.isfinite(a64)):
        return math.inf
    if not r64.size:
        return 0.0
    return float(np.linalg.norm(a64 - r64) / max(float(np.linalg.norm(r64)), _TINY))


def _grad_err(a: Any, r: Any) -> float | None:
    return None if a is None or r is None else _rel_err(a, r)


def _numpy(values: Any, scale: float) -> Any:
    if isinstance(values, (list, tuple)):
        return [_numpy(v, scale) for v in values]
    if values is None:
        return None
    return np.asarray(values, dtype=np.float64) / scale


def compare_models(
    model: Any,
    reference: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    jit_compile: bool = False,
    numerics: str | None = None,
    loss: str = "sparse_categorical_crossentropy",
    watch: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Probe ``model`` against a float64 ``reference`` of the same layers; the JSON-serialisable comparison
    (see :func:`probe_payload`). ``numerics`` (a key of :data:`TOLERANCES`) sets the tolerances; default:
    what the compute dtype implies (a ``tf32`` path must say so: its dtype is float32).
    """
    import tensorflow as tf

    compute_dtype = _policy_compute_dtype(model)
    numerics = numerics or NUMERICS_OF_DTYPE.get(compute_dtype, compute_dtype)
    tol = tolerances(numerics)
    loss_scale = FLOAT16_LOSS_SCALE if compute_dtype == "float16" else 1.0
    x_tf, y_tf = tf.constant(x), tf.constant(y)

    def path_step(xb: Any, yb: Any) -> Any:
        return _forward_backward(model, xb, yb, loss_scale, loss_name=loss)

    step = tf.function(path_step, jit_compile=True) if jit_compile else path_step
    acts, loss_value, act_grads, w_grads = step(x_tf, y_tf)
    routes = probe_routes.pool_routes(_compute_layers(model), x_tf, acts)
    r_acts, r_loss, r_act_grads, r_w_grads = _forward_backward(
        reference, tf.cast(x_tf, tf.float64), y_tf, 1.0, routes, loss
    )
    path_values = _Values(_numpy(acts, 1.0), _numpy(act_grads, loss_scale), _numpy(w_grads, loss_scale))
    ref_values = _Values(_numpy(r_acts, 1.0), _numpy(r_act_grads, 1.0), _numpy(r_w_grads, 1.0))
    dtypes = [str(a.dtype.name) for a in acts]
    layers = _judged_layers(_compute_layers(model), dtypes, path_values, ref_values, tol, watch)
    payload = {
        "probe_version": PROBE_VERSION,
        "compute_dtype": compute_dtype,
        "numerics": numerics,
        "jit_compile": bool(jit_compile),
        "loss_scale": loss_scale,
        "tolerance": tol,
        "batch_size": int(len(x)),
        **_verdict(layers, float(np.asarray(loss_value)), float(np.asarray(r_loss)), tol),
    }
    if routes:
        payload["routed_layers"] = [layer.name for i, layer in enumerate(_compute_layers(model)) if i in routes]
    if watch:
        payload["watched_layers"] = list(watch)
    result: dict[str, Any] = json_safe(payload)
    return result


def _judged_layers(
    layers: list[Any], dtypes: list[str], path: _Values, ref: _Values, tol: dict[str, float], watch: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Each layer's errors and verdicts; only the benchmark's ``probe_layers`` when it names some."""
    judged = [_layer_errors(i, layer.name, dtypes[i], path, ref, tol) for i, layer in enumerate(layers)]
    return [entry for entry in judged if entry["name"] in watch] if watch else judged


def _verdict(layers: list[dict[str, Any]], loss: float, ref_loss: float, tol: dict[str, float]) -> dict[str, Any]:
    """The first divergent layer (forward, then backward), the loss error and whether the probe passed."""
    first, kind = _first_divergent(layers)
    loss_rel = abs(loss - ref_loss) / max(abs(ref_loss), _TINY) if math.isfinite(loss) else math.inf
    names = [layer["name"] for layer in layers]
    logits_idx = names.index("logits") if "logits" in names else len(names) - 1
    passed = first is None and loss_rel <= tol["activation"]
    if first is None and not passed:
        first, kind = "loss", "loss"
    return {
        "loss": loss,
        "loss_float64": ref_loss,
        "loss_rel_err": loss_rel,
        "logits_rel_err": layers[logits_idx]["activation_rel_err"],
        "layers": layers,
        "first_divergent_layer": first,
        "divergence": kind,
        "passed": passed,
    }


@dataclass(frozen=True)
class _Values:
    """One side's probe values as float64 numpy: activations, boundary gradients, weight gradients."""

    activations: list[Any]
    boundary_grads: list[Any]
    weight_grads: list[Any]


def _layer_errors(i: int, name: str, dtype: str, a: _Values, r: _Values, tol: dict[str, float]) -> dict[str, Any]:
    """Layer ``i``'s relative errors against the reference, and whether each is within tolerance."""
    act_err = _rel_err(a.activations[i], r.activations[i])
    # A layer's backward pass produces its input gradient and its weight gradients; an error
    # it introduces shows there (its output gradient comes from the layers after it).
    in_grad_err = _grad_err(a.boundary_grads[i], r.boundary_grads[i])
    out_grad_err = _grad_err(a.boundary_grads[i + 1], r.boundary_grads[i + 1])
    weight_err = _rel_err(a.weight_grads[i], r.weight_grads[i]) if a.weight_grads[i] else None
    own = [v for v in (in_grad_err, weight_err) if v is not None]
    grad_err = max(own) if own else None
    return {
        "name": name,
        "activation_rel_err": act_err,
        "input_grad_rel_err": in_grad_err,
        "output_grad_rel_err": out_grad_err,
        "weight_grad_rel_err": weight_err,
        "gradient_rel_err": grad_err,
        "activation_ok": act_err <= tol["activation"],
        "gradient_ok": grad_err is None or grad_err <= tol["gradient"],
        "dtype": dtype,
    }


def _first_divergent(layers: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """Forward, the first layer whose activations depart; else backward, the last whose gradients do."""
    for layer in layers:
        if not layer["activation_ok"]:
            return layer["name"], "activation"
    for layer in reversed(layers):
        if not layer["gradient_ok"]:
            return layer["name"], "gradient"
    return None, None


def _policy_compute_dtype(model: Any) -> str:
    """The compute dtype of the model's hidden layers (the softmax is always float32)."""
    layers = _compute_layers(model)
    for layer in layers:
        if layer.trainable_weights:
            return str(layer.dtype_policy.compute_dtype)
    return str(layers[0].dtype_policy.compute_dtype)


def probe_payload(spec: RunSpec, dataset: Any) -> dict[str, Any]:
    """Probe ``spec``'s path on one fixed batch of ``dataset`` (a ``harness.data.Dataset``).

    The worker has set the dtype policy, determinism and devices for the path. The model is built
    with the run's seed (the same initial weights as the training run and as every other path),
    a float64 clone gets the same weights, and the comparison is returned as a JSON-serialisable
    dict for ``RunResult.extra["probe"]``: per-layer normalised errors of activations and
    gradients, loss, tolerances, ``first_divergent_layer`` and ``passed``, plus the fingerprints
    of the initial weights and the batch so ``compare`` can check two probes started alike.
    """
    import keras
    import tensorflow as tf

    from harness.worker.models import build_model, definition

    keras.utils.set_random_seed(spec.seed)
    model = build_model(spec, compile_model=False, data=dataset)
    initial = weights_sha256(model)
    reference = clone_with_dtype(model, "float64")
    x, y = fixed_batch(dataset, spec.batch_size)
    bench = definition(spec).benchmark
    payload = compare_models(
        model, reference, x, y, jit_compile=spec.path.xla, numerics=path_numerics(spec), loss=bench.loss,
        watch=bench.probe_layers,
    )  # fmt: skip
    payload.update(
        {
            "policy": spec.path.policy,
            # read back: the tolerance assumes TF32 exactly when numerics is "tf32"
            "tensor_float_32": bool(tf.config.experimental.tensor_float_32_execution_enabled()),
            "seed": spec.seed,
            "initial_weights_sha256": initial,
            "batch_sha256": _sha256_arrays([x, y]),
            "dropout": "identity",
            "batchnorm": "batch statistics (training=True)",
        }
    )
    if payload["passed"]:
        log.info("probe %s: all layers within tolerance", spec.path.name)
    else:
        log.warning(
            "probe %s: first layer beyond tolerance: %s (%s)",
            spec.path.name,
            payload["first_divergent_layer"],
            payload["divergence"],
        )
    return payload


def probe(spec: RunSpec, data_dir: Path | None) -> dict[str, Any]:
    """Probe mode: the fields of an ``ok`` RunResult whose ``extra["probe"]`` holds the payload."""
    from harness.worker import environment, evidence
    from harness.worker.models import build_model
    from harness.worker.telemetry import sampler_for
    from harness.worker.tf_setup import setup

    ready = setup(spec, data_dir)
    with sampler_for(spec.path.device) as telemetry:  # the GPU's static facts (a probe is not timed)
        facts = telemetry.telemetry()
    tf, dataset = ready.tf, ready.dataset
    with tf.device(f"/{ready.device}"):
        model = build_model(spec, data=dataset)  # compiled like a training run: its evidence is the run's
        payload = probe_payload(spec, dataset)
    ran = evidence.collect(tf, model, spec)
    evidence.require_match(ran, spec)
    return {
        "dataset": dataset.info,
        "params": int(model.count_params()),
        "evidence": ran,
        "extra": {"probe": payload},
        "environment": environment.collect(tf),
        "telemetry": facts,
    }
