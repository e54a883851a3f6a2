"""The nightly pipeline: .github/workflows/nightly.yml is consistent with the Makefile (and the
Makefile's recipes with the CLI), and .ci/nightly.mk really runs bench -> report -> gate -> archive,
with or without a GPU, and never hides a GPU set that is missing or failed (issue 12)."""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.factories import CPU, GPU, XLA
from tests.helpers import ROOT, tfparity

WORKFLOW = ROOT / ".github" / "workflows" / "nightly.yml"
MAKE_TARGET = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)\s*:(?!=)")


def make_database(makefile: Path, cwd: Path) -> tuple[set[str], dict[str, str]]:
    """Targets (and their recipes) as GNU make itself sees them, includes resolved: ``make -pRrq``."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}  # under `make test`
    proc = subprocess.run(
        ["make", "-pRrq", "-f", str(makefile), "tfparity-no-such-target-for-db"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # -q with an unknown goal exits 1 or 2 after printing the database; a parse error (a missing
    # include, a syntax error) prints "***" on stderr and no rules.
    errors = [x for x in proc.stderr.splitlines() if "***" in x and "tfparity-no-such-target-for-db" not in x]
    assert not errors, proc.stderr[-2000:]
    targets, recipes = set(), {}
    current = None
    for line in proc.stdout.splitlines():
        if line.startswith("\t") and current:
            recipes[current] += line + "\n"
            continue
        if line.startswith("#") and current:  # make's notes between a rule and its recipe
            continue
        m = MAKE_TARGET.match(line)
        current = None
        if m and not line.startswith("#"):
            current = m.group(1)
            targets.add(current)
            recipes.setdefault(current, "")
    return targets, recipes


def workflow() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict)
    return data


def make_goals(run: str) -> list[str]:
    """The goals of every ``make ...`` command in a step's ``run`` script (VAR=value excluded)."""
    goals = []
    for line in run.splitlines():
        words = shlex.split(line, comments=True)
        for i, w in enumerate(words):
            if w == "make" and (i == 0 or words[i - 1] in ("&&", "||", ";", "sudo")):
                for arg in words[i + 1 :]:
                    if arg in ("&&", "||", ";"):
                        break
                    if not arg.startswith("-") and "=" not in arg:
                        goals.append(arg)
    return goals


def test_workflow_parses_and_is_scheduled() -> None:
    wf = workflow()
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads the bare key `on` as true
    assert triggers["schedule"][0]["cron"].count(" ") == 4
    assert "workflow_dispatch" in triggers
    assert set(wf["jobs"]) == {"bench-cpu", "bench-gpu", "compare"}


def test_jobs_run_where_the_issue_says() -> None:
    jobs = workflow()["jobs"]
    assert str(jobs["bench-cpu"]["runs-on"]).startswith("ubuntu-")
    assert {"self-hosted", "gpu"} <= set(jobs["bench-gpu"]["runs-on"])
    assert set(jobs["compare"]["needs"]) == {"bench-cpu", "bench-gpu"}
    for job in jobs.values():
        assert job.get("timeout-minutes"), "every job needs a timeout"


def test_every_make_goal_in_the_workflow_exists_in_the_makefile() -> None:
    targets, recipes = make_database(ROOT / "Makefile", ROOT)
    assert {"bench-cpu", "bench-gpu", "base-image", "image-cpu", "bench", "install"} <= targets
    goals = [g for job in workflow()["jobs"].values() for step in job["steps"] for g in make_goals(step.get("run", ""))]
    assert goals, "the workflow runs no make target"
    missing = sorted(set(goals) - targets)
    assert not missing, f"workflow uses make targets the Makefile does not define: {missing}"
    # the CPU and GPU jobs reach the container benchmarks of docker/docker.mk
    assert "bench-cpu" in recipes["nightly-cpu"] and "bench-gpu" in recipes["nightly-gpu"]
    assert "nightly" in targets


def test_make_recipes_call_subcommands_the_cli_has() -> None:
    """docker/docker.mk drives images and checks through the CLI (``$(TFPARITY) docker build|check|check-gpu``),
    not through a module path: every subcommand a recipe names exists."""
    _targets, recipes = make_database(ROOT / "Makefile", ROOT)
    called = {
        (m.group(1), m.group(2))
        for recipe in recipes.values()
        for m in re.finditer(r"\$\(TFPARITY\)\s+(docker|data)\s+([a-z][a-z-]*)", recipe)
    }
    assert {("docker", "build"), ("docker", "check"), ("docker", "check-gpu")} <= called
    assert "check-gpu" in recipes["bench-gpu"] and "docker build" in recipes["image-cpu"]
    for command, action in sorted(called):
        proc = tfparity(command, action, "--help")
        assert proc.returncode == 0, (command, action, proc.stderr[-2000:])
    for path in (
        ROOT / "docker" / "docker.mk",
        ROOT / ".ci" / "nightly.mk",
        ROOT / ".ci" / "setup-docker.sh",
        WORKFLOW,
    ):
        assert "harness.backends" not in path.read_text(), f"{path} still calls the old module path"


