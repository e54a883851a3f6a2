"""The seed experiment's models, built with real Keras: pinned parameter counts and structure."""

from __future__ import annotations

import pytest

from harness.spec.run_spec import PathSpec, RunSpec
from harness.worker.models import PARAM_COUNTS, build_model

keras = pytest.importorskip("keras")


@pytest.mark.parametrize(
    ("benchmark", "params"), [("baseline", 109_386), ("batchnorm", 110_154), ("batchnorm_dropout", 110_154)]
)
def test_parameter_counts_are_pinned(benchmark: str, params: int) -> None:
    model = build_model(RunSpec(benchmark=benchmark))
    assert model.count_params() == params == PARAM_COUNTS[benchmark]


def test_layer_order() -> None:
    names = [layer.name for layer in build_model(RunSpec(benchmark="batchnorm_dropout", dropout_rate=0.3)).layers]
    assert names == [
        "pixels",
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
    baseline = [layer.name for layer in build_model(RunSpec(benchmark="baseline")).layers]
    assert baseline == ["pixels", "dense_1", "relu_1", "dense_2", "relu_2", "logits", "softmax"]


def test_mixed_policy_keeps_softmax_float32() -> None:
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_model(RunSpec(path=PathSpec(precision="mixed")))
        assert model.get_layer("dense_1").compute_dtype == "bfloat16"
        assert model.get_layer("softmax").compute_dtype == "float32"
        assert model.output.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_compile_settings() -> None:
    model = build_model(RunSpec(steps_per_execution=8, learning_rate=0.01))
    assert model.optimizer.learning_rate.numpy() == pytest.approx(0.01)
    assert model.steps_per_execution == 8
    assert model.jit_compile is False
