"""Shared test helpers: the reference data, free ports, a running local stack."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
_CANDIDATES = [
    os.environ.get("SHOPSTREAM_REFERENCE_FILE", ""),
    str(ROOT.parent / "shared" / "data" / "online-retail.csv.gz"),
    "/work/shared/data/online-retail.csv.gz",
]
REFERENCE_LINES = 541_909
REFERENCE_MILLI = 9_747_747_934


def reference_file() -> Path:
    """The reference data set, read in place (never copied into the project)."""
    for candidate in _CANDIDATES:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.fail(
        "the reference data set is missing: set SHOPSTREAM_REFERENCE_FILE to online-retail.csv.gz "
        f"(looked in {[c for c in _CANDIDATES if c]})"
    )


def wait_for(check, timeout: float = 20.0, interval: float = 0.1):
    """Poll `check` until it returns something truthy or the time is up; returns its last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """`shopstream up` as a user runs it, in its own data directory and ports."""

    CONSUMERS = ("s3-archiver", "dynamo-writer", "warehouse-loader")

    def __init__(self, data_dir: Path, log_path: Path, **settings: str) -> None:
        self.data_dir = data_dir
        self.ingest_port, self.invoice_port, self.analytics_port = free_port(), free_port(), free_port()
        self.ops_ports = {name: free_port() for name in self.CONSUMERS}  # consumers' /health, /metrics
        self.env = dict(
            os.environ,
            SHOPSTREAM_DATA_DIR=str(data_dir),
            SHOPSTREAM_INGEST_PORT=str(self.ingest_port),
            SHOPSTREAM_INVOICE_PORT=str(self.invoice_port),
            SHOPSTREAM_ANALYTICS_PORT=str(self.analytics_port),
            PYTHONUNBUFFERED="1",
            **{f"SHOPSTREAM_{n.replace('-', '_').upper()}_PORT": str(p) for n, p in self.ops_ports.items()},
            **settings,
        )
        self.env.pop("SHOPSTREAM_API_KEY", None)
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.api_key = ""

    @property
    def auth(self) -> dict[str, str]:
        """Headers with the development key `shopstream up` created."""
        return {"Authorization": f"Bearer {self.api_key}"}

    def ops_url(self, consumer: str) -> str:
        return f"http://127.0.0.1:{self.ops_ports[consumer]}"

    def service_urls(self) -> dict[str, str]:
        """Every service's base URL: each HTTP API in the registry, and each consumer's ops server."""
        from shopstream.config import Settings
        from shopstream.entrypoints.services import HTTP_SERVICES

        settings = Settings(ingest_port=self.ingest_port, invoice_port=self.invoice_port,
                            analytics_port=self.analytics_port)
        apis = {name: f"http://127.0.0.1:{service.port(settings)}" for name, service in HTTP_SERVICES.items()}
        return apis | {name: self.ops_url(name) for name in self.CONSUMERS}

    def service_process(self, name: str):
        """The running process of one service (`python -m shopstream service NAME`)."""
        import psutil

        for child in psutil.Process(self.process.pid).children():
            try:
                if child.cmdline()[-1:] == [name] and child.status() != psutil.STATUS_ZOMBIE:
                    return child
            except psutil.NoSuchProcess:
                continue
        return None

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.ingest_port}"

    @property
    def invoice_url(self) -> str:
        return f"http://127.0.0.1:{self.invoice_port}"

    @property
    def analytics_url(self) -> str:
        return f"http://127.0.0.1:{self.analytics_port}"

    def start(self, timeout: float = 60) -> Stack:
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shopstream", "up"], env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        for url in (self.ingest_url, self.invoice_url, self.analytics_url, *map(self.ops_url, self.CONSUMERS)):
            while True:
                try:
                    if httpx.get(url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the stack did not start; log:\n{self.log_path.read_text()[-3000:]}")
                time.sleep(0.2)
        self.api_key = (self.data_dir / "dev-api-key").read_text().strip()
        self.env["SHOPSTREAM_API_KEY"] = self.api_key  # for `send` and other clients
        return self

    cli_command = (sys.executable, "-m", "shopstream")

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.cli_command, *args],
            env=self.env | {"COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(2)  # Ctrl-C
        try:
            code = self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._log.close()
        return code


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("stack")
    running = Stack(base / "data", base / "up.log").start()
    yield running
    assert running.stop() == 0, running.log_path.read_text()[-3000:]
