"""The pre-flight check process (``python -m harness.worker.check``) with real TensorFlow: it builds each
plugin's model once and answers in JSON; every way a plugin cannot run on its data is one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.orchestrate.preflight import CheckRequest, check_models
from harness.spec.run_spec import RunSpec
from tests.factories import plugin_file

pytestmark = pytest.mark.slow

NOT_A_MODEL = "def build(ctx):\n    return [ctx.keras.layers.Dense(3)]\n"
RAISES = "def build(ctx):\n    x = 1\n    raise ValueError('needs 3 channels')\n"
ONE_OUTPUT = """
def build(ctx):
    keras = ctx.keras
    inputs = keras.Input(shape=ctx.input_shape)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(inputs)))
"""
FIXED_SHAPE = """
def build(ctx):
    keras = ctx.keras
    inputs = keras.Input(shape=(784,))
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(inputs))
"""


def request(path: Path, shape: tuple[int, ...] = (4, 4), classes: int = 3, **spec: object) -> CheckRequest:
    run = RunSpec(benchmark="tiny", benchmark_source=f"file:{path}:TINY", dataset="npz-x",
                  dataset_file="/d/x.npz", **spec)  # type: ignore[arg-type]  # fmt: skip
    return CheckRequest(run, shape, classes)


def test_good_plugins_are_answered_in_one_process(tmp_path: Path) -> None:
    good = plugin_file(tmp_path / "a", fields="probe_layers=('dense', 'logits')")
    answers = check_models([request(good), request(good, shape=(9,), classes=5)])
    assert [a["ok"] for a in answers] == [True, True]
    assert answers[0]["params"] == 16 * 16 + 16 + 16 * 3 + 3 and answers[0]["input_shape"] == [4, 4]
    assert answers[1]["output_shape"] == [5]


@pytest.mark.parametrize(
    ("build", "fields", "message"),
    [
        (NOT_A_MODEL, "", "build() returned list, not a keras.Model"),
        (RAISES, "", "build() failed: ValueError: needs 3 channels (line 6)"),
        (ONE_OUTPUT, "", "its model has 1 outputs, dataset 'npz-x' has 3 classes (labels 0..2)"),
        (FIXED_SHAPE, "", "its model takes samples of shape (784,), dataset 'npz-x' has samples of shape (4, 4)"),
        (None, "loss='sparse_categorical_crossentropyy'", "compiling its model failed"),
        (None, "probe_layers=('conv_9',)", "probe_layers names unknown layer(s) ['conv_9']"),
    ],
)
def test_a_plugin_that_cannot_run_is_one_line(tmp_path: Path, build: str | None, fields: str, message: str) -> None:
    kwargs = {"build": build} if build else {}
    path = plugin_file(tmp_path, fields=fields, **kwargs)
    with pytest.raises(ConfigError) as exc:
        check_models([request(path)])
    text = str(exc.value)
    assert message in text and "\n" not in text and text.startswith(f"benchmark 'tiny' ({path}:TINY)")


def test_without_tensorflow_the_check_is_skipped(tmp_path: Path) -> None:
    """A host that only drives containers may have no TensorFlow: the check says so instead of failing."""
    trap = tmp_path / "no_tf"
    (trap / "keras").mkdir(parents=True)
    (trap / "keras" / "__init__.py").write_text("raise ImportError('Keras is not installed here')\n")
    answers = check_models([request(plugin_file(tmp_path))], env={"PYTHONPATH": str(trap)})
    assert answers[0]["ok"] is None and "no TensorFlow/Keras here" in answers[0]["error"]
