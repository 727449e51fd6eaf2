from __future__ import annotations

import csv
import gzip
import hashlib
import subprocess
import sys

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.e2e


def run(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "shopstream", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_generate_is_deterministic_and_has_the_quirks(tmp_path):
    a, b, c = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz", tmp_path / "c.csv"
    for path, seed in ((a, "7"), (b, "7"), (c, "8")):
        result = run("generate", "--rows", "20000", "--seed", seed, "--out", str(path))
        assert result.returncode == 0, result.stderr
    assert hashlib.sha256(gzip.decompress(a.read_bytes())).digest() == hashlib.sha256(
        gzip.decompress(b.read_bytes())).digest()
    with gzip.open(a, "rt") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 20000
    assert list(rows[0]) == ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
                             "CustomerID", "Country"]
    assert any(r["InvoiceNo"].startswith("C") and int(r["Quantity"]) < 0 for r in rows)
    assert any(r["CustomerID"] == "" for r in rows)
    assert any(r["StockCode"] in ("POST", "M", "DOT", "C2", "BANK CHARGES") for r in rows)
    assert len({tuple(r.values()) for r in rows}) < len(rows)  # exact duplicates exist
    assert len({r["Country"] for r in rows}) > 5
    assert c.read_text().splitlines()[1:] != gzip.decompress(a.read_bytes()).decode().splitlines()[1:]


def test_demo_runs_and_prints_working_urls(tmp_path):
    import os

    env = dict(os.environ, SHOPSTREAM_DATA_DIR=str(tmp_path / "data"), SHOPSTREAM_INGEST_PORT=str(free_port()),
               SHOPSTREAM_INVOICE_PORT=str(free_port()), SHOPSTREAM_ANALYTICS_PORT=str(free_port()),
               TMPDIR=str(tmp_path), COLUMNS="200")
    result = run("demo", "--rows", "5000", "--then-exit", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5,000 accepted" in result.stdout
    assert f"http://127.0.0.1:{env['SHOPSTREAM_INVOICE_PORT']}/invoices/536365" in result.stdout
    assert f"dashboard    http://127.0.0.1:{env['SHOPSTREAM_ANALYTICS_PORT']}/#key=ss_" in result.stdout
    assert "✓" in result.stdout and "✗" not in result.stdout


def test_up_refuses_a_port_in_use_with_a_clear_error(tmp_path):
    import os
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = dict(os.environ, SHOPSTREAM_DATA_DIR=str(tmp_path / "data"), SHOPSTREAM_INGEST_PORT=str(free_port()),
                   SHOPSTREAM_INVOICE_PORT=str(port), SHOPSTREAM_ANALYTICS_PORT=str(free_port()), COLUMNS="200")
        result = run("up", env=env, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"port {port} on 127.0.0.1 (invoice-api) is already in use" in result.stderr
    assert "--invoice-port or SHOPSTREAM_INVOICE_PORT" in result.stderr
    assert "ingest-api" not in result.stdout  # nothing was started


def test_verify_fails_loudly_when_a_sink_is_short(tmp_path):
    import os

    from shopstream.adapters.local.log import LocalLog
    from tests.contract.conftest import make_table

    data = tmp_path / "data"
    env = dict(os.environ, SHOPSTREAM_DATA_DIR=str(data), COLUMNS="200")
    assert run("init", env=env).returncode == 0
    log = LocalLog(data / "stream.sqlite3")
    log.append(make_table())  # accepted, but no consumer is running
    log.close()
    result = run("verify", "--wait", "1", env=env)
    assert result.returncode == 1
    assert "✗ differs" in result.stdout
    assert "consumers are 8 events behind" in result.stdout
