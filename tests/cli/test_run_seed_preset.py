"""`tfparity run --preset seed` is the seed script: the same metrics as a plain Keras script of the
experiment run with TensorFlow's defaults, bit for bit (issue 11).

The plain script is written here, not taken from the harness: a ``Sequential`` model,
``keras.utils.set_random_seed``, ``model.fit(x, y, epochs=E, batch_size=32, validation_split=0.2)``
on the mnist-5k arrays, in its own process with no TensorFlow environment variables set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from harness.store.results import RunResult, load_results
from tests.helpers import ROOT, tfparity

pytestmark = pytest.mark.slow

SEED = 1
EPOCHS = 3

PLAIN_SCRIPT = textwrap.dedent("""
    import json, sys
    import keras
    from harness import data

    seed, epochs, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    ds = data.load("mnist-5k")
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input(shape=(784,)),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(ds.x_train, ds.y_train, epochs=epochs, batch_size=32, validation_split=0.2, verbose=0)
    test_loss, test_accuracy = model.evaluate(ds.x_test, ds.y_test, verbose=0)
    with open(out, "w") as fh:
        json.dump({"history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
                   "test_loss": float(test_loss), "test_accuracy": float(test_accuracy)}, fh)
""")


def plain_keras(tmp: Path) -> dict[str, Any]:
    """The plain script's metrics, in a process with TensorFlow's defaults (no TF_* variables)."""
    script, out = tmp / "plain.py", tmp / "plain.json"
    script.write_text(PLAIN_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "TFPARITY_"))}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, str(script), str(SEED), str(EPOCHS), str(out)], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def harness_run(tmp: Path, *extra: str) -> RunResult:
    args = ("--preset", "seed", "--model", "baseline", "--seed", str(SEED), "--epochs", str(EPOCHS))
    proc = tfparity("run", *args, *extra, "--results-dir", str(tmp))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result,) = load_results([tmp])
    return result


def metrics(result: RunResult) -> dict[str, Any]:
    """The harness's result in the plain script's shape (Keras history names)."""
    return {
        "history": {
            "accuracy": [e.train_accuracy for e in result.epochs],
            "loss": [e.train_loss for e in result.epochs],
            "val_accuracy": [e.val_accuracy for e in result.epochs],
            "val_loss": [e.val_loss for e in result.epochs],
        },
        "test_loss": result.test_loss,
        "test_accuracy": result.test_accuracy,
    }


def test_seed_preset_reproduces_a_plain_keras_script_bit_for_bit(tmp_path: Path) -> None:
    plain = plain_keras(tmp_path)
    seed_way = harness_run(tmp_path / "seed")
    assert len(plain["history"]["loss"]) == EPOCHS
    assert metrics(seed_way) == plain  # every epoch's loss/accuracy/val_loss/val_accuracy, test loss/accuracy
    # What ran is recorded: TF's defaults, op determinism off; a group of its own.
    assert seed_way.evidence is not None and seed_way.evidence.deterministic_ops is False
    assert seed_way.run_spec.execution == "numpy,spe1,det-off"
    # The test can tell: op determinism on is another numerical path (TF-FACTS), so the same run
    # with it on does not reproduce the plain script.
    deterministic = harness_run(tmp_path / "deterministic", "--deterministic", "on")
    assert deterministic.evidence is not None and deterministic.evidence.deterministic_ops is True
    assert metrics(deterministic) != plain