def test_compare_job_reports_before_it_gates_and_uploads_the_report_even_on_fail() -> None:
    jobs = workflow()["jobs"]
    uploads = {
        s["with"]["name"]: s["with"]["path"]
        for j in ("bench-cpu", "bench-gpu")
        for s in jobs[j]["steps"]
        if str(s.get("uses", "")).startswith("actions/upload-artifact")
    }
    steps = jobs["compare"]["steps"]
    downloads = {
        s["with"]["name"]: s["with"]["path"]
        for s in steps
        if str(s.get("uses", "")).startswith("actions/download-artifact")
    }
    assert downloads == uploads == {"results-cpu": "nightly/cpu", "results-gpu": "nightly/gpu"}
    runs = [(i, g) for i, s in enumerate(steps) for g in make_goals(s.get("run", ""))]
    report_i = next(i for i, g in runs if g == "nightly-report")
    gate_i = next(i for i, g in runs if g == "nightly-gate")
    upload = next(i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert report_i < upload < gate_i
    assert "cancelled()" in steps[upload]["if"]  # runs after a failing gate too
    assert not steps[gate_i].get("continue-on-error")  # a FAIL verdict or regression fails the job


def test_the_compare_job_never_hides_a_missing_or_failed_gpu_set() -> None:
    jobs = workflow()["jobs"]
    compare = jobs["compare"]
    # it runs whatever the benchmark jobs did (a GPU runner that is down included) and expects a GPU set
    assert compare["if"].replace(" ", "") == "${{!cancelled()}}", compare["if"]
    assert str(compare["env"]["NIGHTLY_EXPECT_GPU"]) == "yes"
    steps = compare["steps"]
    downloads = [s for s in steps if str(s.get("uses", "")).startswith("actions/download-artifact")]
    assert all(s.get("continue-on-error") for s in downloads), "a missing artifact must not stop the report"
    assert all("if" not in s for s in downloads), "the GPU set is downloaded whatever the GPU job's result"
    gate = next(s for s in steps if s.get("id") == "gate")
    assert "cancelled()" in gate["if"]
    archive = [s for s in steps if "nightly-archive" in make_goals(s.get("run", ""))]
    assert len(archive) == 1, "one archive step; the label comes from the night's completeness and the gate"
    assert archive[0]["env"]["NIGHTLY_GATE_OUTCOME"].replace(" ", "") == "${{steps.gate.outcome}}"
    assert "NIGHTLY_ARCHIVE_LABEL" not in archive[0]["run"]
    # the benchmark jobs upload their set (with its exit status) even when a run or the GPU check failed
    for job, name in (("bench-cpu", "results-cpu"), ("bench-gpu", "results-gpu")):
        upload = next(s for s in jobs[job]["steps"] if s.get("with", {}).get("name") == name)
        assert "cancelled()" in upload["if"], job


def test_the_gpu_nightly_covers_every_gpu_path_and_the_probe() -> None:
    _targets, recipes = make_database(ROOT / "Makefile", ROOT)
    assert "bench-gpu-paths" in recipes["nightly-gpu"]
    paths = recipes["bench-gpu-paths"]
    assert paths.index("docker check-gpu") < paths.index("docker/gpu-paths.sh"), "the GPU check runs first"
    script = (ROOT / "docker" / "gpu-paths.sh").read_text()
    # gpu-fp32 (TF32 off), gpu-tf32 (the precision "tf32" of spec/names), mixed fp16, XLA, compiled loop, probe
    for args in ("--precision fp32", "--precision tf32", "--precision mixed", "--xla on", "--preset fast",
                 "--mode probe"):  # fmt: skip
        assert args in script, args
    assert "--device gpu" in script and "--backend docker" in script
    assert "bench-cpu" in recipes["nightly-cpu"] and "probe-cpu" in recipes["nightly-cpu"]
    assert "--mode probe" in recipes["probe-cpu"]
    # make gpu-check shares the list of GPU paths
    assert "gpu-paths.sh" in (ROOT / "docker" / "gpu-check.sh").read_text()


# --- make nightly, for real ---------------------------------------------------------------------

STUB_MAKEFILE = """\
PY := {py}
TFPARITY := {tfparity}
RESULTS_DIR ?= results
# Stand-ins for docker/docker.mk: copy prepared results where a container run would write them.
# GPU_STUB says how the GPU benchmarks go: ok, check-fails (no results, exit 2), run-fails (exit 1).
GPU_STUB ?= ok
bench-cpu:
\tmkdir -p $(RESULTS_DIR) && cp {fixtures}/cpu/*.json $(RESULTS_DIR)/
probe-cpu:
\t@echo "probe-cpu (stand-in)"
bench-gpu-paths:
\t@if [ "$(GPU_STUB)" = check-fails ]; then echo "tfparity: error: GPU check failed (...)" >&2; exit 2; fi
\tmkdir -p $(RESULTS_DIR) && cp {fixtures}/gpu/*.json $(RESULTS_DIR)/
\t@if [ "$(GPU_STUB)" = run-fails ]; then exit 1; fi
include {nightly_mk}
"""


@pytest.fixture()
def nightly_project(tmp_path: Path, factories: ModuleType) -> Path:
    fixtures = tmp_path / "fixtures"
    cpu = [factories.result(b, path=p, seed=s) for b in ("baseline", "batchnorm") for p in (CPU, XLA) for s in (0, 1)]
    gpu = [factories.result("baseline", path=GPU, seed=s) for s in (0, 1)]
    factories.write(cpu, fixtures / "cpu")
    factories.write(gpu, fixtures / "gpu")
    cli = tmp_path / "tfparity"
    cli.write_text(f'#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m harness "$@"\n')
    cli.chmod(cli.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "Makefile").write_text(
        STUB_MAKEFILE.format(py=sys.executable, tfparity=cli, fixtures=fixtures, nightly_mk=ROOT / ".ci" / "nightly.mk")
    )
    return tmp_path


def run_nightly(
    project: Path, *, gpu: bool, stamp: str, make_vars: tuple[str, ...] = (), goal: str = "nightly"
) -> subprocess.CompletedProcess[str]:
    bin_dir = project / ("bin-gpu" if gpu else "bin-nogpu")
    bin_dir.mkdir(exist_ok=True)
    if gpu:  # a driver that answers: the pipeline must add the GPU benchmarks
        smi = bin_dir / "nvidia-smi"
        smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA L4 (UUID: GPU-test)'\n")
        smi.chmod(0o755)
    # PATH without any real nvidia-smi: only this bin dir and the system tools make needs.
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "NIGHTLY_STAMP": stamp}
    for var in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):  # the suite may itself run under `make test`
        env.pop(var, None)
    return subprocess.run(
        ["make", "--no-print-directory", goal, *make_vars],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=500,
    )


