"""The one factory of test data: realistic :class:`RunResult`s with known numbers (no TensorFlow).

``result(...)`` builds an ``ok`` (or failed/interrupted) result whose every field is plausible and
derived from its arguments, so a test states only what it is about and computes expectations by
hand. Exposed to tests through ``conftest.py`` (fixture ``factories``) and importable as
``tests.factories``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from harness.spec.run_spec import PathSpec, RunSpec
from harness.store.results import DatasetInfo, EpochMetrics, Evidence, Memory, RunResult, Timing, write_result
from harness.store.telemetry import GpuInfo, GpuSamples, Telemetry

CPU = PathSpec()
XLA = PathSpec(xla=True)
BF16 = PathSpec(precision="mixed")
GPU = PathSpec(device="gpu")
GPU_MIXED = PathSpec(device="gpu", precision="mixed")
GPU_TF32 = PathSpec(device="gpu", precision="tf32")
SHA = "ab" * 32
STARTED = "2026-11-25T02:17:00Z"
BATCH = 32


def environment(path: PathSpec = CPU, backend: str = "local", **overrides: Any) -> dict[str, Any]:
    """What the worker records about a run's environment (GPU facts for GPU paths)."""
    gpu = path.device == "gpu"
    env = {
        "backend": backend, "container_image": None, "image_id": None, "base_image": None,
        "tensorflow_version": "2.21.0", "keras_version": "3.15.1",
        "tf_build_info": {"is_cuda_build": True, "cuda_version": "12.5", "cudnn_version": "9"} if gpu
        else {"is_cuda_build": False},
        "python_version": "3.11.7", "platform": "Linux-6.1-x86_64", "cpu_model": "AMD EPYC 9B14", "cpu_count": 2,
        "gpus": [{"name": "NVIDIA L4", "driver": "550.54.15"}] if gpu else [],
        "hostname": "bench-1", "git_commit": "0123456789abcdef0123", "env": {},
    }  # fmt: skip
    env.update(overrides)
    return env


def curves(epochs: int, final_train: float, final_val: float, shift: float = 0.0) -> list[EpochMetrics]:
    """Accuracy ramps linearly from 0.85 to the final values; losses fall; ``shift`` moves val and losses."""
    out = []
    for i in range(epochs):
        frac = (i + 1) / epochs
        tr = 0.85 + (final_train - 0.85) * frac
        va = 0.85 + (final_val - 0.85) * frac - (shift if i < epochs - 1 else 0.0)
        out.append(EpochMetrics(epoch=i + 1, train_loss=1.0 - tr + shift, train_accuracy=tr,
                                val_loss=1.05 - va + shift, val_accuracy=va, epoch_time_s=1.5))  # fmt: skip
    return out


def step_times(step_ms: float, n_steps: int, sd_frac: float, rng_seed: int) -> list[float]:
    """Log-normal step times around ``step_ms`` (the first one slow: tracing)."""
    rng = np.random.default_rng(rng_seed)
    steps = [float(v) for v in step_ms * np.exp(rng.normal(0.0, sd_frac, n_steps))]
    steps[0] = step_ms * 20
    return steps


def timing(steps: list[float], warmup_steps: int) -> Timing:
    steady = sorted(steps[warmup_steps:])
    return Timing(
        step_time_ms=steps,
        steps_per_sample=1,
        warmup_steps=warmup_steps,
        compile_time_s=0.9,
        warmup_time_s=1.4,
        steady_throughput_samples_per_s=BATCH * 1000.0 / float(np.median(steady)),
        step_time_ms_p50=float(np.median(steady)),
        step_time_ms_p90=float(np.percentile(steady, 90)),
        step_time_ms_p99=float(np.percentile(steady, 99)),
        train_time_s=9.0,
        total_wall_time_s=15.0,
    )


