"""`tfparity compare` as the CLI runs it (parser + command, in process): exit codes, JSON, sources, baselines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import compare
from harness.cli.main import build_parser
from harness.errors import UserError
from harness.store.results import RunResult, load_result, write_result
from tests.factories import BF16, CPU, GPU, gpu_telemetry, result, seeds, write
from tests.helpers import tfparity

BASE_ACCS = [0.920, 0.905, 0.931, 0.912, 0.925, 0.918]


def _cli(argv: list[str]) -> int:
    """Parse as ``tfparity compare ARGV`` does and run the command (user errors raise, as main() sees them)."""
    return compare.run(build_parser().parse_args(["compare", *argv]))


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def _runs(step_ms: list[float], rng_offset: int = 0) -> list[RunResult]:
    return [result(path=CPU, seed=s, test_acc=BASE_ACCS[s], step_ms=ms, rng_seed=s * 1000 + rng_offset)
            for s, ms in enumerate(step_ms)]  # fmt: skip


def test_cli_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(seeds(CPU, BASE_ACCS) + seeds(BF16, [a + 0.001 for a in BASE_ACCS]), tmp_path / "ok")
    assert _cli([str(tmp_path / "ok")]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split()[:2] in (["verdict:", "PASS"], ["verdict:", "WARN"])
    assert _cli([str(tmp_path / "ok"), "--json"]) == 0
    data = _json(capsys)
    assert data["verdict"] in ("PASS", "WARN")
    write(seeds(CPU, BASE_ACCS) + seeds(BF16, [a - 0.03 for a in BASE_ACCS]), tmp_path / "bad")
    assert _cli([str(tmp_path / "bad"), "--json"]) == 1
    data = _json(capsys)
    assert data["verdict"] == "FAIL" and data["counts"]["FAIL"] >= 1


def test_cli_local_vs_docker_directories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write([result(seed=0, backend="local")], tmp_path / "a")
    write([result(seed=0, backend="docker")], tmp_path / "b")
    assert _cli([str(tmp_path / "a"), str(tmp_path / "b"), "--json"]) == 0
    assert _json(capsys)["groups"] == ["local:cpu-fp32", "docker:cpu-fp32"]
    # Same backend in both directories (another run of the same spec): labelled by directory name.
    write([result(seed=0, started="2026-11-25T03:00:00Z")], tmp_path / "c")
    assert _cli([str(tmp_path / "a"), str(tmp_path / "c"), "--json"]) == 0
    assert _json(capsys)["groups"] == ["a:cpu-fp32", "c:cpu-fp32"]
    # Round trip through the file format keeps everything compare needs.
    path = next((tmp_path / "a").glob("*.json"))
    assert load_result(path).timing.step_time_ms == result(seed=0).timing.step_time_ms


def test_cli_one_directory_with_local_and_docker_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for backend in ("local", "docker"):
        r = result(seed=0, backend=backend)
        write_result(r, mixed / f"{r.run_id}-{backend}.json")  # one spec, two backends: two files
    assert _cli([str(mixed), "--json"]) == 0
    data = _json(capsys)
    assert sorted(data["groups"]) == ["docker:cpu-fp32", "local:cpu-fp32"]
    # Rule changed: one run per side cannot decide speed or memory (WARN, INCONCLUSIVE); all else passes.
    assert data["verdict"] == "WARN"
    assert {c["name"] for c in data["checks"] if c["verdict"] != "PASS"} == {"speed", "memory"}


def test_cli_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = str(write([result(seed=0)], tmp_path / "r"))
    with pytest.raises(SystemExit) as exc:  # a bad gate is refused by argparse: one line, exit 2
        _cli([r, "--baseline", r, "--gate", "throughput:5"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "bad gate 'throughput:5'" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(UserError, match="--gate needs --baseline"):
        _cli([r, "--gate", "throughput:-5%"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no result files found"):
        _cli([str(tmp_path / "empty")])
    with pytest.raises(UserError, match="unknown reference"):
        _cli([r, "--reference", "nope"])


def test_cli_refuses_a_result_given_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(write(seeds(CPU, BASE_ACCS[:2]), tmp_path / "d"))
    with pytest.raises(UserError) as exc:
        _cli([d, d])
    assert str(exc.value) == f"{d!r} is given twice: a result never counts twice"
    # One file reached through two arguments, named.
    one = sorted(Path(d).glob("*.json"))[0]
    with pytest.raises(UserError, match=rf"result file '{one}' is given twice \(in '{d}' and '{one}'\)"):
        _cli([d, str(one)])
    # A copied file (identical content under another name) names both files.
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "renamed.json").write_bytes(one.read_bytes())
    with pytest.raises(UserError) as exc:
        _cli([d, str(copy)])
    assert f"{str(one)!r} and {str(copy / 'renamed.json')!r} hold the same run" in str(exc.value)
    # report refuses the same way (it loads its sources with the same function).
    from harness.cli import report

    with pytest.raises(UserError, match="is given twice"):
        report.run(build_parser().parse_args(["report", d, d, "-o", str(tmp_path / "rep")]))
    assert not (tmp_path / "rep").exists()


def test_cli_refuses_results_without_a_common_dataset(tmp_path: Path) -> None:
    a = str(write(seeds(CPU, BASE_ACCS[:1]), tmp_path / "a"))
    b = str(write(seeds(CPU, BASE_ACCS[:1], dataset="synthetic"), tmp_path / "b"))
    with pytest.raises(UserError, match=r"no dataset in common: 'b:cpu-fp32' ran on 'synthetic', the reference "
                                        r"'a:cpu-fp32' on 'mnist-5k'"):  # fmt: skip
        _cli([a, b])


def test_cli_with_one_group_warns_that_nothing_was_compared(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(write(seeds(CPU, BASE_ACCS[:3]), tmp_path / "d"))
    assert _cli([d]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("verdict: WARN")
    assert "nothing to compare: one group" in out


def test_cli_baseline_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Rule changed: a speed regression needs 4 runs per side (the run is the unit), so 4 seeds each.
    base = str(write(_runs([2.5, 2.51, 2.49, 2.5]), tmp_path / "base"))
    same = str(write(_runs([2.5, 2.51, 2.49, 2.5], rng_offset=1), tmp_path / "same"))
    slow = str(write(_runs([2.5 * 1.09, 2.51 * 1.09, 2.49 * 1.09, 2.5 * 1.09], rng_offset=1), tmp_path / "slow"))
    gates = ["--gate", "throughput:-5%", "--gate", "test_accuracy:-0.5pp"]

    def regressions() -> dict[str, bool]:
        checks = _json(capsys)["checks"]
        return {c["details"]["metric"]: c["details"]["regression"] for c in checks if c["name"] == "regression"}

    assert _cli([same, "--baseline", base, *gates, "--json"]) == 0
    assert regressions() == {"throughput": False, "test_accuracy": False}
    assert _cli([slow, "--baseline", base, *gates, "--json"]) == 1
    assert regressions() == {"throughput": True, "test_accuracy": False}
    # Default gates when --baseline has no --gate: throughput -5 % and test accuracy -margin.
    assert _cli([slow, "--baseline", base, "--json"]) == 1
    assert regressions() == {"throughput": True, "test_accuracy": False}


def test_baseline_on_other_gpu_hardware_is_one_line_exit_2_unless_allowed(tmp_path: Path) -> None:
    base = write([result(path=GPU, seed=s, telemetry=gpu_telemetry("NVIDIA A100-SXM4-80GB")) for s in (0, 1)],
                 tmp_path / "base")  # fmt: skip
    now = write([result(path=GPU, seed=s, telemetry=gpu_telemetry("NVIDIA L4", "550.54.15")) for s in (0, 1)],
                tmp_path / "now")  # fmt: skip
    for command in (["compare", str(now)], ["report", str(now), "-o", str(tmp_path / "report")]):
        proc = tfparity(*command, "--baseline", str(base))
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "GPU hardware differs from the baseline's" in proc.stderr
        assert "NVIDIA L4 (driver 550.54.15)" in proc.stderr and "--allow-hardware-change" in proc.stderr
        assert not (tmp_path / "report" / "report.md").exists()
    proc = tfparity("compare", str(now), "--baseline", str(base), "--allow-hardware-change", "--json")
    assert proc.returncode == 0, proc.stderr
    (hardware,) = [c for c in json.loads(proc.stdout)["checks"] if c["name"] == "hardware"]
    assert hardware["verdict"] == "WARN" and hardware["details"]["allowed"] is True
    proc = tfparity(
        "report", str(now), "-o", str(tmp_path / "report"), "--baseline", str(base), "--allow-hardware-change"
    )
    assert proc.returncode == 0, proc.stderr
    assert "GPU hardware differs" in (tmp_path / "report" / "report.md").read_text()
    proc = tfparity("compare", str(now), "--allow-hardware-change")
    assert proc.returncode == 2 and "--allow-hardware-change needs --baseline" in proc.stderr


def test_cli_noise_floors_from_results_and_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A noise.json under the baseline (or given with --noise-floor) sets the speed decision's sigma floor."""
    from harness.analysis.noise import write_noise

    base = [result("baseline", path=CPU, seed=0, repeat=r, step_ms=ms, step_sd_frac=0.0)
            for r, ms in enumerate((2.5, 3.1, 2.2, 2.9, 2.6))]  # fmt: skip
    cur = [result("baseline", path=CPU, seed=0, repeat=r, step_ms=2.5, rng_seed=r) for r in range(5)]
    write(base, tmp_path / "base")
    write(cur, tmp_path / "cur")
    floor_file = write_noise(tmp_path / "base", base)
    assert (
        _cli([str(tmp_path / "cur"), "--baseline", str(tmp_path / "base"), "--gate", "throughput:-5%", "--json"]) == 0
    )
    (check,) = [c for c in _json(capsys)["checks"] if c["name"] == "regression"]
    shift = check["details"]["shift"]
    assert shift["floor_source"] == str(floor_file) and shift["sigma_floor"] > 0.1
    assert check["verdict"] == "WARN" and check["details"]["decision"] == "inconclusive"  # 5 runs: not enough
    # The same floor given explicitly, from elsewhere.
    moved = tmp_path / "calibration.json"
    floor_file.rename(moved)
    assert (
        _cli([str(tmp_path / "cur"), "--baseline", str(tmp_path / "base"), "--noise-floor", str(moved), "--json"]) == 0
    )
    (check,) = [c for c in _json(capsys)["checks"] if c["details"].get("metric") == "throughput"]
    assert check["details"]["shift"]["floor_source"] == str(moved)
    moved.write_text("{}")
    with pytest.raises(UserError, match="is not a tfparity noise floor file"):
        _cli([str(tmp_path / "cur"), "--noise-floor", str(moved)])


def test_cli_confirm_needs_a_baseline(tmp_path: Path) -> None:
    r = str(write([result(seed=0)], tmp_path / "r"))
    with pytest.raises(UserError, match="--confirm needs --baseline"):
        _cli([r, "--confirm", "3"])
