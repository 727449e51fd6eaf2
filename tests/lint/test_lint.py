"""The container and CI files pass their linters (installed from PyPI wheels by the test extra)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

BIN = Path(sys.executable).parent


def run(tool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / tool), *args], cwd=ROOT, capture_output=True, text=True)


def test_every_dockerfile_passes_hadolint():
    dockerfiles = [str(p.relative_to(ROOT)) for p in [ROOT / "Dockerfile", *sorted(ROOT.glob("docker/*/Dockerfile"))]]
    assert len(dockerfiles) == 3
    result = run("hadolint", "--failure-threshold", "warning", *dockerfiles)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_dockerfile_takes_the_python_image_as_an_argument():
    for path in (ROOT / "Dockerfile", ROOT / "docker" / "emulator" / "Dockerfile"):
        lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
        assert lines[0] == "ARG PYTHON_IMAGE=python:3.12-slim", path
        assert lines[1].startswith("FROM ${PYTHON_IMAGE}"), path


def test_the_workflows_pass_actionlint():
    workflows = sorted(str(p.relative_to(ROOT)) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows == [".github/workflows/ci.yml", ".github/workflows/deploy.yml"]
    result = run("actionlint", *workflows)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_shell_scripts_are_valid_bash():
    for script in ("provision-docker.sh", "offline-images.sh", "containers-build.sh", "test"):
        result = subprocess.run(["bash", "-n", str(ROOT / "scripts" / script)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
