"""Training mode on real TensorFlow in real worker processes: mixed_float16 with loss scaling trains in both
training loops on CPU (the GPU's default mixed policy, exercised where CPU allows), and records what ran."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.orchestrate.backends.local import LocalBackend
from harness.spec.run_spec import PathSpec, RunSpec
from harness.worker.telemetry import CPU_PATH_REASON

pytestmark = pytest.mark.slow

FP16 = PathSpec(precision="mixed", mixed_policy="mixed_float16")


def test_mixed_float16_with_loss_scaling_trains_in_both_loops(tmp_path: Path) -> None:
    base = RunSpec(benchmark="batchnorm", epochs=2, max_train_samples=1280, path=FP16, input="numpy")
    fit = LocalBackend().run(base, tmp_path)
    compiled = LocalBackend().run(base.replace(loop="compiled", steps_per_execution=8), tmp_path)
    for result in (fit, compiled):
        assert result.ok, result.error
        assert all(math.isfinite(e.train_loss) and math.isfinite(e.val_loss) for e in result.epochs)
        assert result.epochs[-1].train_loss < result.epochs[0].train_loss
        assert result.test_accuracy > 0.6  # 64 steps on 1,024 digits; chance is 0.1
        ev = result.evidence
        assert ev.dtype_policy == "mixed_float16" and ev.tensor_float_32 is False
        # Keras wrapped the optimizer in a LossScaleOptimizer; its dynamic scale is a power of two.
        assert ev.loss_scaling is True and ev.loss_scale is not None
        assert 1.0 <= ev.loss_scale <= 2.0**15 and math.log2(ev.loss_scale).is_integer()
        # A CPU path: no GPU fields, and the reason why.
        assert result.telemetry.unavailable == CPU_PATH_REASON and result.telemetry.gpus == []
        assert result.memory.tf_gpu_peak_mb == {}
    assert compiled.evidence.training_loop == "compiled" and compiled.timing.steps_per_sample == 8
    # The same train_step and data order: the compiled loop reproduces fit, loss scaling included.
    assert [e.train_loss for e in fit.epochs] == [e.train_loss for e in compiled.epochs]
    assert fit.test_accuracy == compiled.test_accuracy
