"""tfparity report: statistics, the seed experiment's claims, Markdown/HTML rendering, plots, CLI.

Results are constructed directly (realistic shapes, known numbers) so that every expected value
below can be computed by hand; the verdict comes from the real harness.compare.
"""

from __future__ import annotations

import base64
import math
import os
import re
import struct
import zlib
from pathlib import Path

import pytest

from harness import plots, report
from harness.compare import compare_results
from harness.config import PathSpec, RunSpec
from harness.results import DatasetInfo, EpochMetrics, Evidence, Memory, RunResult, Timing, write_result

ROOT = Path(__file__).resolve().parent.parent

CPU = PathSpec()
XLA = PathSpec(xla=True)
BF16 = PathSpec(precision="mixed")
GPU = PathSpec(device="gpu", precision="mixed")


def make_result(benchmark: str = "baseline", *, path: PathSpec = CPU, seed: int = 0, dataset: str = "mnist-5k",
                epochs: int = 5, final_train: float = 0.99, final_val: float = 0.94,
                test_accuracy: float | None = None, throughput: float = 9000.0, status: str = "ok",
                synthetic: bool | None = None, started: str = "2026-11-25T02:17:00Z", n_steps: int = 600,
                env: dict | None = None) -> RunResult:
    """A realistic RunResult: curves ending at ``final_train``/``final_val``, step times around
    ``batch 32 / throughput``, memory and environment as the worker records them."""
    spec = RunSpec(benchmark=benchmark, dataset=dataset, path=path, seed=seed, epochs=epochs, suite="seed")
    rng_state = zlib.crc32(f"{benchmark}{path.name}{seed}{dataset}".encode())
    jitter = [((rng_state * (i + 7)) % 1000) / 1000 for i in range(n_steps)]  # deterministic 0..1
    environment = env or {
        "backend": "local", "container_image": None, "image_id": None, "base_image": None,
        "tensorflow_version": "2.21.0", "keras_version": "3.15.1",
        "tf_build_info": ({"is_cuda_build": True, "cuda_version": "12.5", "cudnn_version": "9"}
                          if path.device == "gpu" else {"is_cuda_build": False}),
        "python_version": "3.11.7", "platform": "Linux-6.1-x86_64", "cpu_model": "AMD EPYC 9B14", "cpu_count": 2,
        "gpus": [{"name": "NVIDIA L4", "driver": "550.54.15"}] if path.device == "gpu" else [],
        "hostname": "bench-1", "git_commit": "0123456789abcdef0123", "env": {},
    }
    if status != "ok":
        return RunResult(run_id=spec.run_id, status=status, spec=spec.to_dict(), started_utc=started,
                         finished_utc=started, environment=environment,
                         error="RuntimeError: injected fault in epoch 2\nTraceback ...")
    curve = []
    for i in range(epochs):
        frac = (i + 1) / epochs
        tr = 0.85 + (final_train - 0.85) * frac
        va = 0.85 + (final_val - 0.85) * frac
        curve.append(EpochMetrics(epoch=i, train_loss=1.0 - tr, train_accuracy=tr, val_loss=1.05 - va,
                                  val_accuracy=va, epoch_time_s=1.5))
    step_ms = 32 * 1000 / throughput
    steps = [step_ms * 20] + [step_ms * (0.95 + 0.1 * j) for j in jitter[1:]]
    steady = sorted(steps[100:])
    synth = (dataset == "synthetic") if synthetic is None else synthetic
    return RunResult(
        run_id=spec.run_id, status="ok", spec=spec.to_dict(), started_utc=started, finished_utc=started,
        dataset=DatasetInfo(name=dataset, source="test", n_train=4000, n_val=1000, n_test=1000,
                            sha256="5d41402abc4b2a76b9719d911017c592" * 2, synthetic=synth),
        epochs=curve, test_loss=0.3, test_accuracy=final_val - 0.02 if test_accuracy is None else test_accuracy,
        generalization_gap=curve[-1].train_accuracy - curve[-1].val_accuracy, params=109_386,
        timing=Timing(step_time_ms=steps, steps_per_sample=1, warmup_steps=100, compile_time_s=0.9,
                      warmup_time_s=1.4, steady_throughput_samples_per_s=throughput,
                      step_time_ms_p50=steady[len(steady) // 2], step_time_ms_p90=steady[int(len(steady) * 0.9)],
                      step_time_ms_p99=steady[int(len(steady) * 0.99)], train_time_s=9.0, total_wall_time_s=15.0),
        memory=Memory(peak_rss_mb=1200.0 + seed, ru_maxrss_mb=1210.0, rss_sample_interval_s=0.1,
                      tf_device="GPU:0" if path.device == "gpu" else "CPU:0",
                      tf_peak_mb=2100.0 if path.device == "gpu" else 300.0),
        evidence=Evidence(physical_devices=["/physical_device:CPU:0"] + (["/physical_device:GPU:0"]
                                                                        if path.device == "gpu" else []),
                          variable_device="/job:localhost/replica:0/task:0/device:"
                                          + ("GPU:0" if path.device == "gpu" else "CPU:0"),
                          dtype_policy=path.policy, jit_compile=path.xla, deterministic_ops=not path.xla,
                          steps_per_execution=1),
        environment=environment)


def seed_suite(paths=(CPU, XLA), seeds=(0, 1, 2), **kw) -> list[RunResult]:
    """baseline + batchnorm over seeds on each path, with the same numbers on every path."""
    out = []
    for p in paths:
        for s in seeds:
            out.append(make_result("baseline", path=p, seed=s, final_train=0.99, final_val=0.93 + 0.01 * s, **kw))
            out.append(make_result("batchnorm", path=p, seed=s, final_train=0.999, final_val=0.95 + 0.01 * s, **kw))
    return out


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# --- statistics ----------------------------------------------------------------------------------


def test_describe_matches_scipy_t_interval() -> None:
    from scipy import stats

    values = [0.90, 0.92, 0.97, 0.91]
    st = report.describe(values)
    low, high = stats.t.interval(0.95, 3, loc=sum(values) / 4, scale=stats.sem(values))
    assert st.n == 4 and st.mean == pytest.approx(0.925)
    assert st.sd == pytest.approx(stats.tstd(values))
    assert (st.ci_low, st.ci_high) == (pytest.approx(low), pytest.approx(high))
    assert report.describe([]).mean is None
    single = report.describe([0.5, None, float("nan")])
    assert (single.n, single.mean, single.sd, single.ci_low) == (1, 0.5, None, None)


def test_wilson_interval_is_the_known_score_interval() -> None:
    # 900 of 1000 correct, z = 1.96: centre 0.90192/1.00384 = 0.89847, half 0.01862 (worked by hand)
    low, high = report.wilson_interval(0.9, 1000)
    assert (round(low, 4), round(high, 4)) == (0.8798, 0.9171)
    assert report.wilson_interval(1.0, 1000)[1] == 1.0
    assert report.wilson_interval(0.0, 50)[0] == pytest.approx(0.0, abs=1e-12)


def test_single_run_gets_step_time_and_wilson_intervals() -> None:
    (row,) = report.path_rows([make_result(throughput=10_000.0)])
    # Step times spread ±5 % around 3.2 ms over ~500 steady steps: a CI well under 1 % of the value.
    assert row.throughput.method == "steps"
    assert row.throughput.ci_low < 10_000.0 < row.throughput.ci_high
    assert 0 < row.throughput.ci_half / 10_000.0 < 0.01
    assert row.test_accuracy.method == "wilson"
    assert row.test_accuracy.ci_low < 0.92 < row.test_accuracy.ci_high


# --- tables and claims ----------------------------------------------------------------------------


def test_per_path_table_reports_mean_and_ci_over_seeds() -> None:
    results = [make_result("baseline", seed=s, final_val=0.93, test_accuracy=acc, throughput=thr)
               for s, acc, thr in ((0, 0.90, 9000.0), (1, 0.92, 9500.0), (2, 0.94, 10000.0))]
    results.append(make_result("baseline", seed=3, status="failed"))
    (row,) = report.path_rows(results)
    assert row.seeds == [0, 1, 2] and row.n_failed == 1
    half = 4.302652729911275 * 0.02 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert row.test_accuracy.ci_half == pytest.approx(half)
    assert row.throughput.mean == pytest.approx(9500.0)
    assert row.gap.mean == pytest.approx(0.99 - 0.93)
    md = report.render_markdown(report.build_report(results, None, with_figures=False))
    line = next(x for x in md.splitlines() if x.startswith("| cpu-fp32 | baseline"))
    assert f"0.9200 ± {half:.4f}" in line
    assert "3 (+1 failed)" in line and "9,500 ± 1,242" in line
    assert "## Failed runs" in md and "RuntimeError: injected fault in epoch 2" in md
    assert "Traceback" not in md  # only the first line of the error


def test_seed_claims_per_path_with_claimed_and_measured_values() -> None:
    results = []
    for s in range(3):
        # cpu-fp32: BN gap 0.04 below baseline on every seed -> holds, outside seed noise.
        results.append(make_result("baseline", path=CPU, seed=s, final_train=0.99, final_val=0.92 + 0.01 * s))
        results.append(make_result("batchnorm", path=CPU, seed=s, final_train=0.999, final_val=0.969 + 0.01 * s))
        # cpu-fp32-xla: BN gap larger -> the claim fails there.
        results.append(make_result("baseline", path=XLA, seed=s, final_train=0.97, final_val=0.95))
        results.append(make_result("batchnorm", path=XLA, seed=s, final_train=0.93, final_val=0.85 + 0.01 * s))
    claims = {(c.path, c.claim.split()[0]): c for c in report.seed_claims(results)}
    val = claims[("cpu-fp32", "baseline")]
    assert (val.claimed, val.measured, val.holds) == ("≥ 0.90", "0.930 ± 0.010 (n=3)", True)
    gap = claims[("cpu-fp32", "BatchNormalization")]
    assert gap.holds is True and "outside seed noise" in gap.note
    # last-epoch gaps: baseline 0.99 - (0.92, 0.93, 0.94); BN 0.999 - (0.969, 0.979, 0.989)
    assert gap.measured == "BN 0.020 ± 0.010 (n=3) vs baseline 0.060 ± 0.010 (n=3)"
    assert claims[("cpu-fp32-xla", "BatchNormalization")].holds is False
    train = claims[("cpu-fp32", "BN")]
    assert (train.claimed, train.holds, train.note) == ("< 0.95", False, "0/3 seeds stay below")
    assert claims[("cpu-fp32-xla", "BN")].holds is True
    (answer,) = report.bn_gap_answer(report.seed_claims(results))
    assert answer.startswith("mnist-5k: **No, not on every path**")
    assert "smaller on 1/2 (cpu-fp32), not on cpu-fp32-xla" in answer


def test_claims_say_when_one_seed_cannot_decide_or_a_model_is_missing() -> None:
    results = [make_result("baseline", final_train=0.99, final_val=0.93),
               make_result("batchnorm", final_train=0.99, final_val=0.95),
               make_result("baseline", path=XLA)]
    claims = report.seed_claims(results)
    gap = next(c for c in claims if c.path == "cpu-fp32" and c.claim.startswith("BatchNorm"))
    assert gap.holds is True and "one seed cannot separate the models" in gap.note
    missing = next(c for c in claims if c.path == "cpu-fp32-xla" and c.claim.startswith("BatchNorm"))
    assert missing.holds is None and "needs both" in missing.note
    (answer,) = report.bn_gap_answer(claims)
    assert answer.startswith("mnist-5k: **Yes**") and "(1/1)" in answer
    assert "one seed only on cpu-fp32: run more seeds" in answer and "within seed noise" not in answer


def test_synthetic_runs_are_flagged_wherever_shown() -> None:
    results = seed_suite(paths=(CPU,), dataset="synthetic")
    rep = report.build_report(results, None, with_figures=False)
    md = report.render_markdown(rep)
    page = report.render_html(rep)
    table_rows = [x for x in md.splitlines() if x.startswith("| cpu-fp32 |")]
    assert table_rows and all("synthetic [synthetic]" in x for x in table_rows)
    claim_rows = [x for x in md.splitlines() if x.startswith("| synthetic [synthetic] | cpu-fp32 |")]
    assert len(claim_rows) == 3
    assert "synthetic data: the answer says nothing about MNIST" in md
    assert "> **Synthetic data**" in md
    assert page.count('<span class="tag synthetic">synthetic data</span>') >= 2 + 3 + 1
    # and a real-data report says nothing of the kind
    real = report.render_markdown(report.build_report(seed_suite(paths=(CPU,)), None, with_figures=False))
    assert "synthetic" not in real.lower()


def test_other_datasets_are_flagged_as_not_what_the_seed_claimed() -> None:
    results = seed_suite(paths=(CPU,), dataset="fashion-mnist")
    (answer,) = report.bn_gap_answer(report.seed_claims(results))
    assert "the seed's claims were made for MNIST, not this dataset" in answer


def test_provenance_table_lists_build_devices_image_dataset_commit() -> None:
    env = {"backend": "docker", "container_image": "tfparity:gpu", "image_id": "sha256:" + "ab" * 32,
           "tensorflow_version": "2.21.0", "keras_version": "3.15.1",
           "tf_build_info": {"is_cuda_build": True, "cuda_version": "12.5.1", "cudnn_version": "9"},
           "python_version": "3.11.7", "platform": "Linux", "cpu_model": "Xeon", "cpu_count": 8,
           "gpus": [{"name": "NVIDIA L4", "driver": "550.54.15"}], "hostname": "gpu-1",
           "git_commit": "fedcba9876543210", "env": {}}
    results = [make_result(path=CPU), make_result(path=GPU, env=env)]
    prov = dict(report.provenance_rows(results))
    gpu = prov["gpu-mixed_float16"]
    assert gpu["TF build"] == "CUDA 12.5.1, cuDNN 9"
    assert "NVIDIA L4 (driver 550.54.15)" in gpu["devices"]
    assert gpu["image id"] == "sha256:abababababab"
    assert gpu["container image"] == "tfparity:gpu"
    assert gpu["git commit"] == "fedcba987654"
    assert gpu["dataset (sha256)"] == "mnist-5k 5d41402abc4b"
    assert prov["cpu-fp32"]["TF build"] == "CPU build (no CUDA)"


# --- rendering ---------------------------------------------------------------------------------


def test_verdict_section_comes_first_and_uses_the_real_comparison(tmp_path: Path) -> None:
    results = seed_suite()
    # The XLA path loses 8 points of test accuracy on every seed: compare must FAIL it.
    results = [r if r.run_spec.path.name != "cpu-fp32-xla" else
               make_result(r.run_spec.benchmark, path=XLA, seed=r.run_spec.seed, final_val=0.86 + 0.01 * r.run_spec.seed)
               for r in results]
    comparison = compare_results(results)
    assert comparison.verdict == "FAIL"
    rep = report.build_report(results, comparison)
    md = report.render_markdown(rep)
    assert md.index("## Verdict: **FAIL**") < md.index("## Per-path results") < md.index("## The seed experiment")
    failing = [c for c in comparison.checks if c.verdict == "FAIL"]
    first_check = next(x for x in md.splitlines() if x.startswith("| FAIL |"))
    assert failing[0].name in first_check  # FAIL checks are listed before WARN and PASS
    page = report.render_html(rep)
    assert '<span class="verdict FAIL" id="verdict-value">Verdict: FAIL</span>' in page
    assert f"{sum(c.verdict == 'PASS' for c in comparison.checks)} PASS check(s)" in page


def test_html_is_self_contained_and_embeds_every_figure() -> None:
    rep = report.build_report(seed_suite(paths=(CPU, XLA, BF16)), None)
    page = report.render_html(rep)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page
    srcs = re.findall(r'src="([^"]+)"', page)
    assert len(srcs) == len(rep.figures) == 4
    for src, fig in zip(srcs, rep.figures, strict=True):
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1])
        assert data == fig.png
        width, height = png_size(data)
        assert width > 300 and height > 100


