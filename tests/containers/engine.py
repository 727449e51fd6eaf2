"""The Docker engine and the images for the container tests, built once.

scripts/test starts scripts/containers-build.sh in the background at its start; here the
tests wait for its marker (.ci-cache/containers.done or .failed). Run without scripts/test
(pytest alone), the build runs here, in the foreground. A machine where Docker cannot be
provisioned fails these tests: they never skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from tests.conftest import ROOT

CACHE = ROOT / ".ci-cache"
BUILD_TIMEOUT_SECONDS = 1800


def _log_tail() -> str:
    log = CACHE / "containers.log"
    return log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"


def images_ready() -> dict[str, str]:
    """Waits for (or runs) the image build; returns the variables compose needs (e.g. PYTHON_IMAGE)."""
    done, failed = CACHE / "containers.done", CACHE / "containers.failed"
    if not os.environ.get("SHOPSTREAM_CONTAINERS_BUILD_STARTED"):  # plain pytest: build now (seconds when warm)
        subprocess.run([str(ROOT / "scripts" / "containers-build.sh")], check=False)
    deadline = time.monotonic() + BUILD_TIMEOUT_SECONDS
    while not (done.exists() or failed.exists()):
        if time.monotonic() > deadline:
            pytest.fail(f"the image build did not finish in {BUILD_TIMEOUT_SECONDS} s:\n{_log_tail()}")
        time.sleep(2)
    if failed.exists():
        pytest.fail(f"Docker could not be provisioned or the images did not build:\n{_log_tail()}")
    variables = {}
    for line in (CACHE / "containers.env").read_text().splitlines():
        if "=" in line:
            name, value = line.split("=", 1)
            variables[name.strip()] = value.strip()
    os.environ.update(variables)  # testcontainers and compose both see the same base images
    return variables


def compose_command() -> list[str]:
    """Compose v2 (`docker compose`) where it is, else docker-compose 1.29."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor `docker-compose` is installed")


def configure_testcontainers() -> None:
    """testcontainers on this engine: no ryuk (its image may not be pullable), containers over loopback."""
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
    os.environ.setdefault("TC_HOST", "127.0.0.1")
