"""Where a suite runs is recorded with its plan: a plain ``tfparity run --resume DIR`` (the command the
harness prints when a suite stops) runs the rest on the same GPUs, with the same memory limit, on the same
lanes or fleet, never on this host's defaults. Flags given again replace what was recorded (the lanes as
one); a suite recorded before placement existed resumes as it always did. The end-to-end case, a fleet
suite resumed after one of its engines went away, is in tests/orchestrate/test_fleet.py."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from harness.cli.main import build_parser
from harness.cli.run import placement, resume_plan
from harness.spec.run_spec import RunSpec
from harness.store.layout import write_manifest


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", *argv])


def suite(tmp_path: Path, recorded: dict[str, object] | None) -> Path:
    meta: dict[str, object] = {"suite": "run", "backend": "docker", "data_dir": None}
    if recorded is not None:
        meta["placement"] = recorded
    out = tmp_path / "run-1"
    out.mkdir()
    write_manifest(out, [RunSpec(benchmark="baseline", epochs=1)], meta)
    return out


def test_a_new_suite_records_the_placement_flags_given_and_a_hosts_file_by_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = parse("--backend", "docker", "--device", "gpu", "--gpus", "1,2", "--memory-limit", "6g", "--hosts", "f.toml")
    assert placement(args) == {"gpus": "1,2", "memory_limit": "6g", "hosts": str(tmp_path / "f.toml")}
    assert placement(parse("--backend", "docker")) == {}  # nothing given: nothing recorded, the defaults hold
    contexts = parse("--backend", "docker", "--docker-context", "a", "--docker-context", "b")
    assert placement(contexts) == {"docker_context": ["a", "b"]}


def test_a_plain_resume_runs_where_the_suite_started(tmp_path: Path) -> None:
    out = suite(tmp_path, {"gpus": "1,2", "memory_limit": "6g", "docker_context": ["a", "b"]})
    args = parse("--resume", str(out))
    specs, _, _ = resume_plan(args)
    assert len(specs) == 1 and args.backend == "docker"
    assert (args.gpus, args.memory_limit, args.docker_context, args.parallel, args.hosts) == (
        "1,2", "6g", ["a", "b"], None, None,
    )  # fmt: skip


def test_flags_given_again_replace_what_was_recorded_and_the_lanes_as_one(tmp_path: Path) -> None:
    out = suite(tmp_path, {"gpus": "1,2", "memory_limit": "6g", "docker_context": ["a", "b"]})
    args = parse("--resume", str(out), "--memory-limit", "8g", "--parallel", "2")
    resume_plan(args)
    # --parallel replaces the recorded fleet as a whole (a fleet and lanes on one host cannot both hold).
    assert (args.gpus, args.memory_limit, args.parallel, args.docker_context) == ("1,2", "8g", 2, None)


def test_a_suite_recorded_before_placement_existed_resumes_on_the_defaults(tmp_path: Path) -> None:
    args = parse("--resume", str(suite(tmp_path, None)))
    resume_plan(args)
    assert (args.gpus, args.memory_limit, args.parallel, args.docker_context, args.hosts) == (None,) * 5