def test_text_is_escaped_in_html_and_markdown() -> None:
    class Check:
        name, verdict, subject, details = "evidence", "FAIL", "a|b", {}
        summary = "<img src=x onerror=alert(1)> | pipe"

    class Cmp:
        verdict, reference, checks = "FAIL", "cpu-fp32", [Check()]

    rep = report.build_report([make_result()], Cmp(), with_figures=False)
    assert "<img src=x" not in report.render_html(rep)
    assert "&lt;img src=x onerror=alert(1)&gt;" in report.render_html(rep)
    assert "a\\|b" in report.render_markdown(rep)


# --- plots -------------------------------------------------------------------------------------


def _figure_for_tests(name: str) -> object:
    import datetime as dt

    results = seed_suite(paths=(CPU, XLA, BF16, GPU))
    rep_rows = report.path_rows(results)
    groups = report.group_results(results)
    t0 = dt.datetime(2026, 11, 20, 2, 17, tzinfo=dt.timezone.utc)
    makers = {
        "accuracy": lambda: plots.accuracy_curves_figure([
            plots.CurvePanel(b, p, ds, [[e.train_accuracy for e in r.epochs] for r in runs],
                             [[e.val_accuracy for e in r.epochs] for r in runs]) for (p, b, ds), runs in groups.items()]),
        "throughput": lambda: plots.throughput_figure([plots.Bar(f"{r.path} · {r.benchmark}", r.throughput.mean,
                                                         r.throughput.ci_low, r.throughput.ci_high, group=r.path)
                                               for r in rep_rows]),
        "step_time": lambda: plots.step_time_figure([plots.Distribution(f"{p} · {b}", [v for r in runs for v in
                                                                                report.steady_step_times_ms(r)])
                                             for (p, b, _), runs in groups.items()]),
        "memory": lambda: plots.memory_figure([plots.MemoryBar(f"{r.path} · {r.benchmark}", r.peak_rss_mb, r.tf_peak_mb,
                                                       r.tf_device) for r in rep_rows]),
        "trend": lambda: plots.trend_figure([plots.TrendSeries(f"cpu-fp32 · model{i}", [t0 + dt.timedelta(days=d)
                                                                                for d in range(5)],
                                                       [9000.0 + 100 * d * i for d in range(5)],
                                                       [0.92 + 0.001 * d for d in range(5)]) for i in range(3)]),
    }
    return makers[name]()


