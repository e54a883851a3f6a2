"""Results history: entries on disk, trend data, `tfparity history`, and the report's history section."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from conftest import tfparity

from harness import history, report
from harness.config import PathSpec
from harness.results import write_result

try:
    from test_report import CPU, XLA, make_result, png_size
except ImportError:  # pragma: no cover - tests/ imported as a package
    from tests.test_report import CPU, XLA, make_result, png_size


def _write(results, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for r in results:
        write_result(r, directory / f"{r.run_id}.json")
    return directory


def _night(tmp: Path, name: str, throughput: float, accuracy: float, *, gpu: bool = False) -> list[str]:
    """A night's result sets: cpu/ with two seeds of baseline on cpu-fp32 and cpu-fp32-xla (+ gpu/)."""
    sets = []
    cpu = [make_result("baseline", path=p, seed=s, throughput=throughput * (3 if p.xla else 1) + 100 * s,
                       test_accuracy=accuracy + 0.002 * s) for p in (CPU, XLA) for s in (0, 1)]
    sets.append(str(_write(cpu, tmp / name / "cpu")))
    if gpu:
        g = [make_result("baseline", path=PathSpec(device="gpu"), seed=s, throughput=50_000.0,
                         test_accuracy=accuracy) for s in (0, 1)]
        sets.append(str(_write(g, tmp / name / "gpu")))
    return sets


@pytest.fixture()
def hist(tmp_path: Path) -> Path:
    root = tmp_path / "history"
    for day, (thr, acc) in enumerate([(9000.0, 0.910), (9400.0, 0.912), (8000.0, 0.905)], start=20):
        history.add_entry(root, _night(tmp_path / "src", f"n{day}", thr, acc, gpu=day == 22),
                          stamp=f"202611{day}T021700Z")
    return root


def test_add_entry_lays_out_one_directory_per_night_and_machine(hist: Path) -> None:
    names = sorted(p.name for p in hist.iterdir())
    assert names == ["20261120T021700Z-nightly", "20261121T021700Z-nightly", "20261122T021700Z-nightly"]
    assert sorted(p.name for p in (hist / names[2]).iterdir()) == ["cpu", "gpu"]
    assert len(list((hist / names[0] / "cpu").glob("*.json"))) == 4


def test_entries_are_never_overwritten_and_bad_results_are_refused(tmp_path: Path, hist: Path) -> None:
    sets = _night(tmp_path / "src", "again", 1.0, 0.5)
    with pytest.raises(history.HistoryError, match="already exists; entries are never overwritten"):
        history.add_entry(hist, sets, stamp="20261120T021700Z")
    bad = tmp_path / "bad"
    _write([make_result()], bad)
    (bad / "broken.json").write_text('{"schema_version": 99}')
    with pytest.raises(Exception, match="newer than this tfparity reads"):
        history.add_entry(hist, [str(bad)], stamp="20261123T021700Z")
    assert not (hist / "20261123T021700Z-nightly").exists()
    assert not [p for p in hist.iterdir() if p.name.startswith(".")]  # no half-built entry left behind
    with pytest.raises(history.HistoryError, match="stamp must look like"):
        history.add_entry(hist, sets, stamp="12345")
    with pytest.raises(Exception, match="label must be"):
        history.add_entry(hist, sets, label="../escape")


def test_trend_rows_are_medians_and_means_per_machine_and_path(hist: Path) -> None:
    h = history.load_history(hist)
    assert [e.name for e in h.entries] == sorted(e.name for e in h.entries)
    rows = history.trend_rows(h)
    by = {(r["entry"][:8 + 3], r["series"]): r for r in rows}
    first = by[("20261120T02", "cpu-fp32 · baseline @ cpu")]
    assert first["throughput_samples_per_s"] == pytest.approx((9000 + 9100) / 2)
    assert first["test_accuracy"] == pytest.approx(0.911)
    assert first["n_ok"] == 2 and first["n_failed"] == 0
    xla = by[("20261122T02", "cpu-fp32-xla · baseline @ cpu")]
    assert xla["throughput_samples_per_s"] == pytest.approx((24000 + 24100) / 2)
    assert ("20261122T02", "gpu-fp32 · baseline @ gpu") in by
    series = {s.label: s for s in history.trend_series(h)}
    assert len(series["cpu-fp32 · baseline @ cpu"].times) == 3
    assert series["cpu-fp32 · baseline @ cpu"].throughput_samples_per_s == [9050.0, 9450.0, 8050.0]