def evidence(path: PathSpec, spec: RunSpec, **overrides: Any) -> Evidence:
    device = "GPU:0" if path.device == "gpu" else "CPU:0"
    fields: dict[str, Any] = dict(
        physical_devices=["/physical_device:CPU:0"] + (["/physical_device:GPU:0"] if path.device == "gpu" else []),
        variable_device=f"/job:localhost/replica:0/task:0/device:{device}", dtype_policy=path.policy,
        jit_compile=path.xla, deterministic_ops=spec.deterministic_ops, steps_per_execution=spec.steps_per_execution,
        training_loop=spec.loop, tensor_float_32=path.tensor_float_32,
        loss_scaling=path.policy == "mixed_float16", loss_scale=32768.0 if path.policy == "mixed_float16" else None,
    )  # fmt: skip
    if path.replicas > 1:  # what MirroredStrategy leaves behind (one-replica results record none of it)
        copies = [f"/job:localhost/replica:0/task:0/device:{path.device.upper()}:{i}" for i in range(path.replicas)]
        fields.update(
            distribute_strategy="MirroredStrategy", num_replicas_in_sync=path.replicas, replica_devices=copies,
            variable_class="MirroredVariable", variable_replica_devices=copies,
            sync_batchnorm=spec.sync_batchnorm if spec.benchmark != "baseline" else None,
            global_batch_size=spec.global_batch_size, per_replica_batch_size=spec.global_batch_size // path.replicas,
        )  # fmt: skip
    if path.workers > 1:  # what MultiWorkerMirroredStrategy leaves behind in the chief
        cluster = {"chief": ["127.0.0.1:23456"], "worker": [f"127.0.0.1:{23457 + i}" for i in range(path.workers - 1)]}
        chief = f"/job:chief/replica:0/task:0/device:{path.device.upper()}:0"
        fields.update(
            distribute_strategy="CollectiveAllReduceStrategy", num_replicas_in_sync=path.workers,
            replica_devices=[chief], variable_class="MirroredVariable", variable_replica_devices=[chief],
            global_batch_size=spec.global_batch_size, per_replica_batch_size=spec.global_batch_size // path.workers,
            cluster=cluster, num_workers=path.workers, task_type="chief", task_index=0,
        )  # fmt: skip
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return Evidence(**fields)


def gpu_telemetry(
    name: str = "NVIDIA A100-SXM4-80GB",
    driver: str = "535.54.03",
    *,
    reasons: Iterable[int | None] = (0, 0, 0, 0, 0),
    watts: float = 250.0,
    interval_s: float = 0.5,
) -> Telemetry:
    """One GPU sampled once per ``reasons`` entry (its clocks-event mask), the window spanning all samples;
    a constant ``watts`` makes the energy counter grow by ``watts * interval_s`` J per sample."""
    masks = list(reasons)
    n = len(masks)
    return Telemetry(
        source="nvml", driver_version=driver, cuda_driver_version="12.2",
        gpus=[GpuInfo(index=0, name=name, uuid="GPU-513536b6-7d19-9063-b049-1e69664bb298",
                      pci_bus_id="00000000:01:00.0", compute_capability="8.0", memory_total_mb=81920.0,
                      persistence_mode=True, ecc_enabled=True, power_limit_w=400.0, max_clock_sm_mhz=1410.0,
                      max_clock_mem_mhz=1593.0)],
        samples=[GpuSamples(index=0, t_s=[interval_s * i for i in range(n)], sm_clock_mhz=[1410.0] * n,
                            utilization_gpu_pct=[97.0] * n, utilization_memory_pct=[40.0] * n,
                            memory_used_mb=[2600.0] * n, temperature_c=[60.0 + i for i in range(n)],
                            power_w=[watts] * n, clocks_event_reasons=masks,
                            energy_mj=[1e9 + watts * interval_s * 1000.0 * i for i in range(n)])],
        sample_interval_s=interval_s, window_start_sample=0, window_end_sample=n - 1,
    )  # fmt: skip


