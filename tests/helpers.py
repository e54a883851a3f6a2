"""Helpers shared by tests that drive real processes: the CLI, the docker CLI, skip-or-fail rules."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def tfparity(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess (as a user would), capturing output."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd or ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def run_python(
    code: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in a fresh process with the repository importable."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-c", code], env=full_env, cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def docker(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The docker CLI, captured (for assertions about containers, projects and images)."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})  # fmt: skip


def unavailable(reason: str) -> None:
    """Skip locally, fail under CI=true (where .ci/setup-docker.sh must have provided it)."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason} (.ci/setup-docker.sh should have provided it)")
    pytest.skip(reason)


def docker_backend_script(spec_dict: dict[str, Any], data_dir: Path, out_dir: Path, image: str | None = None) -> str:
    """A child-process script that runs one spec through the docker backend and reports how it ended
    (INTERRUPTED <signum> with the interrupt's exit code, or FINISHED), for signal tests."""
    image_arg = f", image={image!r}" if image else ""
    return textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from harness.errors import RunInterrupted
        from harness.orchestrate.backends import get_backend
        from harness.spec.run_spec import RunSpec
        spec = RunSpec.from_dict({spec_dict!r})
        backend = get_backend("docker", device="cpu", data_dir={str(data_dir)!r}{image_arg})
        backend.prepare([spec])
        try:
            backend.run(spec, Path({str(out_dir)!r}))
        except RunInterrupted as exc:
            print("INTERRUPTED", exc.signum, flush=True)
            sys.exit(exc.exit_code)
        print("FINISHED", flush=True)
    """)


EXAMPLE_MARKER = "<!-- your-own-benchmark:commands -->"


def readme_example_commands() -> list[list[str]]:
    """The commands of README's "Your own benchmark" (the first ```bash block after its marker)."""
    import shlex

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    after = text.split(EXAMPLE_MARKER, 1)[1]
    block = after.split("```bash\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line) for line in block.splitlines() if line.strip() and not line.startswith("#")]


def run_readme_example(workdir: Path, *run_args: str, timeout: float = 1800) -> list[subprocess.CompletedProcess[str]]:
    """Run README's example commands exactly as written, from a copy of the repository's example directory
    in ``workdir`` (``python`` is this interpreter, ``tfparity`` is ``python -m harness``); ``run_args``
    are appended to the ``tfparity run`` commands (e.g. ``--backend docker``). Stops at the first failure."""
    import shutil

    shutil.copytree(ROOT / "benchmarks" / "examples", workdir / "benchmarks" / "examples",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = []
    for command in readme_example_commands():
        program, args = command[0], command[1:]
        argv = [sys.executable, *args] if program == "python" else [sys.executable, "-m", "harness", *args]
        if program == "tfparity" and args[0] == "run":
            argv += list(run_args)
        proc = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
        done.append(proc)
        if proc.returncode != 0:
            break
    return done