@pytest.mark.parametrize("name", ["accuracy", "throughput", "step_time", "memory", "trend"])
def test_plots_have_units_legends_and_no_overlapping_text(name: str) -> None:
    fig = _figure_for_tests(name)
    assert plots.overlapping_texts(fig) == []
    visible = [ax for ax in fig.axes if ax.axison]
    assert visible
    for ax in visible:
        if ax.get_xlabel():
            assert "(" in ax.get_xlabel() or ax.get_xlabel() == "epoch", ax.get_xlabel()
    assert any("(" in ax.get_xlabel() or "(" in ax.get_ylabel() for ax in visible)  # units on an axis
    assert fig.legends or any(ax.get_legend() for ax in visible)
    width, height = png_size(plots._png(fig))
    assert 500 < width < 2500 and 150 < height < 3000


def test_a_single_panel_figure_keeps_its_legend_inside() -> None:
    """One model on one path (a one-seed `make bench` of one model): the legend must not be clipped."""
    runs = [make_result(seed=0), make_result(seed=1, final_val=0.92)]  # two seeds: four legend entries
    fig = plots.accuracy_curves_figure([plots.CurvePanel("baseline", "cpu-fp32", "mnist-5k",
                                                         [[e.train_accuracy for e in r.epochs] for r in runs],
                                                         [[e.val_accuracy for e in r.epochs] for r in runs])])
    assert plots.texts_outside(fig) == []
    assert plots.overlapping_texts(fig) == []


