"""The numerics probe on real TensorFlow: fp32 agrees with float64, injected differences are named."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from harness import data  # noqa: E402
from harness.spec.run_spec import PathSpec, RunSpec  # noqa: E402
from harness.worker import probe, probe_tolerances  # noqa: E402
from harness.worker.models import build_model  # noqa: E402


@pytest.fixture(scope="module")
def dataset():
    return data.load("mnist-5k")


@pytest.fixture(autouse=True)
def _policy():
    """Every test leaves the global dtype policy as it found it (the worker sets it per run)."""
    before = keras.mixed_precision.global_policy().name
    yield
    keras.mixed_precision.set_global_policy(before)


def _probe(spec: RunSpec, dataset) -> dict:
    keras.mixed_precision.set_global_policy(spec.path.policy)
    return probe.probe_payload(spec, dataset)


def _model_and_reference(dataset, benchmark: str = "batchnorm", seed: int = 0):
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(seed)
    model = build_model(RunSpec(benchmark=benchmark, seed=seed), compile_model=False)
    reference = probe.clone_with_dtype(model, "float64")
    x, y = probe.fixed_batch(dataset, 32)
    return model, reference, x, y


def test_fp32_probe_passes_and_is_json(dataset):
    payload = _probe(RunSpec(benchmark="batchnorm_dropout", seed=1), dataset)
    assert payload["passed"] is True, payload["first_divergent_layer"]
    assert payload["first_divergent_layer"] is None
    names = [layer["name"] for layer in payload["layers"]]
    assert names == [
        "dense_1",
        "bn_1",
        "relu_1",
        "dropout_1",
        "dense_2",
        "bn_2",
        "relu_2",
        "dropout_2",
        "logits",
        "softmax",
    ]
    assert payload["compute_dtype"] == "float32"
    # float32 vs float64: errors of a few float32 epsilons, far inside the tolerance.
    worst = max(layer["activation_rel_err"] for layer in payload["layers"])
    assert 0 < worst < 1e-6
    assert payload["loss"] == pytest.approx(payload["loss_float64"], rel=1e-6)
    json.dumps(payload, allow_nan=False)  # what the worker stores in RunResult.extra["probe"]


def test_same_initial_weights_and_batch_across_policies(dataset):
    fp32 = _probe(RunSpec(seed=3), dataset)
    bf16 = _probe(RunSpec(seed=3, path=PathSpec(precision="mixed")), dataset)
    other_seed = _probe(RunSpec(seed=4), dataset)
    assert fp32["initial_weights_sha256"] == bf16["initial_weights_sha256"]
    assert fp32["batch_sha256"] == bf16["batch_sha256"]
    assert other_seed["initial_weights_sha256"] != fp32["initial_weights_sha256"]
    # bfloat16 passes with its own tolerances ...
    assert bf16["compute_dtype"] == "bfloat16" and bf16["passed"] is True
    assert {layer["dtype"] for layer in bf16["layers"]} == {"bfloat16", "float32"}
    # ... and its errors are orders of magnitude above float32's.
    assert bf16["logits_rel_err"] > 100 * fp32["logits_rel_err"]


def test_dtype_aware_tolerance_bf16_fails_float32_tolerance(dataset):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(0)
    model = build_model(RunSpec(seed=0, path=PathSpec(precision="mixed")), compile_model=False)
    reference = probe.clone_with_dtype(model, "float64")
    x, y = probe.fixed_batch(dataset, 32)
    as_bf16 = probe.compare_models(model, reference, x, y)
    as_fp32 = probe.compare_models(model, reference, x, y, numerics="fp32")
    assert as_bf16["passed"] is True
    assert as_fp32["passed"] is False and as_fp32["first_divergent_layer"] == "dense_1"


@pytest.mark.parametrize("layer", ["bn_1", "dense_2", "logits"])
def test_perturbed_layer_weights_are_named(dataset, layer):
    model, reference, x, y = _model_and_reference(dataset)
    target = model.get_layer(layer)
    weights = target.get_weights()
    weights[0] = weights[0] * (1.0 + 1e-3)  # a 0.1 % change of the kernel / gamma
    target.set_weights(weights)
    payload = probe.compare_models(model, reference, x, y)
    assert payload["passed"] is False
    assert payload["first_divergent_layer"] == layer
    assert payload["divergence"] == "activation"
    by_name = {entry["name"]: entry for entry in payload["layers"]}
    upstream = [entry for entry in payload["layers"]][: [e["name"] for e in payload["layers"]].index(layer)]
    assert all(entry["activation_ok"] for entry in upstream)
    assert not by_name[layer]["activation_ok"]


def test_one_layer_in_float16_is_named(dataset):
    model, reference, x, y = _model_and_reference(dataset, benchmark="baseline")
    mixed = probe.clone_with_dtype(model, "float32", overrides={"dense_2": "float16"})
    payload = probe.compare_models(mixed, reference, x, y)
    assert payload["first_divergent_layer"] == "dense_2"
    layers = {entry["name"]: entry for entry in payload["layers"]}
    assert layers["dense_2"]["dtype"] == "float16"
    assert layers["dense_1"]["activation_ok"] and not layers["dense_2"]["activation_ok"]
    # The unmodified clone agrees: the injection, not the cloning, made the difference.
    clean = probe.compare_models(probe.clone_with_dtype(model, "float32"), reference, x, y)
    assert clean["passed"] is True


def test_gradient_only_divergence_is_named_backward(dataset):
    """A layer whose forward pass is exact but whose backward pass is off (a ReLU with a gradient
    scaled by 1.01) is named by the backward scan: every activation agrees, its input and weight
    gradients are the first to depart going backward."""
    import tensorflow as tf

    class SkewedGradRelu(keras.layers.Layer):
        def call(self, inputs):
            @tf.custom_gradient
            def relu(v):
                def grad(dy):
                    return dy * tf.cast(v > 0, dy.dtype) * tf.cast(1.01, dy.dtype)

                return tf.nn.relu(v), grad

            return relu(inputs)

    model, reference, x, y = _model_and_reference(dataset, benchmark="baseline")

    def clone(layer):
        if layer.name == "relu_2":
            return SkewedGradRelu(name="relu_2", dtype=layer.dtype_policy)
        return layer.__class__.from_config(layer.get_config())

    skewed = keras.models.clone_model(model, clone_function=clone)
    skewed.set_weights(model.get_weights())
    payload = probe.compare_models(skewed, reference, x, y)
    layers = {entry["name"]: entry for entry in payload["layers"]}
    assert all(entry["activation_ok"] for entry in payload["layers"])
    assert payload["first_divergent_layer"] == "relu_2"
    assert payload["divergence"] == "gradient"
    assert layers["relu_2"]["input_grad_rel_err"] == pytest.approx(0.01, rel=0.05)
    assert layers["relu_2"]["output_grad_rel_err"] < 1e-6  # the layers after it are exact
    assert layers["logits"]["gradient_ok"] and not layers["dense_2"]["gradient_ok"]


def test_unknown_override_and_dtype_are_refused(dataset):
    model, _reference, _x, _y = _model_and_reference(dataset, benchmark="baseline")
    with pytest.raises(ValueError, match=r"no layer\(s\) \['bn_9'\]"):
        probe.clone_with_dtype(model, "float32", overrides={"bn_9": "float16"})
    with pytest.raises(ValueError, match="no probe tolerance for numerics 'int8'"):
        probe_tolerances.tolerances("int8")


@pytest.mark.slow
def test_xla_fp32_probe_passes(dataset):
    payload = _probe(RunSpec(seed=0, path=PathSpec(xla=True), deterministic=False), dataset)
    assert payload["jit_compile"] is True
    assert payload["passed"] is True


# --- TensorFloat-32, emulated on CPU ---------------------------------------------------------------


def _tf32_clone(model, mode: str):
    """``model`` with every Dense matmul's inputs rounded to TF32's 10-bit mantissa, forward and backward,
    as Ampere tensor cores do with TF32 on (``mode``: "nearest" rounds half away from zero, "truncate"
    drops the low 13 bits; which one a given cuBLAS kernel uses is not documented, so both are probed)."""
    import tensorflow as tf

    def tf32(v):
        bits = tf.bitcast(v, tf.int32)
        if mode == "nearest":
            bits = bits + 0x1000  # sign-magnitude: rounds the magnitude half away from zero
        return tf.bitcast(tf.bitwise.bitwise_and(bits, tf.constant(~0x1FFF, tf.int32)), tf.float32)

    @tf.custom_gradient
    def matmul(x, w):
        def grad(dy):
            return tf.matmul(tf32(dy), tf32(w), transpose_b=True), tf.matmul(tf32(x), tf32(dy), transpose_a=True)

        return tf.matmul(tf32(x), tf32(w)), grad

    class TF32Dense(keras.layers.Dense):
        def call(self, inputs):
            return matmul(inputs, tf.convert_to_tensor(self.kernel)) + self.bias

    def clone(layer):
        cls = TF32Dense if type(layer) is keras.layers.Dense else layer.__class__
        return cls.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


# The worst cases of the measurement behind probe_tolerances.TOLERANCES["tf32"]: batchnorm seed 1 (a ReLU mask flip,
# gradients ~54 eps rounding to nearest) and baseline seed 3 (activations ~2.2 eps truncating).
@pytest.mark.parametrize("mode", ["nearest", "truncate"])
@pytest.mark.parametrize(("benchmark", "seed"), [("batchnorm", 1), ("baseline", 3)])
def test_tf32_fails_the_fp32_tolerance_and_passes_its_own(dataset, mode, benchmark, seed):
    model, reference, x, y = _model_and_reference(dataset, benchmark=benchmark, seed=seed)
    emulated = _tf32_clone(model, mode)
    as_fp32 = probe.compare_models(emulated, reference, x, y, numerics="fp32")
    as_tf32 = probe.compare_models(emulated, reference, x, y, numerics="tf32")
    # "fp32" with TF32 on would fail the probe at the first matmul (the false disagreement) ...
    assert as_fp32["passed"] is False and as_fp32["first_divergent_layer"] == "dense_1"
    dense_1 = as_tf32["layers"][0]
    assert 1e-4 < dense_1["activation_rel_err"] < 2e-3  # TF-FACTS: ~3e-4 on Dense 784->128
    # ... while its own tolerance holds, and the emulation is really coarser than float32.
    assert as_tf32["passed"] is True and as_tf32["numerics"] == "tf32" and as_tf32["compute_dtype"] == "float32"
    assert as_tf32["tolerance"] == probe_tolerances.tolerances("tf32")
    assert probe.compare_models(probe.clone_with_dtype(model, "float32"), reference, x, y)["passed"] is True


def test_tf32_path_probe_records_its_numerics_and_tf32_state(dataset):
    import tensorflow as tf

    from harness.worker.tf_setup import set_tensor_float_32

    before = tf.config.experimental.tensor_float_32_execution_enabled()
    try:
        set_tensor_float_32(tf, True)
        payload = _probe(RunSpec(seed=0, path=PathSpec("gpu", "tf32")), dataset)  # runs on CPU: TF32 is inert
    finally:
        set_tensor_float_32(tf, before)
    assert payload["numerics"] == "tf32" and payload["tensor_float_32"] is True
    assert payload["tolerance"] == probe_tolerances.tolerances("tf32") and payload["passed"] is True


def test_tolerances_per_precision_are_ordered_by_their_rounding():
    fp32, tf32, fp16, bf16 = (
        probe_tolerances.tolerances(k) for k in ("fp32", "tf32", "mixed_float16", "mixed_bfloat16")
    )
    assert fp32["activation"] < tf32["activation"] <= fp16["activation"] < bf16["activation"]
    assert probe_tolerances.path_numerics(RunSpec(path=PathSpec("gpu", "mixed"))) == "mixed_float16"
    assert probe_tolerances.path_numerics(RunSpec(path=PathSpec("cpu", "mixed"))) == "mixed_bfloat16"
    assert (
        probe_tolerances.path_numerics(RunSpec(path=PathSpec("gpu", "tf32", xla=True), deterministic=False)) == "tf32"
    )


@pytest.fixture
def op_determinism():
    """Op determinism on, as the worker runs every non-XLA path (it changes the conv/BN sums' rounding)."""
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config  # disable_op_determinism is not exported

    tf.config.experimental.enable_op_determinism()
    yield
    tf_config.disable_op_determinism()


@pytest.mark.usefixtures("op_determinism")
@pytest.mark.parametrize("seed", [0, 2])
@pytest.mark.parametrize(("benchmark", "policy"), [("cnn", "float32"), ("cnn_batchnorm", "float32"),
                                                   ("cnn_batchnorm", "mixed_bfloat16"),
                                                   ("cnn_batchnorm", "mixed_float16")])  # fmt: skip
def test_conv_nets_pass_their_probe(dataset, benchmark, policy, seed):
    """Convolutions and BatchNormalization over 26x26 positions stay within the dtype's tolerance (the
    factors come from benchmarks/probe_tolerances.py and benchmarks/cnn_paths.py over seeds 0-4; see
    harness/worker/probe.py), with the reference replaying the path's max-pool choices."""
    precision = "fp32" if policy == "float32" else "mixed"
    path = PathSpec(precision=precision, mixed_policy=None if policy == "float32" else policy)
    payload = _probe(RunSpec(benchmark=benchmark, seed=seed, path=path), dataset)
    assert payload["compute_dtype"] == {"float32": "float32", "mixed_bfloat16": "bfloat16",
                                        "mixed_float16": "float16"}[policy]  # fmt: skip
    assert payload["passed"] is True, (payload["first_divergent_layer"], payload["divergence"])
    assert payload["routed_layers"] == ["pool_1", "pool_2"]
    assert [layer["name"] for layer in payload["layers"]][:3] == ["image", "conv_1", "bn_1" if "batchnorm" in
                                                                  benchmark else "relu_1"]  # fmt: skip


def test_mlp_probes_have_no_routed_layers(dataset):
    assert "routed_layers" not in _probe(RunSpec(benchmark="baseline", seed=0), dataset)


def test_the_reference_pools_where_the_path_pooled():
    """A window whose two largest inputs tie in float32 but not in float64: the reference takes the path's
    position (and sends its gradient there), not its own float64 maximum."""
    import tensorflow as tf

    from harness.worker import probe_routes

    path_input = tf.constant([[[[1.0], [1.0]], [[0.0], [0.5]]]], tf.float32)  # a 2x2 window, tie at 0 and 1
    reference = tf.constant([[[[1.0], [1.0 + 1e-12]], [[0.0], [0.5]]]], tf.float64)
    pool = keras.layers.MaxPooling2D((2, 2))
    (argmax,) = probe_routes.pool_routes([pool], path_input, []).values()
    assert int(tf.reshape(argmax, [-1])[0]) == 0  # the path took the first of the tied inputs
    with tf.GradientTape() as tape:
        tape.watch(reference)
        out = probe_routes.routed(reference, argmax)
    grad = tape.gradient(out, reference)
    assert float(out[0, 0, 0, 0]) == 1.0 and out.shape == (1, 1, 1, 1)
    assert tf.reshape(grad, [-1]).numpy().tolist() == [1.0, 0.0, 0.0, 0.0]
    assert float(tf.reduce_max(reference)) > 1.0  # its own maximum would have been the other input


@pytest.mark.usefixtures("fresh_registry")
def test_a_plugin_probe_watches_its_layers_with_its_loss(dataset, tmp_path):
    from tests.factories import plugin_file

    path = plugin_file(tmp_path, fields="input_shape=(784,), n_classes=10, probe_layers=('dense', 'logits')")
    spec = RunSpec(benchmark="tiny", benchmark_source=f"file:{path}:TINY", seed=0)
    payload = _probe(spec, dataset)
    assert [layer["name"] for layer in payload["layers"]] == ["dense", "logits"]
    assert payload["watched_layers"] == ["dense", "logits"] and payload["passed"] is True