def test_unreadable_entries_are_skipped_with_the_reason(hist: Path) -> None:
    broken = hist / "20261119T021700Z-nightly" / "cpu"
    broken.mkdir(parents=True)
    (broken / "x.json").write_text("{not json")
    (hist / "empty-dir").mkdir()
    h = history.load_history(hist)
    assert len(h.entries) == 3
    reasons = dict(h.skipped)
    assert "is not valid JSON" in reasons["20261119T021700Z-nightly"]
    assert reasons["empty-dir"] == "no result files"
    assert "skipped 20261119T021700Z-nightly" in history.render_text(h)


def test_an_entry_without_a_stamp_is_dated_by_its_results(tmp_path: Path) -> None:
    root = tmp_path / "h"
    _write([make_result(started="2026-11-24T03:00:00Z")], root / "manual-run")
    (entry,) = history.load_history(root).entries
    assert entry.time.isoformat() == "2026-11-24T03:00:00+00:00" and entry.label == "manual-run"


def test_cli_history_prints_the_trend_and_writes_a_page(tmp_path: Path, hist: Path) -> None:
    out = tmp_path / "out"
    proc = tfparity("history", str(hist), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"history {hist}: 3 entries"
    row = next(x for x in lines if x.startswith("20261121T021700Z-nightly") and "cpu-fp32 · baseline @ cpu" in x)
    assert row.split()[-2:] == ["9,450", "0.9130"]
    page = (out / "history.html").read_text()
    (src,) = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert png_size(base64.b64decode(src))[0] > 500
    assert (out / "plots" / "trend.png").read_bytes() == base64.b64decode(src)
    assert "](plots/trend.png)" in (out / "history.md").read_text()


def test_cli_history_add_and_latest(tmp_path: Path) -> None:
    root = tmp_path / "h"
    assert tfparity("history", str(root), "--latest").stdout == ""  # no history yet: no baseline
    sets = _night(tmp_path / "src", "a", 9000.0, 0.91)
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
])
def test_cli_history_user_errors(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "root").mkdir()
    proc = tfparity("history", *[a.format(missing=str(tmp_path / "nope"), root=str(tmp_path / "root")) for a in args])
    assert proc.returncode == 2
    assert proc.stderr.startswith("tfparity: error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert message in proc.stderr


def test_report_with_history_has_a_trend_section(tmp_path: Path, hist: Path) -> None:
    current = _write([make_result("baseline", path=p, seed=s) for p in (CPU, XLA) for s in (0, 1)], tmp_path / "cur")
    out = tmp_path / "report"
    proc = tfparity("report", str(current), "-o", str(out), "--history", str(hist))
    assert proc.returncode == 0, proc.stderr
    md = (out / "report.md").read_text()
    assert "## History" in md and "3 entries in" in md and "](plots/trend.png)" in md
    assert "| 20261122T021700Z-nightly | 2026-11-22T02:17:00Z | cpu-fp32 · baseline @ cpu | 2 | 8,050 | 0.9060 |" in md
    page = (out / "report.html").read_text()
    assert '<section id="history">' in page
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 5


def test_report_baseline_pairs_machines_by_subdirectory(tmp_path: Path, hist: Path) -> None:
    """--baseline with a history entry (cpu/, gpu/) pairs each current set with the same machine's set."""
    sets = _night(tmp_path / "src", "tonight", 4000.0, 0.91)  # throughput halved: a regression
    baseline = str(hist / "20261121T021700Z-nightly")
    results, labels = report._load_baseline(baseline, ["cpu", "gpu"])
    assert set(labels) == {"cpu"} and len(results) == 4
    out = tmp_path / "report"
    proc = tfparity("report", *sets, str(_write([make_result("baseline", path=PathSpec(device="gpu"))],
                                                tmp_path / "src" / "tonight" / "gpu")),
                    "-o", str(out), "--baseline", baseline)
    assert proc.returncode == 0, proc.stderr
    md = (out / "report.md").read_text()
    assert "## Verdict: **FAIL**" in md
    regression_rows = [x for x in md.splitlines() if x.startswith("| FAIL |") and "regression" in x.lower()]
    assert regression_rows, md[:3000]
    json.dumps(proc.stdout)  # printable
