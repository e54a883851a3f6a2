"""`tfparity history`: archive a night's result sets, print the trend, write the page, find the newest entry."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from harness.analysis import history
from tests.factories import night, png_size
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
    assert row.split()[-2:] == ["9,450", "0.9130"]  # median throughput, mean accuracy over the two seeds
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
