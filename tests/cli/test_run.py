"""End-to-end runs with real TensorFlow on real MNIST digits (mnist-5k): through the real CLI, and
through the local backend and the runner the CLI drives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.orchestrate.backends.local import LocalBackend
from harness.orchestrate.runner import run_specs
from harness.spec.run_spec import PathSpec, RunSpec
from harness.store.results import RunResult, load_results
from tests.helpers import tfparity

pytestmark = pytest.mark.slow


def only_suite_dir(results_dir: Path) -> Path:
    (suite_dir,) = [p for p in results_dir.iterdir() if p.is_dir()]
    return suite_dir


def test_one_epoch_batchnorm_run_writes_a_valid_result(tmp_path: Path) -> None:
    proc = tfparity(
        "run", "--model", "batchnorm", "--dataset", "mnist-5k", "--epochs", "1", "--results-dir", str(tmp_path)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    suite_dir = only_suite_dir(tmp_path)
    assert suite_dir.name.startswith("run-")
    (result,) = load_results([suite_dir])
    assert result.ok and result.test_accuracy > 0.80
    assert result.params == 110_154
    assert result.dataset.name == "mnist-5k" and len(result.dataset.sha256) == 64
    assert (result.dataset.n_train, result.dataset.n_val, result.dataset.n_test) == (4000, 800, 1000)
    assert (result.n_train_used, result.n_val_used) == (3200, 800)
    assert len(result.epochs) == 1 and result.generalization_gap == pytest.approx(
        result.epochs[0].train_accuracy - result.epochs[0].val_accuracy
    )
    t = result.timing
    assert len(t.step_time_ms) == 100  # 3,200 training samples / 32
    assert t.warmup_steps == 10 and t.steady_throughput_samples_per_s > 0
    assert t.step_time_ms_p50 <= t.step_time_ms_p90 <= t.step_time_ms_p99
    assert t.compile_time_s > t.step_time_ms_p50 / 1000  # the first step traces the function
    assert result.memory.peak_rss_mb > 200 and result.memory.tf_peak_mb > 0
    ev = result.evidence
    assert ev.dtype_policy == "float32" and ev.jit_compile is False and ev.deterministic_ops is True
    assert ev.variable_device.endswith("CPU:0")
    env = result.environment
    assert env["backend"] == "local" and env["tensorflow_version"] == "2.21.0"
    assert env["tf_build_info"]["is_cuda_build"] is False
    # The summary table and the seed's claims are printed.
    assert "batchnorm" in proc.stdout and "The seed's claims" in proc.stdout
    assert json.loads((suite_dir / "suite.json").read_text())["runs"][0]["benchmark"] == "batchnorm"


def test_same_seed_gives_identical_metrics(tmp_path: Path) -> None:
    spec = RunSpec(benchmark="batchnorm_dropout", epochs=2, max_train_samples=1000, seed=7)
    backend = LocalBackend()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = backend.run(spec, tmp_path / "a")
    second = backend.run(spec, tmp_path / "b")
    assert first.ok and second.ok

    def metrics(result: RunResult) -> tuple[list[tuple[float, ...]], tuple[float | None, float | None]]:
        """Everything but wall times."""
        per_epoch = [(e.train_loss, e.train_accuracy, e.val_loss, e.val_accuracy) for e in result.epochs]
        return per_epoch, (result.test_loss, result.test_accuracy)

    assert metrics(first) == metrics(second)
    other_seed = backend.run(spec.replace(seed=8), tmp_path / "a")
    assert other_seed.test_loss != first.test_loss


def test_failed_run_is_recorded_and_the_suite_goes_on(tmp_path: Path) -> None:
    quick = RunSpec(epochs=1, max_train_samples=640)
    specs = [
        quick.replace(benchmark="baseline", inject_fault="crash"),
        quick.replace(benchmark="batchnorm", inject_fault="raise"),
        quick.replace(benchmark="batchnorm"),
    ]
    results = run_specs(specs, LocalBackend(), tmp_path)
    assert [r.status for r in results] == ["failed", "failed", "ok"]
    assert "SIGABRT" in results[0].error
    assert results[1].error == "RuntimeError: injected fault: raise"
    assert any("injected fault" in line for line in results[1].log_tail)
    on_disk = {r.run_id: r.status for r in load_results([tmp_path])}
    assert on_disk == {r.run_id: r.status for r in results}


def test_nan_loss_is_a_failure_with_a_reason(tmp_path: Path) -> None:
    result = LocalBackend().run(RunSpec(epochs=1, max_train_samples=640, inject_fault="nan"), tmp_path)
    assert result.status == "failed" and "non-finite" in result.error


def test_absurd_learning_rate_diverges_into_a_failure(tmp_path: Path) -> None:
    # fp32 with lr=1e6 does not produce NaN here, but a loss of ~1e20: still a divergence.
    spec = RunSpec(epochs=1, max_train_samples=640, benchmark="baseline", learning_rate=1e6)
    result = LocalBackend().run(spec, tmp_path)
    assert result.status == "failed" and "diverged" in result.error and "exceeded 1000" in result.error


def test_paths_record_what_actually_ran(tmp_path: Path) -> None:
    base = RunSpec(epochs=1, max_train_samples=640, benchmark="baseline")
    xla = LocalBackend().run(base.replace(path=PathSpec(xla=True)), tmp_path)
    assert xla.ok, xla.error
    assert xla.evidence.jit_compile is True and xla.evidence.deterministic_ops is False
    assert (xla.n_train_used, xla.n_val_used) == (512, 128)  # max_train_samples=640, split 0.2
    mixed_spec = base.replace(path=PathSpec(precision="mixed"), input="numpy", steps_per_execution=4)
    mixed = LocalBackend().run(mixed_spec, tmp_path)
    assert mixed.ok, mixed.error
    assert mixed.evidence.dtype_policy == "mixed_bfloat16" and mixed.evidence.steps_per_execution == 4
    assert mixed.timing.steps_per_sample == 4 and len(mixed.timing.step_time_ms) == 4  # 16 steps / 4


def test_gpu_on_this_machine_is_one_clear_line(tmp_path: Path) -> None:
    proc = tfparity("run", "--model", "baseline", "--device", "gpu", "--results-dir", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no GPU" in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_seed_way_numpy_input_matches_keras_split(tmp_path: Path) -> None:
    # numpy input: fit(x, y, validation_split=0.2) exactly like the seed script; same sample counts.
    result = LocalBackend().run(RunSpec(epochs=1, input="numpy", benchmark="baseline"), tmp_path)
    assert result.ok, result.error
    assert len(result.timing.step_time_ms) == 100 and result.test_accuracy > 0.80
    assert (tmp_path / "specs" / f"{result.run_id}.json").exists()


def test_probe_mode_through_the_cli(tmp_path: Path) -> None:
    proc = tfparity("run", "--model", "batchnorm", "--mode", "probe", "--results-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "within tolerance of float64" in proc.stdout
    (result,) = load_results([only_suite_dir(tmp_path)])
    assert result.run_spec.mode == "probe" and result.extra["probe"]["passed"] is True


def test_compiled_loop_is_the_same_experiment_as_fit(tmp_path: Path) -> None:
    # Without XLA and with op determinism, the compiled loop (fast preset's loop) must reproduce
    # model.fit on numpy arrays (the seed way) exactly: same train_step, same data order.
    seed_way = RunSpec(benchmark="batchnorm", epochs=2, max_train_samples=960, input="numpy")
    compiled = seed_way.replace(loop="compiled", steps_per_execution=8)
    a = LocalBackend().run(seed_way, tmp_path)
    b = LocalBackend().run(compiled, tmp_path)
    assert a.ok and b.ok, (a.error, b.error)
    assert b.evidence.training_loop == "compiled" and a.evidence.training_loop == "fit"
    assert [(e.train_loss, e.val_accuracy) for e in a.epochs] == [(e.train_loss, e.val_accuracy) for e in b.epochs]
    assert (a.test_loss, a.test_accuracy) == (b.test_loss, b.test_accuracy)
    assert b.timing.steps_per_sample == 8


def test_fast_preset_runs_compiled_with_xla(tmp_path: Path) -> None:
    proc = tfparity(
        "run",
        "--model",
        "baseline",
        "--preset",
        "fast",
        "--epochs",
        "1",
        "--max-train-samples",
        "640",
        "--results-dir",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (result,) = load_results([only_suite_dir(tmp_path)])
    spec = result.run_spec
    assert (spec.loop, spec.input, spec.steps_per_execution, spec.path.xla) == ("compiled", "numpy", 64, True)
    assert result.evidence.jit_compile is True and result.evidence.training_loop == "compiled"
    assert result.test_accuracy > 0.4  # 16 steps on 512 samples: learning, far above chance (0.1)


def test_step_timer_counts_only_real_steps_with_steps_per_execution(tmp_path: Path) -> None:
    # 640 samples -> 512 train -> 16 steps per epoch; 5 steps per execution -> 5 + 5 + 5 + 1.
    spec = RunSpec(epochs=2, max_train_samples=640, benchmark="baseline", steps_per_execution=5)
    result = LocalBackend().run(spec, tmp_path)
    assert result.ok, result.error
    assert len(result.timing.step_time_ms) == 8
    assert result.timing.warmup_steps == 16  # exactly the first epoch, no phantom steps


def test_resume_with_retry_failed_runs_a_failed_run_again_and_keeps_the_old_result(tmp_path: Path) -> None:
    # The benchmark's own failure: its --timeout (a second: TensorFlow's import alone takes longer).
    args = ("run", "--model", "baseline", "--epochs", "1", "--max-train-samples", "640", "--results-dir")
    first = tfparity(*args, str(tmp_path), "--timeout", "1")
    assert first.returncode == 1, first.stderr[-2000:]
    suite_dir = only_suite_dir(tmp_path)
    (failed,) = load_results([suite_dir])
    assert failed.status == "failed" and failed.error.startswith("timed out after 1 s")
    failed_bytes = (suite_dir / f"{failed.run_id}.json").read_bytes()
    plain = tfparity("run", "--resume", str(suite_dir))
    assert plain.returncode == 1 and f"{failed.run_id}: already failed, skipped" in plain.stderr
    retried = tfparity("run", "--resume", str(suite_dir), "--retry-failed")
    assert retried.returncode == 0, retried.stderr[-2000:]
    (result,) = load_results([suite_dir])
    assert result.ok and result.run_id == failed.run_id
    (archived,) = (suite_dir / "attempts").iterdir()
    assert archived.read_bytes() == failed_bytes  # the failed attempt is kept, never deleted


def test_repeats_run_interleaved_in_fresh_processes_and_write_the_noise_floor(tmp_path: Path) -> None:
    proc = tfparity("run", "--model", "baseline", "--model", "batchnorm", "--epochs", "2", "--max-train-samples",
                    "1000", "--repeats", "2", "--inject-fault", "slow:0.5", "--results-dir", str(tmp_path))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    suite_dir = only_suite_dir(tmp_path)
    planned = json.loads((suite_dir / "suite.json").read_text())["runs"]
    assert [(r["benchmark"], r.get("repeat", 0)) for r in planned] == [
        ("baseline", 0), ("batchnorm", 0), ("baseline", 1), ("batchnorm", 1),  # A B A B, never A A B B
    ]  # fmt: skip
    results = load_results([suite_dir])
    assert len({r.run_id for r in results}) == 4 and all(r.ok for r in results)
    for r in results:  # the slowdown each worker applied, measured in that worker
        slowed = r.extra["injected_slowdown"]
        # Oversleeping is paid back on the next steps; only the last step's cannot be (50 steps here).
        assert slowed["realized_factor"] == pytest.approx(1.5, abs=0.05)
        assert slowed["steps_slowed"] == len(r.timing.step_time_ms) - 1  # every step but the first (tracing)
    floors = json.loads((suite_dir / "noise.json").read_text())["floors"]
    assert sorted((f["benchmark"], f["runs"]) for f in floors) == [("baseline", 2), ("batchnorm", 2)]
    assert f"noise floor (A/A spread of the repeats): {suite_dir / 'noise.json'}" in proc.stdout


def test_repeats_are_refused_on_resume(tmp_path: Path) -> None:
    proc = tfparity("run", "--resume", str(tmp_path), "--repeats", "3")
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert "drop --repeats" in proc.stderr
