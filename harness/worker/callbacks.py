"""The worker's Keras callbacks besides the step timer: progress lines and test-only faults."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from harness.spec.run_spec import RunSpec
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
