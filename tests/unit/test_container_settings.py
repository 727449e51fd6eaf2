"""Settings the containers rely on: the compose dev key, the warehouse password from a secret, health checks."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from fastapi.testclient import TestClient

from shopstream.auth.keyring import KeyRing
from shopstream.auth.keys import KeyFormatError
from shopstream.bootstrap import Container
from shopstream.config import Settings
from shopstream.entrypoints.healthcheck import healthy

DEV_KEY = "ss_compose_a-development-key"


def test_services_accept_the_key_in_shopstream_api_key_as_admin(tmp_path):
    ring = KeyRing(file=tmp_path / "keys.json", accepted_key=DEV_KEY)
    principal = ring.authenticate(DEV_KEY)
    assert principal is not None and principal.allows("ingest:write") and principal.allows("invoices:read")
    assert ring.authenticate(DEV_KEY + "x") is None
    assert KeyRing(file=tmp_path / "keys.json").authenticate(DEV_KEY) is None


def test_a_malformed_shopstream_api_key_is_refused_at_start(tmp_path):
    with pytest.raises(KeyFormatError, match="SHOPSTREAM_API_KEY"):
        KeyRing(file=tmp_path / "keys.json", accepted_key="not-a-key")


def test_an_invoice_api_answers_the_dev_key_from_the_environment(tmp_path, monkeypatch):
    from shopstream.entrypoints.invoice_api import build_app

    monkeypatch.setenv("SHOPSTREAM_API_KEY", DEV_KEY)
    container = Container(Settings(data_dir=tmp_path))
    try:
        client = TestClient(build_app(container))
        assert client.get("/invoices/536365", headers={"X-API-Key": DEV_KEY}).status_code == 404
        assert client.get("/invoices/536365", headers={"Authorization": f"Bearer {DEV_KEY}"}).status_code == 404
        assert client.get("/invoices/536365").status_code == 401
    finally:
        container.close()


def test_the_warehouse_password_from_a_secret_replaces_the_urls(monkeypatch):
    monkeypatch.setenv("SHOPSTREAM_WAREHOUSE_URL", "redshift+redshift_connector://admin@wh.example:5439/shop")
    monkeypatch.setenv("SHOPSTREAM_WAREHOUSE_PASSWORD", "p@ss/word:1")
    from sqlalchemy.engine import make_url

    url = make_url(Settings().warehouse_dsn)
    assert (url.username, url.password, url.host, url.port, url.database) == ("admin", "p@ss/word:1", "wh.example",
                                                                             5439, "shop")
    monkeypatch.delenv("SHOPSTREAM_WAREHOUSE_PASSWORD")
    assert Settings().warehouse_dsn == "redshift+redshift_connector://admin@wh.example:5439/shop"


def test_the_bulk_loader_is_healthy_while_it_runs_and_exits_0_on_sigterm(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert not healthy("bulk-loader", settings)
    env = dict(os.environ, SHOPSTREAM_DATA_DIR=str(tmp_path), SHOPSTREAM_BULK_SCHEDULE="0 0 1 1 *")
    process = subprocess.Popen([sys.executable, "-m", "shopstream", "service", "bulk-loader"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not healthy("bulk-loader", settings):
            assert time.monotonic() < deadline and process.poll() is None, "no heartbeat"
            time.sleep(0.2)
        process.terminate()
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_a_consumer_is_healthy_only_while_its_ops_server_answers(tmp_path):
    import http.server

    handler = type("Health", (http.server.BaseHTTPRequestHandler,), {
        "do_GET": lambda self: (self.send_response(200 if self.path == "/health" else 404), self.end_headers()),
        "log_message": lambda *_: None})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    settings = Settings(data_dir=tmp_path, dynamo_writer_port=server.server_address[1])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    assert healthy("dynamo-writer", settings)
    server.shutdown()
    server.server_close()
    assert not healthy("dynamo-writer", settings)


def test_the_bulk_loader_once_loads_the_inbox_and_exits_0(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "two-lines.csv").write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850.0,United Kingdom\n"
        "536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850.0,United Kingdom\n")
    env = dict(os.environ, SHOPSTREAM_DATA_DIR=str(tmp_path), SHOPSTREAM_BULK_ONCE="true",
               SHOPSTREAM_BULK_SETTLE_SECONDS="0")
    result = subprocess.run([sys.executable, "-m", "shopstream", "service", "bulk-loader"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (inbox / "processed" / "two-lines.csv").is_file() and not (inbox / "two-lines.csv").exists()
