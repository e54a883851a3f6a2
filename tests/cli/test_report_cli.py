"""`tfparity report`: files written atomically, exit codes, sources grouped as compare groups them,
the history section and a baseline taken from a history entry."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from harness.analysis import history
from harness.cli import report
from harness.cli.main import build_parser
from harness.cli.sources import load_baseline
from harness.errors import ReportError
from tests.factories import CPU, GPU, XLA, environment, night, png_size, result, seed_suite, write
from tests.helpers import tfparity

MODELS = ("baseline", "batchnorm")


@pytest.fixture()
def hist(tmp_path: Path) -> Path:
    root = tmp_path / "history"
    for day, (thr, acc) in enumerate([(9000.0, 0.910), (9400.0, 0.912), (8000.0, 0.905)], start=20):
        history.add_entry(root, night(tmp_path / "src", f"n{day}", thr, acc), stamp=f"202611{day}T021700Z")
    return root


def md_rows(md: str) -> list[list[str]]:
    """The cells of every Markdown table row (header rows included, separator rows not)."""
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in md.splitlines() if line.startswith("|") and not line.startswith("|---")]  # fmt: skip


def test_cli_writes_markdown_and_html_and_exits_0_even_on_fail(tmp_path: Path) -> None:
    # The XLA path loses 14 points of test accuracy on every seed: a FAIL.
    xla = [result(b, path=XLA, seed=s, epochs=5, val_acc=0.80, test_acc=0.78) for s in (0, 1, 2) for b in MODELS]
    results = seed_suite(paths=(CPU,), step_sd_frac=0.0) + xla
    src = write(results, tmp_path / "results")
    out = tmp_path / "report"
    proc = tfparity("report", str(src), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [str(out / "report.md"), str(out / "report.html")]
    md = (out / "report.md").read_text()
    assert "## Verdict: **FAIL**" in md
    for name in ("accuracy_curves", "throughput", "step_time", "memory"):
        assert f"](plots/{name}.png)" in md
        assert png_size((out / "plots" / f"{name}.png").read_bytes())[0] > 300
    assert 'id="verdict-value">Verdict: FAIL<' in (out / "report.html").read_text()
    assert not [p for p in out.rglob("*.tmp")]


@pytest.mark.parametrize("args, message", [
    (["{src}", "-o", "{file}"], "exists and is not a directory"),
    (["{missing}", "-o", "{out}"], "no such results file or directory"),
    (["{src}", "-o", "{out}", "--margin-pp", "-1"], "positive number of percentage points"),
    (["{src}", "-o", "{out}", "--history", "{missing}"], "does not exist"),
])  # fmt: skip
def test_cli_user_errors_are_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    src = write([result()], tmp_path / "results")
    (tmp_path / "a-file").write_text("x")
    fill = {"src": str(src), "file": str(tmp_path / "a-file"), "missing": str(tmp_path / "nope"),
            "out": str(tmp_path / "out")}  # fmt: skip
    proc = tfparity("report", *[a.format(**fill) for a in args])
    assert proc.returncode == 2
    assert proc.stderr.startswith("tfparity: error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert message in proc.stderr


def test_an_existing_report_survives_a_failed_rewrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    def cli(*argv: str) -> int:
        return report.run(build_parser().parse_args(["report", *argv]))

    out = tmp_path / "report"
    assert cli(str(write(seed_suite(paths=(CPU,), step_sd_frac=0.0), tmp_path / "one")), "-o", str(out)) == 0
    page = out / "report.html"
    before = page.read_bytes()
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:  # the disk fills up while report.html is written
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(".report.html."):
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(ReportError, match="No space left on device"):
        cli(str(write(seed_suite(paths=(CPU, XLA), step_sd_frac=0.0), tmp_path / "two")), "-o", str(out))
    assert page.read_bytes() == before  # old report intact, not truncated
    assert not [p.name for p in out.rglob("*") if p.name.startswith(".")]  # temp files removed
    assert "cpu-fp32-xla" in (out / "report.md").read_text()  # the markdown before it was replaced whole


def test_a_path_measured_locally_and_in_docker_stays_two_groups(tmp_path: Path) -> None:
    """Same grouping as `tfparity compare local/ docker/`: the sources are not pooled."""
    local = seed_suite(paths=(CPU,), step_sd_frac=0.0)
    docker_env = environment(CPU, "docker", container_image="tfparity:cpu", image_id="sha256:" + "cd" * 32)
    docker = seed_suite(paths=(CPU,), throughput=7000.0, env=docker_env, step_sd_frac=0.0)
    out = tmp_path / "report"
    proc = tfparity("report", str(write(local, tmp_path / "local")), str(write(docker, tmp_path / "docker")),
                    "-o", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = md_rows((out / "report.md").read_text())
    per_group = {(r[0], r[1]): r for r in rows if r[0] in ("docker:cpu-fp32", "local:cpu-fp32") and len(r) == 11}
    assert sorted(per_group) == [
        (g, b) for g in ("docker:cpu-fp32", "local:cpu-fp32") for b in ("baseline", "batchnorm")
    ]
    assert all(r[2:4] == ["mnist-5k", "3"] for r in per_group.values())  # three seeds each, never six
    assert per_group[("docker:cpu-fp32", "baseline")][6] == "7,000 ± 0"
    assert per_group[("local:cpu-fp32", "baseline")][6] == "9,000 ± 0"
    provenance = next(i for i, r in enumerate(rows) if r == ["", "docker:cpu-fp32", "local:cpu-fp32"])
    image_id = next(r for r in rows[provenance:] if r[0] == "image id")
    assert image_id[1] == "sha256:cdcdcdcdcdcd" and image_id[2] == "n/a"


def test_report_with_history_has_a_trend_section(tmp_path: Path, hist: Path) -> None:
    current = write([result("baseline", path=p, seed=s) for p in (CPU, XLA) for s in (0, 1)], tmp_path / "cur")
    out = tmp_path / "report"
    proc = tfparity("report", str(current), "-o", str(out), "--history", str(hist))
    assert proc.returncode == 0, proc.stderr
    md = (out / "report.md").read_text()
    assert "## History" in md and "](plots/trend.png)" in md
    assert png_size((out / "plots" / "trend.png").read_bytes())[0] > 500
    # entry, time, series "<group> · <benchmark>", runs, median throughput, mean accuracy
    assert [
        "20261122T021700Z-nightly",
        "2026-11-22T02:17:00Z",
        "cpu-fp32 · baseline",
        "2",
        "8,050",
        "1,200",
        "0.9060",
        "",
    ] in md_rows(md)
    page = (out / "report.html").read_text()
    assert '<section id="history">' in page
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 5  # four figures and the trend


def test_report_baseline_pairs_machines_by_subdirectory(tmp_path: Path, hist: Path) -> None:
    """--baseline with a history entry (cpu/) pairs each current set with the same machine's set."""
    # Four runs per side: the fewest from which a speed regression can be decided (README "Statistics").
    sets = night(tmp_path / "src", "tonight", 4000.0, 0.91, seeds=4)  # throughput halved: a regression
    entry = history.add_entry(
        tmp_path / "hist4", night(tmp_path / "src4", "n21", 9400.0, 0.912, seeds=4), stamp="20261121T021700Z"
    )
    baseline = str(entry)
    results, labels = load_baseline(baseline, ["cpu", "gpu"])
    assert set(labels) == {"cpu"} and len(results) == 8
    gpu = write([result("baseline", path=GPU)], tmp_path / "src" / "tonight" / "gpu")
    out = tmp_path / "report"
    proc = tfparity("report", *sets, str(gpu), "-o", str(out), "--baseline", baseline)
    assert proc.returncode == 0, proc.stderr
    md = (out / "report.md").read_text()
    assert "## Verdict: **FAIL**" in md
    checks = [r for r in md_rows(md) if len(r) == 4 and r[1] == "regression"]
    failed = {r[2] for r in checks if r[0] == "FAIL"}
    assert failed == {"baseline/mnist-5k: cpu-fp32 vs baseline (throughput:-5%)",
                      "baseline/mnist-5k: cpu-fp32-xla vs baseline (throughput:-5%)"}  # fmt: skip
    # the GPU set has no partner in the entry: said so, not compared with the CPU's numbers
    assert [r[0] for r in checks if r[2] == "baseline/mnist-5k: gpu-fp32 vs baseline"] == ["WARN"]