def result(
    benchmark: str = "batchnorm",
    *,
    path: PathSpec = CPU,
    seed: int = 0,
    dataset: str = "mnist-5k",
    status: str = "ok",
    epochs: int = 3,
    final_train: float = 0.99,
    val_acc: float | None = None,
    test_acc: float = 0.92,
    test_loss: float | None = None,
    curve_shift: float = 0.0,
    throughput: float | None = None,
    step_ms: float = 2.5,
    step_sd_frac: float = 0.02,
    n_steps: int = 400,
    warmup_steps: int = 100,
    rng_seed: int | None = None,
    backend: str = "local",
    env: dict[str, Any] | None = None,
    sha: str = SHA,
    synthetic: bool | None = None,
    started: str = STARTED,
    peak_rss_mb: float = 1200.0,
    tf_peak_mb: float | None = None,
    with_evidence: bool = True,
    evidence_overrides: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    error: str | None = None,
    telemetry: Telemetry | None = None,
    with_telemetry: bool = True,
    **spec_changes: Any,
) -> RunResult:
    """A real RunResult with the given outcome; everything else plausible and derived from the arguments.

    ``val_acc`` (the last epoch's) defaults to ``test_acc + 0.01``; ``throughput`` (samples/s), when
    given, sets the median step time to ``32 / throughput`` s; else ``step_ms`` does. A GPU result
    carries ``telemetry`` (default: :func:`gpu_telemetry`, an unthrottled A100) unless ``with_telemetry``
    is False.
    """
    spec = RunSpec(benchmark=benchmark, dataset=dataset, path=path, seed=seed, epochs=epochs, **spec_changes)
    env = env if env is not None else environment(path, backend)
    if status != "ok":
        return RunResult(run_id=spec.run_id, status=status, spec=spec.to_dict(), started_utc=started,
                         finished_utc=started, environment=env,
                         error=error or "worker killed by SIGKILL (exit 137)")  # fmt: skip
    val = test_acc + 0.01 if val_acc is None else val_acc
    epoch_rows = curves(epochs, final_train, val, curve_shift)
    seed_for_steps = rng_seed if rng_seed is not None else seed * 1000 + zlib.crc32(path.name.encode()) % 997
    steps = step_times(BATCH * 1000.0 / throughput if throughput else step_ms, n_steps, step_sd_frac, seed_for_steps)
    synth = dataset == "synthetic" if synthetic is None else synthetic
    gpu = path.device == "gpu"
    if telemetry is None and gpu and with_telemetry:
        telemetry = gpu_telemetry()
    return RunResult(
        run_id=spec.run_id, status="ok", spec=spec.to_dict(), started_utc=started, finished_utc=started,
        dataset=DatasetInfo(name=dataset, source="test", n_train=4000, n_val=800, n_test=1000, sha256=sha,
                            synthetic=synth),
        epochs=epoch_rows, test_loss=0.3 - test_acc / 10 if test_loss is None else test_loss, test_accuracy=test_acc,
        generalization_gap=epoch_rows[-1].train_accuracy - val, params=110_154,
        timing=timing(steps, warmup_steps),
        memory=Memory(peak_rss_mb=peak_rss_mb, ru_maxrss_mb=peak_rss_mb, rss_sample_interval_s=0.05,
                      tf_device="GPU:0" if gpu else "CPU:0",
                      tf_peak_mb=tf_peak_mb if tf_peak_mb is not None else (2100.0 if gpu else 300.0),
                      tf_gpu_peak_mb={"GPU:0": tf_peak_mb if tf_peak_mb is not None else 2100.0} if gpu else {}),
        evidence=evidence(path, spec, **(evidence_overrides or {})) if with_evidence else None,
        environment=env, extra=extra or {}, telemetry=telemetry,
    )  # fmt: skip


def seeds(path: PathSpec, accuracies: Iterable[float], **kw: Any) -> list[RunResult]:
    """One result per seed 0..n-1 with the given test accuracies."""
    return [result(path=path, seed=s, test_acc=a, **kw) for s, a in enumerate(accuracies)]


