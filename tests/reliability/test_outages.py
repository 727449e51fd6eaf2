"""A sink down for a while, a full disk under the raw lake, and SIGTERM: nothing lost, nothing twice."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import orjson
import pytest

from shopstream.generate import write_csv
from tests.conftest import Stack, wait_for

pytestmark = pytest.mark.e2e



def metric(stack: Stack, url: str, name: str, **labels: str) -> float | None:
    text = httpx.get(url + "/metrics", headers=stack.auth, timeout=10).text
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(name + ("{" if labels else " ")) and wanted in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def generated(stack: Stack, tmp: Path, rows: int, seed: int) -> Path:
    """What `shopstream generate` writes (in-process: a CLI start costs a second)."""
    path = tmp / f"gen-{seed}.csv.gz"
    assert write_csv(path, rows, seed) == rows
    return path


def lag(stack: Stack, group: str) -> float:
    return metric(stack, stack.ops_url(group), "shopstream_consumer_lag_events", group=group)


def send(stack: Stack, path: Path) -> str:
    result = stack.cli("send", str(path), "--url", stack.ingest_url)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def groups(stack: Stack) -> dict[str, tuple[int, int]]:
    """Consumer group -> (checkpoint, lag), from `shopstream status`."""
    out = stack.cli("status").stdout
    return {g: (int(c), int(lag.replace(",", ""))) for g, c, lag in
            re.findall(r"│ (s3-archiver|dynamo-writer|warehouse-loader)\s*│\s*(\d+)\s*│\s*([\d,]+)", out)}


def verified(stack: Stack) -> str:
    result = stack.cli("verify", "--wait", "120")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_locked_store_backs_off_lag_grows_nothing_lost_then_catches_up(tmp_path):
    stack = Stack(tmp_path / "data", tmp_path / "up.log", SHOPSTREAM_SQLITE_BUSY_TIMEOUT_SECONDS="0.5").start()
    writer = stack.ops_url("dynamo-writer")
    try:
        send(stack, generated(stack, tmp_path, 2000, 1))
        verified(stack)
        lock = sqlite3.connect(stack.data_dir / "store.sqlite3", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # the store is "down": no writer gets in
        try:
            send(stack, generated(stack, tmp_path, 2000, 2))
            assert wait_for(lambda: (metric(stack, writer, "shopstream_sink_write_failures_total",
                                            group="dynamo-writer") or 0) >= 2, 60)
            lag_before = metric(stack, writer, "shopstream_consumer_lag_events", group="dynamo-writer")
            send(stack, generated(stack, tmp_path, 1000, 3))
            assert wait_for(lambda: metric(stack, writer, "shopstream_consumer_lag_events",
                                           group="dynamo-writer") > lag_before, 60)
            assert lag_before > 0
            ready = httpx.get(writer + "/ready", headers=stack.auth)
            assert ready.status_code == 503
            assert ready.json()["checks"]["sink"] == "OperationalError: database is locked"
            # the other sinks are not held back
            assert wait_for(lambda: lag(stack, "s3-archiver") == 0 == lag(stack, "warehouse-loader"), 60)
            status = groups(stack)
            assert status["dynamo-writer"][1] == 3000  # lines of the last two files
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        out = verified(stack)
        assert "operational store │ 5,000" in re.sub(r"\s+│", " │", out)
        assert httpx.get(writer + "/ready", headers=stack.auth).status_code == 200
        log = stack.log_path.read_text()
        assert "dynamo-writer: the sink is back; catching up" in log
        assert re.search(r"sink write failed, checkpoint kept .* retrying in [\d.]+s: OperationalError", log)
    finally:
        stack.stop()


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        message = f"cannot mount a tmpfs for the disk-full test: {result.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message + " (run as root)")


def test_a_full_lake_disk_is_a_clear_error_and_moves_no_checkpoint(tmp_path):
    lake = tmp_path / "data" / "lake"
    _mount_tmpfs(lake, "300k")
    try:
        stack = Stack(tmp_path / "data", tmp_path / "up.log").start()
        try:
            send(stack, generated(stack, tmp_path, 500, 1))
            verified(stack)
            send(stack, generated(stack, tmp_path, 20_000, 2))  # ~600 kB of Parquet: more than is left
            archiver = stack.ops_url("s3-archiver")
            assert wait_for(lambda: "full" in httpx.get(archiver + "/ready", headers=stack.auth).text, 60)
            assert wait_for(lambda: lag(stack, "dynamo-writer") == 0 == lag(stack, "warehouse-loader"), 60)
            stuck = groups(stack)["s3-archiver"]
            assert stuck[1] > 0  # lines the full disk holds back
            time.sleep(2)  # a few more failed attempts
            assert groups(stack)["s3-archiver"] == stuck  # no checkpoint advance while the disk is full
            assert not list(lake.rglob("*.tmp-*")), "a partial object was left behind"
            log = stack.log_path.read_text()
            assert "the sink's disk is full" in log
            # free space: the archiver catches up by itself
            subprocess.run(["mount", "-o", "remount,size=64m", str(lake)], check=True)
            out = verified(stack)
            assert "raw lake │ 20,500" in re.sub(r"\s+│", " │", out)
        finally:
            stack.stop()
    finally:
        subprocess.run(["umount", "-l", str(lake)], capture_output=True)


LINE = {"InvoiceNo": 536365, "StockCode": "85123A", "Description": "X", "Quantity": 6,
        "InvoiceDate": "12/1/2010 8:26", "UnitPrice": 2.55, "CustomerID": 17850.0, "Country": "United Kingdom"}


def test_sigterm_drains_in_flight_work_and_every_service_exits_0(tmp_path):
    stack = Stack(tmp_path / "data", tmp_path / "up.log").start()
    try:
        # A request whose body is still arriving when ingest-api gets SIGTERM: it completes.
        lines = [LINE | {"event_id": f"drain-{i}", "InvoiceNo": 540000 + i % 500} for i in range(20_000)]
        body = orjson.dumps(lines)
        ingest = stack.service_process("ingest-api")

        def slow_body():
            yield body[: len(body) // 2]
            os.kill(ingest.pid, signal.SIGTERM)
            time.sleep(1.0)
            yield body[len(body) // 2:]

        response = httpx.post(stack.ingest_url + "/transactions", content=slow_body(), timeout=60,
                              headers=stack.auth | {"Content-Type": "application/json"})
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] == 20_000
        ingest.wait(30)

        # Consumers in the middle of their batches, and invoice-api: SIGTERM, each exits 0.
        # (Paused while the lines arrive, so each has a backlog when it resumes.)
        assert wait_for(lambda: stack.service_process("ingest-api"), 60)
        consumers = {name: stack.service_process(name) for name in stack.CONSUMERS}
        for process in consumers.values():
            process.suspend()
        send(stack, generated(stack, tmp_path, 200_000, 5))  # enough that the fastest (the lake) is mid-stream
        for process in consumers.values():
            process.resume()
        time.sleep(0.15)  # each has read its first batch of the backlog, none has finished it
        stopped = consumers | {"invoice-api": stack.service_process("invoice-api")}
        for process in stopped.values():
            process.send_signal(signal.SIGTERM)
        for process in stopped.values():
            process.wait(30)
        assert "all sinks match" in verified(stack)
        log = stack.log_path.read_text()
        for name in ("ingest-api", *stopped):  # the supervisor saw each exit, with code 0
            assert wait_for(lambda: re.search(rf"{name}\s+\| exited with code 0; restarting",
                                              stack.log_path.read_text()), 10), name
        for name in stack.CONSUMERS:  # mid-batch when told: it finished that batch, then stopped
            own = [line for line in log.splitlines() if line.startswith(name + " ")]
            told = next(i for i, line in enumerate(own) if "received SIGTERM: finishing the current batch" in line)
            assert f"{name}: batch " in own[told + 1] and f"{name}: stopped" in own[told + 2], own[told:told + 3]
    finally:
        code = stack.stop()
    log = " ".join(stack.log_path.read_text().split())
    assert code == 0
    assert ("stopped (ingest-api=0, invoice-api=0, analytics-api=0, s3-archiver=0, dynamo-writer=0, "
            "warehouse-loader=0, bulk-loader=0)"
            in log.replace(", ", ",").replace(",", ", ")), log[-2000:]
