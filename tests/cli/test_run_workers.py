"""``tfparity run --workers``: the refused combinations are one line (exit 2) with nothing written, before
any engine is touched (real runs across containers: tests/orchestrate/test_docker_workers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import tfparity

COMPILED = ["--loop", "compiled"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--workers", "2", *COMPILED], "--workers 2 runs each worker in its own container: use --backend docker"),
        (["--workers", "1", "--workers", "2", *COMPILED, "--backend", "local"], "use --backend docker"),
        (["--workers", "2", "--backend", "docker"], "workers 2 need loop 'compiled'"),
        (["--workers", "2", "--replicas", "2", "--backend", "docker", *COMPILED], "each worker runs one replica"),
        (["--workers", "2", "--xla", "on", "--backend", "docker", *COMPILED], "xla=on cannot run with 2 replicas"),
        (["--workers", "3", "--backend", "docker", *COMPILED], "does not split evenly over 3 replicas"),
        (["--workers", "0"], "expected a positive integer, got '0'"),
        (["--workers", "2", "--backend", "docker", *COMPILED, "--parallel", "2"], "--workers 2 runs on one engine"),
        (["--workers", "2", "--backend", "docker", *COMPILED, "--docker-context", "x"], "drop --docker-context"),
    ],
)
def test_refused_worker_combinations_are_one_line_and_write_nothing(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    proc = tfparity("run", "--model", "baseline", "--results-dir", str(tmp_path / "results"), *flags)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "results").exists()
