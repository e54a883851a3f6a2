"""Named bundles of execution settings for the same experiment (``tfparity run --preset NAME``).

A preset never changes the experiment (model, batch size, epochs, optimizer, data order rules);
it only changes *how* the training loop executes. Explicit flags override preset values.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # model.fit on numpy arrays, one step per call: exactly the seed script.
    "seed": {"input": "numpy", "steps_per_execution": 1},
    # Measured by benchmarks/perf.py (README, Performance).
    "fast": {"input": "tfdata", "steps_per_execution": 64},
}
