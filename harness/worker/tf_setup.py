"""TensorFlow's process-wide settings for one run, made before any op runs.

Order matters: environment variables TF reads at import time first (:func:`set_tf_environment`),
then devices (visible GPUs, logical CPU devices for replicas), seed, op determinism, TensorFloat-32
and the global dtype policy (:func:`configure_tensorflow`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.spec.run_spec import RunSpec
from harness.worker import distribute

if TYPE_CHECKING:
    from harness.data import Dataset


class PathMismatchError(RuntimeError):
    """What ran is not what was asked for (e.g. XLA dropped, GPU missing, wrong policy)."""


def set_tf_environment() -> None:
    """Environment TF reads at import time; called before anything can import TensorFlow."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    # The default CPU allocator keeps no statistics; the BFC allocator does, so that
    # get_memory_info('CPU:0') reports TF's peak on CPU paths too (GPU always uses BFC).
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")


def configure_tensorflow(spec: RunSpec) -> Any:
    """Import TF and set visible devices, seed, determinism and dtype policy; returns the ``tf`` module."""
    set_tf_environment()
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if spec.path.device == "gpu":
        if not gpus:
            from harness.worker.gpu_check import no_gpu_reason

            raise PathMismatchError(
                f"device 'gpu' requested but TensorFlow sees no GPU: {no_gpu_reason(tf)}; refusing to fall back to CPU"
            )
        for gpu in gpus:  # allocate as needed so the memory figure means something
            tf.config.experimental.set_memory_growth(gpu, True)
    elif gpus:
        # A CPU path on a GPU host must not silently use the GPU.
        tf.config.set_visible_devices([], "GPU")
    distribute.configure_devices(tf, spec)  # before anything initialises the devices

    keras.utils.set_random_seed(spec.seed)
    if spec.deterministic_ops:
        tf.config.experimental.enable_op_determinism()
    set_tensor_float_32(tf, spec.path.tensor_float_32)
    keras.mixed_precision.set_global_policy(spec.path.policy)
    return tf


def set_tensor_float_32(tf: Any, enabled: bool) -> None:
    """TensorFloat-32 for float32 matmuls and convolutions, on or off for this process.

    TF turns it on by default, so on Ampere and newer GPUs "float32" would round matmul inputs to a
    10-bit mantissa (TF-FACTS.md): fp32 turns it off, only the ``tf32`` precision turns it on. On a
    CPU the flag changes no arithmetic but is set and read back the same way (evidence).
    """
    tf.config.experimental.enable_tensor_float_32_execution(bool(enabled))


def tf_device(spec: RunSpec) -> str:
    """The logical device whose allocator statistics describe this run, e.g. ``CPU:0``."""
    return "GPU:0" if spec.path.device == "gpu" else "CPU:0"


def reset_memory_stats(tf: Any, device: str) -> None:
    try:
        tf.config.experimental.reset_memory_stats(device)
    except (ValueError, RuntimeError):  # not supported for this device
        pass


def tf_peak_mb(tf: Any, device: str) -> float | None:
    """TF's allocator peak on ``device`` in MB (None when the device keeps no statistics)."""
    try:
        info = tf.config.experimental.get_memory_info(device)
    except (ValueError, RuntimeError):
        return None
    return float(info["peak"]) / 2**20


def gpu_devices(tf: Any) -> list[str]:
    """The logical GPUs of this process, e.g. ``["GPU:0"]`` (empty on CPU paths: GPUs are hidden there)."""
    return [f"GPU:{i}" for i, _ in enumerate(tf.config.list_logical_devices("GPU"))]


def gpu_peak_mb(tf: Any) -> dict[str, float]:
    """TF's allocator peak per visible GPU in MB (a GPU that keeps no statistics is left out)."""
    peaks = {device: tf_peak_mb(tf, device) for device in gpu_devices(tf)}
    return {device: peak for device, peak in peaks.items() if peak is not None}


@dataclass(frozen=True)
class Setup:
    """A process ready to build and train the spec's model: TF configured, data loaded."""

    tf: Any
    dataset: Dataset
    device: str  # the logical device that holds the model, e.g. "CPU:0"
    cluster: Any | None = None  # the MultiWorkerMirroredStrategy of a run with workers (None: one process)


def setup(spec: RunSpec, data_dir: Path | None) -> Setup:
    """The worker's set-up sequence for ``spec``, shared by train, probe and the perf benchmark's children.

    Data first (a missing dataset fails before TensorFlow's import cost), then TensorFlow's
    process-wide settings; build the model inside ``tf.device(f"/{setup.device}")``.
    """
    from harness import data

    dataset = data.load(spec.dataset, data_dir, validation_split=spec.validation_split, file=spec.dataset_file)
    tf = configure_tensorflow(spec)
    cluster = distribute.start_cluster(tf, spec)  # before the first op: collectives are set up at start-up
    return Setup(tf, dataset, tf_device(spec), cluster)
