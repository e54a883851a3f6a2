"""Results history as data: entries on disk (never overwritten), loading, and the trend rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.analysis import history
from harness.errors import ConfigError, HistoryError, ResultError
from tests.factories import CPU, night, result, write


@pytest.fixture()
def hist(tmp_path: Path) -> Path:
    root = tmp_path / "history"
    for day, (thr, acc) in enumerate([(9000.0, 0.910), (9400.0, 0.912), (8000.0, 0.905)], start=20):
        history.add_entry(
            root, night(tmp_path / "src", f"n{day}", thr, acc, gpu=day == 22), stamp=f"202611{day}T021700Z"
        )
    return root


def test_add_entry_lays_out_one_directory_per_night_and_machine(hist: Path) -> None:
    names = sorted(p.name for p in hist.iterdir())
    assert names == ["20261120T021700Z-nightly", "20261121T021700Z-nightly", "20261122T021700Z-nightly"]
    assert sorted(p.name for p in (hist / names[2]).iterdir()) == ["cpu", "gpu"]
    assert len(list((hist / names[0] / "cpu").glob("*.json"))) == 4


def test_entries_are_never_overwritten_and_bad_results_are_refused(tmp_path: Path, hist: Path) -> None:
    sets = night(tmp_path / "src", "again", 1.0, 0.5)
    with pytest.raises(HistoryError, match="already exists; entries are never overwritten"):
        history.add_entry(hist, sets, stamp="20261120T021700Z")
    bad = write([result()], tmp_path / "bad")
    (bad / "broken.json").write_text('{"schema_version": 99}')
    with pytest.raises(ResultError, match="newer than this tfparity reads"):
        history.add_entry(hist, [str(bad)], stamp="20261123T021700Z")
    assert not (hist / "20261123T021700Z-nightly").exists()
    assert not [p for p in hist.iterdir() if p.name.startswith(".")]  # no half-built entry left behind
    with pytest.raises(HistoryError, match="stamp must look like"):
        history.add_entry(hist, sets, stamp="12345")
    with pytest.raises(ConfigError, match="label must be"):
        history.add_entry(hist, sets, label="../escape")


def test_trend_rows_are_medians_and_means_per_machine_and_path(hist: Path) -> None:
    h = history.load_history(hist)
    assert [e.name for e in h.entries] == sorted(e.name for e in h.entries)
    by = {(r.entry[:11], r.series): r for r in history.trend_rows(h)}
    # Series are "<group> · <benchmark>"; no "machine:" prefix, as no path runs on two machines.
    assert {series for _, series in by} == {"cpu-fp32 · baseline", "cpu-fp32-xla · baseline", "gpu-fp32 · baseline"}
    first = by[("20261120T02", "cpu-fp32 · baseline")]
    assert first.throughput_samples_per_s == pytest.approx((9000 + 9100) / 2)
    assert first.test_accuracy == pytest.approx(0.911)
    assert first.n_ok == 2 and first.n_failed == 0
    assert first.time_utc == "2026-11-20T02:17:00Z" and first.synthetic is False
    xla = by[("20261122T02", "cpu-fp32-xla · baseline")]
    assert xla.throughput_samples_per_s == pytest.approx((24000 + 24100) / 2)
    assert ("20261122T02", "gpu-fp32 · baseline") in by
    assert ("20261121T02", "gpu-fp32 · baseline") not in by  # the GPU ran on the last night only
    cpu = [r.throughput_samples_per_s for r in history.trend_rows(h) if r.series == "cpu-fp32 · baseline"]
    assert cpu == [pytest.approx(9050.0), pytest.approx(9450.0), pytest.approx(8050.0)]


def test_a_path_on_two_machines_gets_the_machine_as_prefix(tmp_path: Path) -> None:
    root = tmp_path / "h"
    a = str(write([result("baseline", path=CPU, seed=0)], tmp_path / "src" / "box-a"))
    b = str(write([result("baseline", path=CPU, seed=0)], tmp_path / "src" / "box-b"))
    history.add_entry(root, [a, b], stamp="20261120T021700Z")
    rows = history.trend_rows(history.load_history(root))
    assert sorted(r.series for r in rows) == ["box-a:cpu-fp32 · baseline", "box-b:cpu-fp32 · baseline"]


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


def test_an_entry_without_a_stamp_is_dated_by_its_results(tmp_path: Path) -> None:
    root = tmp_path / "h"
    write([result(started="2026-11-24T03:00:00Z")], root / "manual-run")
    (entry,) = history.load_history(root).entries
    assert entry.time.isoformat() == "2026-11-24T03:00:00+00:00" and entry.label == "manual-run"
