"""Named bundles of execution settings for the same experiment (``tfparity run --preset NAME``).

A preset never changes the experiment (model, batch size, epochs, optimizer, data order rules);
it only changes *how* the training loop executes. Explicit flags override preset values.

``seed`` is the seed script verbatim: ``model.fit(x, y, validation_split=0.2)`` on numpy arrays
with TensorFlow's defaults, i.e. op determinism **off**. Determinism on is a numerical path of its
own on CPU (TF-FACTS: Fashion-MNIST, batchnorm, seed 0 gives test accuracy 87.35 % with TF's
defaults and 86.38 % under ``enable_op_determinism()``), so the preset that claims to be the seed
script must not turn it on; ``tests/worker/test_seed_reproduction.py`` checks the preset against a
plain Keras script bit for bit. Runs with determinism off are still reproducible run to run on
this CPU (TF-FACTS), and the setting is recorded (``evidence.deterministic_ops``) and part of the
group identity (:attr:`harness.spec.run_spec.RunSpec.execution`).

The ``fast`` values were chosen with ``benchmarks/perf.py`` on the 2-core CPU machine
(Fashion-MNIST, batch 32, model batchnorm; see benchmarks/README.md):

* ``input: numpy`` -- the seed script's data order. The compiled loop reproduces
  ``fit(x, y, shuffle=True)``'s permutations exactly, so fast and seed runs of one seed start from
  the same weights and see the same batches; they differ only by XLA's numerics.
* ``steps_per_execution: 64`` -- steps per compiled call (and per step-timer sample). 64 and a
  whole epoch (1,500) measured the same within noise; 64 keeps 24 timing samples per epoch.
* XLA on -- the compiled loop is ~1.5x faster with it; op determinism is then off (the spec
  resolves that automatically; Keras drops XLA under op determinism, TF-FACTS.md).
* loop ``compiled`` -- the per-step overhead of ``model.fit`` (tf.data ``get_next``, ``tf.cond``,
  one XLA launch per step even with ``steps_per_execution``) is what limits batch 32.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError
from harness.spec.run_spec import RunSpec


@dataclass(frozen=True)
class Preset:
    """Settings a preset applies: top-level RunSpec fields, plus the path's XLA flag when given."""

    fields: dict[str, Any]
    xla: bool | None = None  # None: leave the path's XLA as given
    description: str = ""


PRESETS: dict[str, Preset] = {
    "seed": Preset(
        {"input": "numpy", "steps_per_execution": 1, "loop": "fit", "deterministic": False},
        description="model.fit on numpy arrays with TF's defaults (op determinism off): exactly the seed script",
    ),
    "fast": Preset(
        {"input": "numpy", "steps_per_execution": 64, "loop": "compiled"},
        xla=True,
        description="the measured fastest loop for the same experiment (compiled loop, XLA, 64 steps/call)",
    ),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ConfigError(f"preset must be one of {tuple(PRESETS)}, got {name!r}")
    return PRESETS[name]


def apply_preset(name: str, spec: RunSpec) -> RunSpec:
    """``spec`` with every setting of preset ``name`` (RunSpec fields and the path's XLA flag)."""
    preset = get_preset(name)
    changes: dict[str, Any] = dict(preset.fields)
    if preset.xla is not None:
        changes["path"] = dataclasses.replace(spec.path, xla=preset.xla)
    return spec.replace(**changes)