def test_make_nightly_runs_the_pipeline_with_and_without_a_gpu(nightly_project: Path) -> None:
    first = run_nightly(nightly_project, gpu=False, stamp="20261120T021700Z")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "nightly: no GPU expected (NIGHTLY_EXPECT_GPU=auto; nvidia-smi lists none): a CPU-only night" in first.stdout
    night = nightly_project / "results" / "nightly" / "20261120T021700Z"
    assert sorted(p.name for p in night.iterdir()) == ["cpu", "report"]
    assert (night / "report" / "report.html").stat().st_size > 10_000
    assert "no passing history entry" in first.stdout  # first night: nothing to gate against
    history = nightly_project / "results" / "history"
    assert [p.name for p in history.iterdir()] == ["20261120T021700Z-nightly"]

    second = run_nightly(nightly_project, gpu=True, stamp="20261121T021700Z")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "a CPU-only night" not in second.stdout and "INCOMPLETE" not in second.stdout
    night = nightly_project / "results" / "nightly" / "20261121T021700Z"
    assert sorted(p.name for p in night.iterdir()) == ["cpu", "gpu", "report"]
    # the regression gate compared tonight's cpu set with the previous passing night's
    assert "--baseline results/history/20261120T021700Z-nightly/cpu" in second.stdout
    md = (night / "report" / "report.md").read_text()
    assert "gpu-fp32" in md and "## History" in md
    assert sorted(p.name for p in history.iterdir()) == ["20261120T021700Z-nightly", "20261121T021700Z-nightly"]
    assert sorted(p.name for p in (history / "20261121T021700Z-nightly").iterdir()) == ["cpu", "gpu"]


def test_make_nightly_fails_on_a_fail_verdict_and_archives_the_night_apart(
    nightly_project: Path, factories: ModuleType
) -> None:
    # Tonight the XLA path loses 10 points of accuracy: compare says FAIL, make nightly fails,
    # the report is still written, and the night is archived as nightly-failed (never a baseline).
    for f in (nightly_project / "fixtures" / "cpu").glob("*cpu-fp32-xla*.json"):
        f.unlink()
    worse = [
        factories.result(b, path=XLA, seed=s, test_acc=0.82 + 0.01 * s)
        for b in ("baseline", "batchnorm")
        for s in (0, 1)
    ]
    factories.write(worse, nightly_project / "fixtures" / "cpu")
    proc = run_nightly(nightly_project, gpu=False, stamp="20261122T021700Z")
    assert proc.returncode != 0
    night = nightly_project / "results" / "nightly" / "20261122T021700Z"
    assert "Verdict: **FAIL**" in (night / "report" / "report.md").read_text()
    history = nightly_project / "results" / "history"
    assert [p.name for p in history.iterdir()] == ["20261122T021700Z-nightly-failed"]