def write(results: Iterable[RunResult], directory: Path) -> Path:
    """Write results into ``directory`` (created) as the worker would; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for r in results:
        write_result(r, directory / f"{r.run_id}.json")
    return directory


def seed_suite(paths: Iterable[PathSpec] = (CPU, XLA), seeds: Iterable[int] = (0, 1, 2), **kw: Any) -> list[RunResult]:
    """baseline + batchnorm over ``seeds`` on each path, with the same numbers on every path.

    Per seed s: baseline trains to 0.99 with validation 0.93 + 0.01 s, batchnorm to 0.999 with 0.95 + 0.01 s;
    test accuracy is validation - 0.02; throughput 9,000 samples/s unless ``kw`` says otherwise.
    """
    kw = {"throughput": 9000.0, **kw}
    models = (("baseline", 0.99, 0.93), ("batchnorm", 0.999, 0.95))
    return [result(benchmark, path=p, seed=s, epochs=5, final_train=train, val_acc=val + 0.01 * s,
                   test_acc=val + 0.01 * s - 0.02, **kw)
            for p in paths for s in seeds for benchmark, train, val in models]  # fmt: skip


def night(tmp: Path, name: str, throughput: float, accuracy: float, *, gpu: bool = False, seeds: int = 2) -> list[str]:
    """A nightly run's result sets: ``cpu/`` with ``seeds`` seeds of baseline on cpu-fp32 and cpu-fp32-xla
    (plus ``gpu/`` with gpu-fp32); step times without noise, so each run's steady throughput is exactly
    the one asked for (x3 for XLA, +100 per seed). Speed verdicts need >= 4 runs per side."""
    cpu = [result("baseline", path=p, seed=s, throughput=throughput * (3 if p.xla else 1) + 100 * s,
                  test_acc=accuracy + 0.002 * s, step_sd_frac=0.0)
           for p in (CPU, XLA) for s in range(seeds)]  # fmt: skip
    sets = [str(write(cpu, tmp / name / "cpu"))]
    if gpu:
        g = [result("baseline", path=GPU, seed=s, throughput=50_000.0, test_acc=accuracy, step_sd_frac=0.0)
             for s in (0, 1)]  # fmt: skip
        sets.append(str(write(g, tmp / name / "gpu")))
    return sets


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of PNG bytes; fails unless they are a PNG."""
    import struct

    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


# --- plugin benchmarks and users' datasets (real files) ------------------------------------------------

PLUGIN_BUILD = """
def build(ctx):
    keras = ctx.keras
    inputs = keras.Input(shape=ctx.input_shape, name="pixels")
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = keras.layers.Dense(16, name="dense")(x)
    x = keras.layers.Activation("relu", name="relu")(x)
    x = keras.layers.Dense(ctx.n_classes, name="logits")(x)
    outputs = keras.layers.Activation("softmax", dtype="float32", name="softmax")(x)
    return keras.Model(inputs, outputs, name=ctx.benchmark)
"""


def plugin_file(
    directory: Path,
    name: str = "tiny",
    *,
    attr: str = "TINY",
    fields: str = "input_shape=(784,), n_classes=10",
    build: str = PLUGIN_BUILD,
    header: str = "",
    file_name: str | None = None,
) -> Path:
    """A real plugin file ``directory/<name>.py`` defining ``attr`` = Benchmark(name, ..., ``fields``)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (file_name or f"{name}.py")
    path.write_text(
        f'"""A test plugin."""\n{header}\nfrom harness.spec.benchmarks import Benchmark, Defaults\n{build}\n'
        f'{attr} = Benchmark(name={name!r}, description="a test plugin", build=build, {fields})\n',
        encoding="utf-8",
    )
    return path


def npz_file(path: Path, n_train: int = 120, n_test: int = 40, shape: tuple[int, ...] = (4, 4),
             classes: int = 3, seed: int = 0, **overrides: Any) -> Path:  # fmt: skip
    """A real user dataset file (uint8 samples, labels 0..classes-1); ``overrides`` replace or add arrays
    (``None`` drops one)."""
    rng = np.random.default_rng(seed)
    arrays: dict[str, Any] = {
        "x_train": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        "y_train": np.arange(n_train) % classes,
        "x_test": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        "y_test": np.arange(n_test) % classes,
    }
    arrays.update(overrides)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path
