"""The pre-flight check of plugin benchmarks: build each model once, in a worker process, and answer in JSON.

``python -m harness.worker.check`` reads a JSON list of requests on stdin (the protocol of
:data:`harness.store.protocol.CHECK_MODULE`): a run spec, its dataset's name, sample shape and
number of classes. For each it imports the benchmark's definition, builds the model under float32
exactly as a run would (same context, seed), and checks what only TensorFlow can tell: ``build``
returns a ``keras.Model``, the model takes the dataset's samples and has an output per class,
compiles with the definition's optimizer/loss/metrics, and has the layers ``probe_layers`` names.
One answer line per request: ``{"ok": true, "params", "input_shape", "output_shape"}``, or
``{"ok": false, "error": "<one line>"}``, or ``{"ok": null, "error": ...}`` when this Python has no
TensorFlow to check with. The CLI turns a failure into one line and exit 2, before anything is written.
"""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import dataclass
from typing import Any

from harness.errors import UserError
from harness.spec.run_spec import RunSpec
from harness.store.protocol import CHECK_PREFIX
from harness.worker.tf_setup import set_tf_environment


@dataclass(frozen=True)
class Shape:
    """The dataset facts a build needs (a stand-in for a loaded ``harness.data.Dataset``)."""

    sample_shape: tuple[int, ...]
    n_classes: int


class CheckFailed(Exception):
    """The definition cannot run on this dataset: the message is the one line the user sees."""


def check(request: dict[str, Any]) -> dict[str, Any]:
    """Build, inspect and compile one request's model; the answer (never raises for a plugin's fault)."""
    import keras

    from harness.worker.models import build_context, compile_for, definition, require_model

    spec = RunSpec.from_dict(request["spec"])
    data = Shape(tuple(request["input_shape"]), int(request["n_classes"]))
    dataset = request["dataset"]
    entry = definition(spec)
    bench, where = entry.benchmark, f"benchmark {spec.benchmark!r} ({entry.origin.ref})"
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(spec.seed)
    try:
        model = bench.build(build_context(spec, bench, data))
    except Exception as exc:  # the plugin's own error, in one line
        raise CheckFailed(f"{where}: build() failed: {_one_line(exc, entry.origin.file)}") from None
    try:
        require_model(model, entry)
    except TypeError as exc:
        raise CheckFailed(str(exc)) from None
    _check_shapes(model, data, dataset, where)
    try:
        # compile() resolves loss and metric names lazily (at the first step): resolve them here.
        keras.losses.get(bench.loss)
        for metric in bench.metrics:
            keras.metrics.get(metric)
        compile_for(model, bench, spec)
    except Exception as exc:
        raise CheckFailed(f"{where}: compiling its model failed: {_one_line(exc, entry.origin.file)}") from None
    unknown = [name for name in bench.probe_layers if name not in {layer.name for layer in model.layers}]
    if unknown:
        raise CheckFailed(f"{where}: probe_layers names unknown layer(s) {unknown}; the model has "
                          f"{[layer.name for layer in model.layers]}")  # fmt: skip
    return {
        "ok": True,
        "params": int(model.count_params()),
        "input_shape": list(model.input_shape[1:]),
        "output_shape": list(model.output_shape[1:]),
    }


def _check_shapes(model: Any, data: Shape, dataset: str, where: str) -> None:
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise CheckFailed(f"{where}: its model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                          "a benchmark's model takes one input and gives one output")  # fmt: skip
    wants = tuple(model.input_shape[1:])
    fits = len(wants) == len(data.sample_shape) and all(
        w in (None, d) for w, d in zip(wants, data.sample_shape, strict=True)
    )
    if not fits:
        raise CheckFailed(f"{where}: its model takes samples of shape {wants}, dataset {dataset!r} has samples of "
                          f"shape {data.sample_shape}")  # fmt: skip
    units = model.output_shape[-1]
    if units is not None and units < data.n_classes:
        raise CheckFailed(f"{where}: its model has {units} outputs, dataset {dataset!r} has {data.n_classes} classes "
                          f"(labels 0..{data.n_classes - 1})")  # fmt: skip


def _one_line(exc: BaseException, plugin_file: str | None) -> str:
    """``Type: message (line N)``: the plugin's own last line in the traceback, when there is one."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if plugin_file and f.filename == plugin_file]
    where = f" (line {frames[-1].lineno})" if frames else ""
    message = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {message}{where}"


def answer(request: dict[str, Any]) -> dict[str, Any]:
    try:
        return check(request)
    except (CheckFailed, UserError) as exc:
        return {"ok": False, "error": str(exc)}


def main() -> int:
    set_tf_environment()
    requests = json.load(sys.stdin)
    try:
        import keras  # noqa: F401
    except ImportError as exc:
        for _ in requests:
            print(CHECK_PREFIX + json.dumps({"ok": None, "error": f"no TensorFlow/Keras here: {exc}"}), flush=True)
        return 0
    for request in requests:
        print(CHECK_PREFIX + json.dumps(answer(request)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