def history_names(project: Path) -> list[str]:
    return sorted(p.name for p in (project / "results" / "history").iterdir())


def test_a_night_whose_gpu_check_failed_is_reported_gated_and_archived_as_incomplete(nightly_project: Path) -> None:
    first = run_nightly(nightly_project, gpu=True, stamp="20261123T021700Z")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    # Tonight the GPU check fails: no GPU results at all. The GPU was expected (nvidia-smi answers).
    proc = run_nightly(nightly_project, gpu=True, stamp="20261124T021700Z", make_vars=("GPU_STUB=check-fails",))
    assert proc.returncode != 0
    night = nightly_project / "results" / "nightly" / "20261124T021700Z"
    assert (night / "gpu" / "bench-exit.txt").read_text().strip() == "2"
    # the report is written over the CPU set and says the night is incomplete
    md = (night / "report" / "report.md").read_text()
    assert md.startswith("# tfparity nightly 20261124T021700Z -- INCOMPLETE: the GPU result set is missing")
    gate = [ln for ln in proc.stdout.splitlines() if ln.startswith("nightly-gate: FAIL:")]
    assert gate == [f"nightly-gate: FAIL: the GPU result set is missing ({night.relative_to(nightly_project)}/gpu "
                    "has no results): the night is incomplete"], proc.stdout[-3000:]  # fmt: skip
    assert history_names(nightly_project) == ["20261123T021700Z-nightly", "20261124T021700Z-nightly-incomplete"]
    # the next night's regression baseline (.ci/nightly.mk's NIGHTLY_BASELINE) is the last complete one
    latest = tfparity("history", str(nightly_project / "results" / "history"), "--latest", "--label", "nightly")
    assert latest.returncode == 0 and Path(latest.stdout.strip()).name == "20261123T021700Z-nightly", latest.stdout


def test_a_night_with_a_failed_gpu_run_is_incomplete_whatever_its_verdict(nightly_project: Path) -> None:
    proc = run_nightly(nightly_project, gpu=True, stamp="20261126T021700Z", make_vars=("GPU_STUB=run-fails",))
    assert proc.returncode != 0
    gate = [ln for ln in proc.stdout.splitlines() if ln.startswith("nightly-gate: FAIL: the GPU benchmarks")]
    assert len(gate) == 1 and gate[0].endswith("(a failed check or run): the GPU result set is incomplete"), gate
    night = nightly_project / "results" / "nightly" / "20261126T021700Z"
    assert "gpu-fp32" in (night / "report" / "report.md").read_text()  # its results are still reported
    assert history_names(nightly_project) == ["20261126T021700Z-nightly-incomplete"]


def test_the_compare_job_with_no_gpu_artifact_reports_the_gpu_set_missing(nightly_project: Path) -> None:
    # What the workflow's compare job does when the GPU runner never ran: only cpu/ was downloaded,
    # and the job expects a GPU set (NIGHTLY_EXPECT_GPU=yes), whatever this machine has.
    stamp = "20261127T021700Z"
    assert run_nightly(nightly_project, gpu=False, stamp=stamp, goal="nightly-cpu").returncode == 0
    expect = ("NIGHTLY_EXPECT_GPU=yes",)
    report = run_nightly(nightly_project, gpu=False, stamp=stamp, make_vars=expect, goal="nightly-report")
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
    gate = run_nightly(nightly_project, gpu=False, stamp=stamp, make_vars=expect, goal="nightly-gate")
    assert gate.returncode != 0
    assert "nightly-gate: FAIL: the GPU result set is missing" in gate.stdout
    outcome = ("NIGHTLY_GATE_OUTCOME=failure",)
    archive = run_nightly(nightly_project, gpu=False, stamp=stamp, make_vars=expect + outcome, goal="nightly-archive")
    assert archive.returncode == 0, archive.stdout[-3000:] + archive.stderr[-3000:]
    assert history_names(nightly_project) == [f"{stamp}-nightly-incomplete"]


def test_a_bad_gpu_expectation_is_one_line(nightly_project: Path) -> None:
    proc = run_nightly(nightly_project, gpu=False, stamp="20261128T021700Z", make_vars=("NIGHTLY_EXPECT_GPU=maybe",))
    assert proc.returncode != 0
    assert "NIGHTLY_EXPECT_GPU must be yes, no or auto, got 'maybe'" in proc.stderr
    assert not (nightly_project / "results").exists()
