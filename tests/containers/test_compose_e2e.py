"""`docker compose up` as a platform engineer runs it: every image built from the repository, the
stack started on its published ports, 10,000 reference lines sent from the host, `verify` run in
the cli container: exact lines and money in S3, DynamoDB and the warehouse, also after a consumer
container is SIGKILLed mid-stream and started again. `down -v` at the end leaves nothing running."""

from __future__ import annotations

import csv
import gzip
import os
import subprocess
import sys
import time
import uuid
from decimal import Decimal

import httpx
import pytest

from tests.conftest import ROOT, free_port, reference_file
from tests.containers.engine import compose_command
from tests.e2e.test_reference_pipeline import verify_rows

LINES = 10_000
API_KEY = "ss_e2e_" + uuid.uuid4().hex
SERVICES = ("ingest-api", "invoice-api", "analytics-api", "s3-archiver", "dynamo-writer", "warehouse-loader",
            "bulk-loader")


class Compose:
    def __init__(self, images: dict[str, str]) -> None:
        self.project = f"shopstream-e2e-{uuid.uuid4().hex[:8]}"
        self.ports = {name: free_port() for name in
                      ("INGEST_PORT", "INVOICE_PORT", "ANALYTICS_PORT", "EMULATOR_PORT", "WAREHOUSE_PORT")}
        self.env = dict(os.environ, **images, **{k: str(v) for k, v in self.ports.items()},
                        COMPOSE_PROJECT_NAME=self.project, SHOPSTREAM_API_KEY=API_KEY)

    def __call__(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([*compose_command(), *args], cwd=ROOT, env=self.env, capture_output=True,
                                text=True, timeout=timeout)
        if check:
            assert result.returncode == 0, f"compose {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result

    def url(self, port: str) -> str:
        return f"http://127.0.0.1:{self.ports[port]}"

    def health(self) -> dict[str, str]:
        """Each running service's health ("healthy", "starting", "unhealthy"), in one `docker ps`."""
        listing = subprocess.run(
            ["docker", "ps", "--filter", f"label=com.docker.compose.project={self.project}", "--format",
             '{{.Label "com.docker.compose.service"}}\t{{.Status}}'], capture_output=True, text=True).stdout
        health = {}
        for line in listing.splitlines():
            service, status = line.split("\t", 1)
            health[service] = next((h for h in ("unhealthy", "healthy", "starting") if f"({h}" in status), status)
        return health

    def wait_healthy(self, services=SERVICES, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while unhealthy := {s: h for s in services if (h := self.health().get(s, "missing")) != "healthy"}:
            if time.monotonic() > deadline:
                logs = self("logs", "--tail", "40", check=False).stdout
                pytest.fail(f"not healthy after {timeout} s: {unhealthy}\n{logs[-6000:]}")
            time.sleep(2)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The first 10,000 reference lines in two CSV files, and their count and money (computed here)."""
    folder = tmp_path_factory.mktemp("compose-sample")
    with gzip.open(reference_file(), "rt", encoding="utf-8", newline="") as src:
        header, lines = src.readline(), [src.readline() for _ in range(LINES)]
    halves = [folder / "first-half.csv", folder / "second-half.csv"]
    for path, part in zip(halves, (lines[: LINES // 2], lines[LINES // 2:])):
        path.write_text(header + "".join(part), encoding="utf-8")
    rows = [row for path in halves for row in csv.DictReader(path.open(encoding="utf-8", newline=""))]
    money = sum(Decimal(row["Quantity"]) * Decimal(row["UnitPrice"]) for row in rows)
    return halves, len(rows), money


@pytest.fixture(scope="module")
def stack(images):
    compose = Compose(images)
    try:
        started = time.monotonic()
        compose("up", "-d", timeout=900)
        compose.wait_healthy()
        compose.started_in = time.monotonic() - started
        yield compose
    finally:
        compose("down", "-v", "--remove-orphans", "--timeout", "30", check=False)
        left = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={compose.project}"],
                              capture_output=True, text=True).stdout.split()
        assert not left, f"containers left after down -v: {left}"


def send(stack: Compose, path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "shopstream", "send", str(path), "--url", stack.url("INGEST_PORT")],
                            env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_the_stack_takes_10000_lines_and_every_sink_is_exact_after_a_consumer_is_killed(stack, sample):
    halves, lines, money = sample
    first = send(stack, halves[0])
    output = first.communicate(timeout=600)[0]
    assert first.returncode == 0 and f"{lines // 2:,} accepted" in output, output
    # mid-stream: the second half is on its way and the archiver is busy when it is SIGKILLed
    second = send(stack, halves[1])
    time.sleep(1)
    stack("kill", "-s", "SIGKILL", "s3-archiver")
    output = second.communicate(timeout=600)[0]
    assert second.returncode == 0 and f"{lines - lines // 2:,} accepted" in output, output
    stack("start", "s3-archiver")
    stack.wait_healthy(["s3-archiver"])

    result = stack("run", "--rm", "-T", "cli", "verify", "--wait", "300", check=False, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = verify_rows(result.stdout)
    assert set(rows) == {"accepted", "raw lake", "operational store", "warehouse"}
    assert set(rows.values()) == {(f"{lines:,}", f"{money:,.3f}")}


def test_an_invoice_through_the_published_invoice_port(stack, sample):
    response = httpx.get(stack.url("INVOICE_PORT") + "/invoices/536365", headers={"X-API-Key": API_KEY})
    assert response.status_code == 200, response.text
    invoice = response.json()
    assert (invoice["line_count"], Decimal(invoice["total"]), len(invoice["lines"])) == (7, Decimal("139.12"), 7)


def test_the_apis_answer_on_their_published_ports_and_reject_a_missing_key(stack):
    for port in ("INGEST_PORT", "INVOICE_PORT", "ANALYTICS_PORT"):
        assert httpx.get(stack.url(port) + "/health").status_code == 200
    assert httpx.get(stack.url("INVOICE_PORT") + "/invoices/536365").status_code == 401


def test_every_service_drains_and_exits_0_on_sigterm(stack):
    stack("stop", "--timeout", "30", *SERVICES)
    codes = {}
    for service in SERVICES:
        container = stack("ps", "-q", service).stdout.strip()
        codes[service] = subprocess.run(["docker", "inspect", "-f", "{{.State.ExitCode}}", container],
                                        capture_output=True, text=True).stdout.strip()
    assert codes == {service: "0" for service in SERVICES}
