"""`tfparity history`: archive a night's result sets, print the trend, write the page, find the newest entry."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest

from harness.analysis import history
from tests.factories import CPU, XLA, night, png_size, result, write
from tests.helpers import tfparity


@pytest.fixture()
def hist(tmp_path: Path) -> Path:
    root = tmp_path / "history"
    for day, (thr, acc) in enumerate([(9000.0, 0.910), (9400.0, 0.912), (8000.0, 0.905)], start=20):
        history.add_entry(root, night(tmp_path / "src", f"n{day}", thr, acc), stamp=f"202611{day}T021700Z")
    return root


def test_cli_history_prints_the_trend_and_writes_a_page(tmp_path: Path, hist: Path) -> None:
    out = tmp_path / "out"
    proc = tfparity("history", str(hist), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"history {hist}: 3 entries"
    row = next(x for x in lines if x.startswith("20261121T021700Z-nightly") and "cpu-fp32 · baseline" in x)
    # median throughput and peak RSS over the runs, mean accuracy over the two seeds; no change point
    assert row.split()[-3:] == ["9,450", "1,200", "0.9130"]
    assert "5 series with fewer than 7 nights not analysed (too few nights)" in proc.stdout
    assert lines[-2:] == [str(out / "history.md"), str(out / "history.html")]
    page = (out / "history.html").read_text()
    (src,) = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert png_size(base64.b64decode(src))[0] > 500
    assert (out / "plots" / "trend.png").read_bytes() == base64.b64decode(src)
    assert "](plots/trend.png)" in (out / "history.md").read_text()


def test_cli_history_add_and_latest(tmp_path: Path) -> None:
    root = tmp_path / "h"
    assert tfparity("history", str(root), "--latest").stdout == ""  # no history yet: no baseline
    sets = night(tmp_path / "src", "a", 9000.0, 0.91)
    proc = tfparity("history", str(root), "--add", *sets, "--stamp", "20261120T021700Z")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"added {root / '20261120T021700Z-nightly'}"
    proc = tfparity("history", str(root), "--add", *sets, "--stamp", "20261121T021700Z", "--label", "nightly-failed")
    assert proc.returncode == 0, proc.stderr
    assert tfparity("history", str(root), "--latest").stdout.strip() == str(root / "20261121T021700Z-nightly-failed")
    latest_passing = tfparity("history", str(root), "--latest", "--label", "nightly").stdout.strip()
    assert latest_passing == str(root / "20261120T021700Z-nightly")


@pytest.mark.parametrize("args, message", [
    (["{missing}"], "does not exist or is not a directory"),
    (["{root}", "--stamp", "20261120T021700Z"], "--stamp only applies together with --add"),
    (["{root}", "--add", "{missing}"], "no such results file or directory"),
])  # fmt: skip
def test_cli_history_user_errors(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "root").mkdir()
    proc = tfparity("history", *[a.format(missing=str(tmp_path / "nope"), root=str(tmp_path / "root")) for a in args])
    assert proc.returncode == 2
    assert proc.stderr.startswith("tfparity: error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert message in proc.stderr


def test_cli_history_marks_the_nights_where_a_metric_shifted(tmp_path: Path) -> None:
    """Ten nights: throughput drops 15 % from night 6, the XLA path's accuracy 2 pp from night 5."""
    root = tmp_path / "history"
    noise = np.random.default_rng(5).normal(0.0, 0.01, 10)  # 1 % night-to-night noise
    for d in range(10):
        thr = (9000.0 if d < 6 else 7650.0) * float(np.exp(noise[d]))
        runs = [result("baseline", path=p, seed=s, throughput=(3 * thr if p.xla else thr) + s,
                       test_acc=(0.89 if p.xla and d >= 5 else 0.91) + 0.001 * s, step_sd_frac=0.0)
                for p in (CPU, XLA) for s in (0, 1)]  # fmt: skip
        history.add_entry(root, [str(write(runs, tmp_path / "src" / f"n{d}" / "cpu"))], stamp=f"202611{10 + d}T021700Z")
    out = tmp_path / "out"
    proc = tfparity("history", str(root), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    marked = {(line.split()[0], line.split()[2]): line for line in proc.stdout.splitlines() if "−" in line}
    assert re.search(r"throughput −1[4-6]\.\d %$", marked[("20261116T021700Z-nightly", "cpu-fp32")])
    assert "test accuracy Δ −2.00 pp" in marked[("20261115T021700Z-nightly", "cpu-fp32-xla")]
    assert "3 in 5 series scanned" in proc.stdout  # 2 throughput + 1 accuracy delta; memory and cpu-fp32 flat
    assert (
        "test accuracy Δ" in (out / "history.md").read_text() and "change point" in (out / "history.html").read_text()
    )
