"""The worker's Keras callbacks besides the step timer: progress lines and test-only faults.

The ``slow:F`` fault (gate calibration, benchmarks/gate_calibration.py) slows every training step by
the fraction F of its own time. It SLEEPS: a busy-wait of "15 %" slowed steps ~1.4x on 2 cores,
because the spinning main thread also takes CPU from TensorFlow's overlapping work (stats.md §2.5).
It measures what it applied in-process and the run records it (``extra["injected_slowdown"]``).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from harness.spec.run_spec import RunSpec, parse_fault
from harness.store.protocol import progress_line


def progress_callback(spec: RunSpec, started: float) -> Any:
    """Prints the protocol's progress line after every epoch (the backend parses it)."""
    import keras

    class ProgressLine(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            sys.stdout.write(progress_line(epoch + 1, spec.epochs, time.perf_counter() - started) + "\n")
            sys.stdout.flush()

    return ProgressLine()


def fault_callback(spec: RunSpec) -> Any:
    """Test-only faults (hidden ``--inject-fault``), injected after the first training step."""
    import keras

    kind, fraction = parse_fault(spec.inject_fault or "")
    if kind == "slow" and fraction is not None:
        return slow_steps_callback(fraction)

    class Fault(keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if spec.inject_fault == "raise":
                raise RuntimeError("injected fault: raise")
            if spec.inject_fault == "crash":
                sys.stdout.flush()
                os.abort()  # a hard crash: no Python cleanup, no result written by the worker
            if spec.inject_fault == "nan":
                kernel = self.model.get_layer("dense_1").kernel
                kernel.assign(kernel * float("nan"))
            if spec.inject_fault == "oom":
                exhaust_memory()

    return Fault()


def exhaust_memory() -> None:
    """Cap the address space just above current use, then allocate past it: a real MemoryError."""
    import resource

    import numpy as np
    import psutil

    vms = psutil.Process().memory_info().vms
    resource.setrlimit(resource.RLIMIT_AS, (vms + 256 * 2**20, resource.getrlimit(resource.RLIMIT_AS)[1]))
    np.ones(2**31, dtype=np.uint8)  # 2 GiB


SPIN_LAST_S = 0.00015  # sleep overshoots by ~0.1 ms: sleep all but the last 0.15 ms, then spin to the deadline


def slow_steps_callback(fraction: float) -> Any:
    """A callback that waits ``fraction`` x each step's own time after it, sleeping (not spinning).

    A step's own time is the interval from the end of the previous wait to this batch end, so the
    step timer (called before this callback) sees every interval after the first grow by the
    fraction. The first step of the run (tracing/compilation) is not slowed. Oversleeping is paid
    back on the next steps. ``summary()`` is the realized factor measured in-process:
    (work + waited) / work over the slowed steps.
    """
    import keras

    class SlowSteps(keras.callbacks.Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.work_s = self.waited_s = 0.0
            self.steps = 0
            self._since: float | None = None
            self._first = True

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._since = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            now = time.perf_counter()
            if self._first or self._since is None:
                self._first = False
                self._since = now
                return
            work = now - self._since
            # Wait what keeps the total on target: a sleep that overshot (a busy machine wakes late)
            # is paid back by the next waits, so the run's realized factor stays 1 + fraction.
            until = now + max(0.0, fraction * (self.work_s + work) - self.waited_s)
            rest = until - now - SPIN_LAST_S
            if rest > 0:
                time.sleep(rest)
            while time.perf_counter() < until:
                pass
            end = time.perf_counter()
            self.work_s += work
            self.waited_s += end - now
            self.steps += 1
            self._since = end

        def summary(self) -> dict[str, Any]:
            realized = (self.work_s + self.waited_s) / self.work_s if self.work_s > 0 else None
            return {
                "fault": f"slow:{fraction:g}",
                "requested_fraction": fraction,
                "realized_factor": realized,
                "steps_slowed": self.steps,
                "work_s": self.work_s,
                "waited_s": self.waited_s,
                "method": "sleep (last 0.15 ms spun) after each step but the first; "
                "factor = (work + waited) / work, measured in the worker",
            }

    return SlowSteps()
