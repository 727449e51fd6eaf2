"""The bulk path beside the running services: the warehouse-loader holding DuckDB while a
bulk load writes it, and two bulk-loader services sharing one inbox."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from shopstream.adapters.local.inbox import CLAIMED, LocalInbox
from shopstream.adapters.local.log import LocalLog
from shopstream.bootstrap import Container
from shopstream.bulk.inbox import scan_once
from shopstream.bulk.load import LoadInterrupted, load_file
from shopstream.config import Settings
from shopstream.domain.line import Totals
from shopstream.generate import write_csv
from shopstream.verify import measure
from tests.contract.conftest import FIXTURE_LINES, FIXTURE_MILLI, make_table

pytestmark = pytest.mark.e2e


def service(name: str, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "shopstream", "service", name], env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(60)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def file_totals(c: Container) -> Totals:
    return c.stream.accepted()


@pytest.mark.parametrize("loader_running", [True, False])
def test_bulk_load_writes_the_warehouse_with_or_without_the_loader_running(tmp_path, loader_running):
    data = tmp_path / "data"
    env = dict(os.environ, SHOPSTREAM_DATA_DIR=str(data), SHOPSTREAM_CONSUMER_BATCH_SIZE="200",
               SHOPSTREAM_SNAPSHOT_INTERVAL_SECONDS="0.3")
    subprocess.run([sys.executable, "-m", "shopstream", "init"], env=env, check=True, capture_output=True)
    path = tmp_path / "day.csv"
    write_csv(path, 20_000, seed=3)
    loader = service("warehouse-loader", env, tmp_path / "loader.log") if loader_running else None
    # Meanwhile the shop keeps sending: the stream grows while the bulk load runs.
    log = LocalLog(data / "stream.sqlite3")

    def stream_in():
        for i in range(30):
            log.append(make_table(prefix=f"live{i}"))
            time.sleep(0.03)

    sender = threading.Thread(target=stream_in)
    sender.start()
    c = Container(Settings(data_dir=data, snapshot_interval_seconds=3600))
    try:
        summary = load_file(path, c, chunk_rows=2_000)
        sender.join()
        assert summary.loaded == 20_000
        streamed = Totals(30 * FIXTURE_LINES, 30 * FIXTURE_MILLI)
        accepted = c.stream.accepted()
        assert accepted.lines == 20_000 + streamed.lines
        if loader_running:
            wait_for(lambda: c.stream.status(["warehouse-loader"])[0].lag == 0, 120, "the loader to catch up")
            wait_for(lambda: c.warehouse_reader.totals() == accepted, 60, "the snapshot to hold everything")
            assert loader.poll() is None, "the warehouse-loader died"
            assert stop(loader) == 0
            assert b"sink write failed" not in (tmp_path / "loader.log").read_bytes()
        else:
            # the bulk load's own lines are in; the streamed ones wait for the loader
            assert c.warehouse_reader.totals() == Totals(accepted.lines - streamed.lines,
                                                         accepted.amount_milli - streamed.amount_milli)
    finally:
        if loader and loader.poll() is None:
            loader.kill()
        log.close()
        c.close()


def test_two_bulk_loaders_share_an_inbox_and_never_load_a_file_twice(tmp_path):
    data = tmp_path / "data"
    inbox = data / "inbox"
    inbox.mkdir(parents=True)
    expected_lines = 0
    for i in range(6):
        expected_lines += write_csv(inbox / f"day-{i}.csv.gz", 2_500, seed=100 + i)
    (inbox / "notes.txt").write_text("this is not a transaction file\n")
    (inbox / "arriving.csv.part").write_text("still being copied")
    past = time.time() - 60
    for path in inbox.iterdir():
        os.utime(path, (past, past))
    env = dict(os.environ, SHOPSTREAM_DATA_DIR=str(data), SHOPSTREAM_BULK_SCHEDULE="* * * * * *",
               SHOPSTREAM_BULK_SETTLE_SECONDS="0.5")
    loaders = [service("bulk-loader", env, tmp_path / f"bulk-{i}.log") for i in range(2)]
    try:
        processed, failed = inbox / "processed", inbox / "failed"
        wait_for(lambda: len(list(processed.glob("*.report.json"))) == 6
                 and len(list(failed.glob("*.report.json"))) == 1, 180, "every file to be handled")
    finally:
        codes = [stop(p) for p in loaders]
    assert codes == [0, 0]
    reports = [orjson.loads(p.read_bytes()) for p in sorted(processed.glob("*.report.json"))]
    assert sorted(r["file"] for r in reports) == [f"day-{i}.csv.gz" for i in range(6)]
    assert all(r["rows"] == r["loaded"] == 2_500 and r["already_present"] == 0 for r in reports)
    assert sorted(p.name for p in processed.iterdir() if not p.name.endswith(".json")) == [
        f"day-{i}.csv.gz" for i in range(6)]
    bad = orjson.loads((failed / "notes.txt.report.json").read_bytes())
    assert bad["status"] == "failed" and "lacks" in bad["error"]
    assert (failed / "notes.txt").exists()
    assert sorted(p.name for p in inbox.iterdir()) == [".claimed", "arriving.csv.part", "failed", "processed"]
    assert list((inbox / CLAIMED).iterdir()) == []
    c = Container(Settings(data_dir=data))
    report = measure(c)
    c.close()
    assert report.accepted.lines == expected_lines == 15_000
    assert all(t == report.accepted for t in report.sinks.values()), report


def test_a_dead_loaders_claim_is_finished_by_the_next_one(tmp_path):
    data = tmp_path / "data"
    inbox = LocalInbox(data / "inbox", settle_seconds=0)
    write_csv(tmp_path / "day.csv", 1_000, seed=9)
    # a loader (long gone) had claimed the file and loaded part of it when it stopped
    orphan = data / "inbox" / CLAIMED / "999999999.12345--day.csv"
    os.rename(tmp_path / "day.csv", orphan)
    c = Container(Settings(data_dir=data, snapshot_interval_seconds=3600))
    halt = threading.Event()
    with pytest.raises(LoadInterrupted):
        load_file(orphan, c, chunk_rows=300, on_progress=lambda rows: halt.set(), stop=halt)
    partial = c.stream.accepted().lines
    assert 0 < partial < 1_000
    outcomes = scan_once(inbox, c)
    assert [(o.name, o.status) for o in outcomes] == [("day.csv", "processed")]
    report = orjson.loads(outcomes[0].report.read_bytes())
    assert (report["rows"], report["loaded"], report["already_present"]) == (1_000, 1_000 - partial, partial)
    assert not orphan.exists() and (data / "inbox" / "processed" / "day.csv").exists()
    assert c.stream.accepted().lines == 1_000
    c.close()


def test_a_load_that_fails_in_a_sink_leaves_the_file_for_the_next_tick(tmp_path, monkeypatch):
    import sqlite3

    data = tmp_path / "data"
    inbox = LocalInbox(data / "inbox", settle_seconds=0)
    write_csv(data / "inbox" / "day.csv", 1_000, seed=11)
    c = Container(Settings(data_dir=data, snapshot_interval_seconds=3600))

    def outage(docs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(c.store, "write_documents", outage)  # the store is down for this tick
    assert scan_once(inbox, c) == []
    assert (data / "inbox" / "day.csv").exists() and list((data / "inbox" / "failed").iterdir()) == []
    monkeypatch.undo()
    outcomes = scan_once(inbox, c)
    assert [(o.name, o.status) for o in outcomes] == [("day.csv", "processed")]
    report = orjson.loads(outcomes[0].report.read_bytes())
    assert (report["rows"], report["loaded"]) == (1_000, 1_000)
    result = measure(c)
    assert result.accepted.lines == 1_000 and result.ok, result
    c.close()


def test_a_file_that_keeps_failing_in_a_sink_goes_to_failed_after_the_last_attempt(tmp_path, monkeypatch):
    import sqlite3

    data = tmp_path / "data"
    inbox = LocalInbox(data / "inbox", settle_seconds=0)
    write_csv(data / "inbox" / "poison.csv", 1_000, seed=12)
    c = Container(Settings(data_dir=data, snapshot_interval_seconds=3600, bulk_max_attempts=3))

    def broken(docs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(c.store, "write_documents", broken)  # fails on every tick
    failures = Counter()
    for _ in range(2):
        assert scan_once(inbox, c, failures=failures) == []
        assert (data / "inbox" / "poison.csv").exists()
    outcomes = scan_once(inbox, c, failures=failures)
    assert [(o.name, o.status) for o in outcomes] == [("poison.csv", "failed")]
    report = orjson.loads(outcomes[0].report.read_bytes())
    assert (report["status"], report["attempts"]) == ("failed", 3)
    assert report["error"] == "OperationalError: disk I/O error"
    assert (data / "inbox" / "failed" / "poison.csv").exists() and not (data / "inbox" / "poison.csv").exists()
    assert failures == Counter()  # a file put back into the inbox gets its attempts again
    c.close()