def test_overlap_check_catches_overlapping_text() -> None:
    fig = plots._figure(4, 3)
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, "first label here")
    ax.text(0.52, 0.5, "second label here")
    assert plots.overlapping_texts(fig) == [("first label here", "second label here")]
    ax.text(1.3, 0.1, "far beyond the right edge")
    assert plots.texts_outside(fig) == ["far beyond the right edge"]


def test_empty_inputs_give_an_explaining_figure_not_a_crash() -> None:
    for png in (plots.accuracy_curves_png([]), plots.throughput_png([]), plots.step_time_png([]),
                plots.memory_png([]), plots.trend_png([])):
        assert png_size(png)[0] > 100


# --- files and CLI -----------------------------------------------------------------------------


def _write(results: list[RunResult], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for r in results:
        write_result(r, directory / f"{r.run_id}.json")
    return directory


def test_cli_writes_markdown_and_html_and_exits_0_even_on_fail(tmp_path: Path) -> None:
    from conftest import tfparity

    results = seed_suite()
    results = [r if r.run_spec.path.name != "cpu-fp32-xla" else
               make_result(r.run_spec.benchmark, path=XLA, seed=r.run_spec.seed, final_val=0.80) for r in results]
    src = _write(results, tmp_path / "results")
    out = tmp_path / "report"
    proc = tfparity("report", str(src), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [str(out / "report.md"), str(out / "report.html")]
    md = (out / "report.md").read_text()
    assert "## Verdict: **FAIL**" in md
    for name in ("accuracy_curves", "throughput", "step_time", "memory"):
        assert f"](plots/{name}.png)" in md
        assert png_size((out / "plots" / f"{name}.png").read_bytes())[0] > 300
    assert "Verdict: FAIL" in (out / "report.html").read_text()
    assert not [p for p in out.rglob("*.tmp")]


@pytest.mark.parametrize("args, message", [
    (["{src}", "-o", "{file}"], "exists and is not a directory"),
    (["{missing}", "-o", "{out}"], "no such results file or directory"),
    (["{src}", "-o", "{out}", "--margin-pp", "-1"], "positive number of percentage points"),
    (["{src}", "-o", "{out}", "--history", "{missing}"], "does not exist"),
])
def test_cli_user_errors_are_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    from conftest import tfparity

    src = _write([make_result()], tmp_path / "results")
    (tmp_path / "a-file").write_text("x")
    fill = {"src": str(src), "file": str(tmp_path / "a-file"), "missing": str(tmp_path / "nope"),
            "out": str(tmp_path / "out")}
    proc = tfparity("report", *[a.format(**fill) for a in args])
    assert proc.returncode == 2
    assert proc.stderr.startswith("tfparity: error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert message in proc.stderr


def test_an_existing_report_survives_a_failed_rewrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rep = report.build_report(seed_suite(paths=(CPU,)), None)
    md, page = report.write_report(rep, tmp_path)
    before = page.read_bytes()
    real_fsync = os.fsync
    calls = []

    def failing_fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == len(rep.figures) + 2:  # the third kind of file: report.html
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    rep2 = report.build_report(seed_suite(paths=(CPU, XLA)), None)
    with pytest.raises(report.ReportError, match="No space left on device"):
        report.write_report(rep2, tmp_path)
    assert page.read_bytes() == before  # old report intact, not truncated
    assert not [p.name for p in tmp_path.rglob("*") if p.name.startswith(".")]  # temp files removed
    assert "cpu-fp32-xla" in md.read_text()  # the markdown before it was replaced whole


def test_a_path_measured_locally_and_in_docker_stays_two_groups(tmp_path: Path) -> None:
    """Same grouping as `tfparity compare local/ docker/`: the sources are not pooled."""
    from conftest import tfparity

    local = seed_suite(paths=(CPU,))
    docker_env = {**local[0].environment, "backend": "docker", "container_image": "tfparity:cpu",
                  "image_id": "sha256:" + "cd" * 32}
    docker = [make_result(r.run_spec.benchmark, path=CPU, seed=r.run_spec.seed, throughput=7000.0, env=docker_env)
              for r in local]
    out = tmp_path / "report"
    proc = tfparity("report", str(_write(local, tmp_path / "local")), str(_write(docker, tmp_path / "docker")),
                    "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    md = (out / "report.md").read_text()
    assert "| docker:cpu-fp32 | baseline | mnist-5k | 3 |" in md
    assert "| local:cpu-fp32 | baseline | mnist-5k | 3 |" in md
    assert "7,000 ± 0" in md and "9,000 ± 0" in md
    assert "|  | docker:cpu-fp32 | local:cpu-fp32 |" in md  # provenance per source
    assert "sha256:cdcdcdcdcdcd" in md


def test_report_modules_import_without_tensorflow_or_matplotlib() -> None:
    """The TF-free core: importing report/history/plots loads neither TF nor matplotlib (lazy)."""
    import subprocess
    import sys

    code = ("import sys, harness.report, harness.history, harness.plots; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
