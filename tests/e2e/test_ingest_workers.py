"""ingest-api as several worker processes on one port (SHOPSTREAM_INGEST_WORKERS)."""

from __future__ import annotations

import time

import httpx
import psutil
import pytest

from tests.bulk_files import reference_rows, totals, write_csv
from tests.conftest import Stack, reference_file
from tests.e2e.test_operability import scrape

pytestmark = pytest.mark.e2e


def test_two_workers_take_a_file_exactly_once_and_report_one_sum_of_metrics(tmp_path):
    rows = list(reference_rows(reference_file(), 6_000))
    lines, money = totals(iter(rows))
    path = tmp_path / "first-6000.csv"
    write_csv(path, rows)
    stack = Stack(tmp_path / "data", tmp_path / "up.log", SHOPSTREAM_INGEST_WORKERS="2").start()
    try:
        workers = [p for p in stack.service_process("ingest-api").children(recursive=True)
                   if "spawn_main" in " ".join(p.cmdline())]
        assert len(workers) == 2
        sent = stack.cli("send", str(path), "--url", stack.ingest_url, "--batch-size", "500")  # 12 requests, spread over both
        assert sent.returncode == 0, sent.stdout + sent.stderr
        verified = stack.cli("verify", "--wait", "120")
        assert verified.returncode == 0, verified.stdout
        assert f"{lines:,}" in verified.stdout and f"{money:,}" in verified.stdout
        metrics = scrape(stack, stack.ingest_url)  # whichever worker answers: the sum of both
        assert metrics['shopstream_ingest_lines_total{outcome="accepted"}'] == lines
        assert metrics['shopstream_http_requests_total{method="POST",route="/transactions",status="202"}'] == 12
        assert metrics['shopstream_service_info{service="ingest-api"}'] == 1
        again = stack.cli("send", str(path), "--url", stack.ingest_url, "--batch-size", "500")
        assert f"0 accepted, {lines:,} already there" in again.stdout, again.stdout
        assert httpx.get(stack.ingest_url + "/health").status_code == 200
    finally:
        code = stack.stop()
    assert code == 0, stack.log_path.read_text()[-3000:]
    time.sleep(0.5)
    assert not [p for p in workers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
