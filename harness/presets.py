"""Named bundles of execution settings for the same experiment (``tfparity run --preset NAME``).

A preset never changes the experiment (model, batch size, epochs, optimizer, data order rules);
it only changes *how* the training loop executes. Explicit flags override preset values.

``PRESETS`` holds the values that are top-level :class:`~harness.config.RunSpec` fields (what
``spec_from_args`` applies today). The measured ``fast`` path needs two more settings that live
elsewhere: XLA (``PathSpec.xla``, :data:`PRESET_XLA`) and the compiled training loop of
:mod:`harness.fastloop` (:data:`PRESET_LOOP`). :func:`apply_preset` applies all of them to a spec,
as far as this version's RunSpec supports them.

The ``fast`` values were chosen with ``benchmarks/perf.py`` on the 2-core CPU machine
(Fashion-MNIST, batch 32, model batchnorm; see benchmarks/README.md):

* ``input: numpy`` -- the seed script's data order. The compiled loop reproduces
  ``fit(x, y, shuffle=True)``'s permutations exactly, so fast and seed runs of one seed start from
  the same weights and see the same batches; they differ only by XLA's numerics.
* ``steps_per_execution: 64`` -- steps per compiled call (and per step-timer sample). 64 and a
  whole epoch (1,500) measured the same within noise; 64 keeps 24 timing samples per epoch.
* XLA on -- the compiled loop is ~1.5x faster with it; op determinism is then off (the config
  resolves that automatically; Keras drops XLA under op determinism, TF-FACTS.md).
* loop ``compiled`` -- the per-step overhead of ``model.fit`` (tf.data ``get_next``, ``tf.cond``,
  one XLA launch per step even with ``steps_per_execution``) is what limits batch 32.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from harness.config import ConfigError, RunSpec

PRESETS: dict[str, dict[str, Any]] = {
    # model.fit on numpy arrays, one step per call: exactly the seed script.
    "seed": {"input": "numpy", "steps_per_execution": 1},
    # The RunSpec-field part of the fast path (see PRESET_XLA and PRESET_LOOP for the rest).
    "fast": {"input": "numpy", "steps_per_execution": 64},
}

# PathSpec.xla per preset (absent = leave the path as given).
PRESET_XLA: dict[str, bool] = {"fast": True}

# Training loop per preset: "fit" (keras Model.fit) or "compiled" (harness.fastloop.fit).
LOOPS = ("fit", "compiled")
PRESET_LOOP: dict[str, str] = {"seed": "fit", "fast": "compiled"}


def _check(name: str) -> None:
    if name not in PRESETS:
        raise ConfigError(f"preset must be one of {tuple(PRESETS)}, got {name!r}")


def preset_loop(name: str) -> str:
    """The training loop of preset ``name``: ``"fit"`` or ``"compiled"``."""
    _check(name)
    return PRESET_LOOP.get(name, "fit")


def apply_preset(name: str, spec: RunSpec) -> RunSpec:
    """``spec`` with every setting of preset ``name``: RunSpec fields, the path's XLA flag, and the
    loop when RunSpec has a ``loop`` field (older RunSpecs: see :func:`preset_loop`)."""
    _check(name)
    changes: dict[str, Any] = dict(PRESETS[name])
    if name in PRESET_XLA:
        changes["path"] = dataclasses.replace(spec.path, xla=PRESET_XLA[name])
    fields = {f.name for f in dataclasses.fields(RunSpec)}
    if "loop" in fields:
        changes["loop"] = preset_loop(name)
    return spec.replace(**changes)
