"""Every benchmark's model, built with real Keras through the one definition path: pinned parameter
counts, structure and (for the seed's models) the initial weights they always had."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.spec.run_spec import PathSpec, RunSpec
from harness.worker.models import NotAModelError, benchmark_info, build_model, definition
from tests.factories import plugin_file

keras = pytest.importorskip("keras")

PARAMS = {"baseline": 109_386, "batchnorm": 110_154, "batchnorm_dropout": 110_154,
          "cnn": 225_034, "cnn_batchnorm": 225_930}  # fmt: skip
# sha256 of the initial weights (harness.worker.probe.weights_sha256) as built by the seed's build_model
# before benchmarks became definitions (commit f63d266): the models, their seeds and so every result
# of them are unchanged. Keras draws from the seed in layer-creation order; TF 2.21 / Keras 3.15.
SEED_WEIGHTS = {
    ("baseline", 0): "8ccf897a98bb696316c34d534bb4526c333f84acef13e1160a825867c55bd985",
    ("baseline", 3): "e867e1f3ffc8cc69f2ea1ca6c7090cffd8e173d3a12d2ae3e318faebfbacf9c9",
    ("batchnorm", 0): "49a80349d637a998404a327beb89d09e77c7e6ab14856ddc1d2aab04a5fb6e49",
    ("batchnorm_dropout", 3): "4e4a5b785b6a1833b2a37b8bf1775e81b8db27594e638cebf3120c86ca308063",
}


@pytest.mark.parametrize(("benchmark", "params"), PARAMS.items())
def test_parameter_counts_are_pinned(benchmark: str, params: int) -> None:
    assert build_model(RunSpec(benchmark=benchmark)).count_params() == params


@pytest.mark.parametrize(("key", "sha"), SEED_WEIGHTS.items(), ids=lambda v: str(v)[:20])
def test_seed_models_start_from_the_weights_they_always_had(key: tuple[str, int], sha: str) -> None:
    from harness.worker.probe import weights_sha256

    benchmark, seed = key
    keras.utils.set_random_seed(seed)
    assert weights_sha256(build_model(RunSpec(benchmark=benchmark, seed=seed), compile_model=False)) == sha


def test_layer_order() -> None:
    names = [layer.name for layer in build_model(RunSpec(benchmark="batchnorm_dropout", dropout_rate=0.3)).layers]
    assert names == ["pixels", "dense_1", "bn_1", "relu_1", "dropout_1", "dense_2", "bn_2", "relu_2", "dropout_2",
                     "logits", "softmax"]  # fmt: skip
    baseline = [layer.name for layer in build_model(RunSpec(benchmark="baseline")).layers]
    assert baseline == ["pixels", "dense_1", "relu_1", "dense_2", "relu_2", "logits", "softmax"]
    cnn = build_model(RunSpec(benchmark="cnn_batchnorm"))
    assert [layer.name for layer in cnn.layers] == [
        "pixels", "image", "conv_1", "bn_1", "relu_1", "pool_1", "conv_2", "bn_2", "relu_2", "pool_2", "flatten",
        "dense", "bn_3", "relu_dense", "logits", "softmax"]  # fmt: skip
    assert cnn.get_layer("conv_2").output.shape == (None, 11, 11, 64)
    assert cnn.get_layer("flatten").output.shape == (None, 1600)


@pytest.mark.parametrize("benchmark", ["batchnorm", "cnn"])
def test_mixed_policy_keeps_softmax_float32(benchmark: str) -> None:
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_model(RunSpec(benchmark=benchmark, path=PathSpec(precision="mixed")))
        first = model.get_layer("dense_1" if benchmark == "batchnorm" else "conv_1")
        assert first.compute_dtype == "bfloat16"
        assert model.get_layer("softmax").compute_dtype == "float32"
        assert model.output.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_compile_settings() -> None:
    model = build_model(RunSpec(steps_per_execution=8, learning_rate=0.01))
    assert model.optimizer.learning_rate.numpy() == pytest.approx(0.01)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.steps_per_execution == 8
    assert model.jit_compile is False


@pytest.mark.usefixtures("fresh_registry")
def test_a_plugin_goes_through_the_same_path(tmp_path: Path) -> None:
    fields = "input_shape=(6,), optimizer='sgd', metrics=('accuracy', 'mae')"
    path = plugin_file(tmp_path, fields=fields)
    spec = RunSpec(benchmark="tiny", benchmark_source=f"file:{path}:TINY", learning_rate=0.05)

    class Data:
        sample_shape, n_classes = (6,), 3

    model = build_model(spec, data=Data())
    assert model.input_shape == (None, 6) and model.output_shape == (None, 3)
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(0.05)
    info = benchmark_info(spec)
    assert (info.name, info.origin, info.ref, info.delivery) == ("tiny", "file", f"{path}:TINY", "host")
    assert info.sha256 == definition(spec).origin.sha256 and info.claims == {}
    builtin = benchmark_info(RunSpec(benchmark="batchnorm"))
    assert builtin.origin == "built-in" and builtin.delivery == "package"
    assert set(builtin.claims) == {"bn_shrinks_gap", "bn_train_accuracy"}


@pytest.mark.usefixtures("fresh_registry")
def test_a_build_that_returns_no_model_is_named(tmp_path: Path) -> None:
    path = plugin_file(tmp_path, build="def build(ctx):\n    return ctx.keras.layers.Dense(3)\n")
    with pytest.raises(NotAModelError, match=r"benchmark 'tiny' \(.*tiny.py:TINY\): build\(\) returned Dense, not a"):
        build_model(RunSpec(benchmark="tiny", benchmark_source=f"file:{path}:TINY"))
