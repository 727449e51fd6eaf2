"""Auth, scopes, customer tokens, rate limits, CORS and request ids, over real HTTP against `shopstream up`."""

from __future__ import annotations

import re
import socket
import sqlite3

import httpx
import orjson
import pyarrow.parquet as pq
import pytest

from shopstream.adapters.local.warehouse import DuckDBSnapshotReader
from tests.conftest import wait_for

pytestmark = pytest.mark.e2e

LINE = {"StockCode": "85123A", "Description": "X", "Quantity": 6, "InvoiceDate": "12/1/2010 8:26",
        "UnitPrice": 2.55, "Country": "United Kingdom"}
LINES = [
    LINE | {"InvoiceNo": 536365, "CustomerID": 17850, "event_id": "sec-1"},
    LINE | {"InvoiceNo": 536366, "CustomerID": 17850, "event_id": "sec-2"},
    LINE | {"InvoiceNo": 536400, "CustomerID": 12583, "event_id": "sec-3"},
    LINE | {"InvoiceNo": 536367, "CustomerID": None, "event_id": "sec-4"},  # a guest
]


CREATED: list[str] = []  # every key this module made: none may appear in a service's log



def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def loaded(stack):
    response = httpx.post(stack.ingest_url + "/transactions", content=orjson.dumps(LINES),
                          headers=stack.auth | {"X-Request-ID": "trace-e2e-1"})
    assert response.status_code == 202, response.text
    assert response.headers["x-request-id"] == "trace-e2e-1"
    assert wait_for(lambda: httpx.get(stack.invoice_url + "/invoices/536367", headers=stack.auth).status_code == 200)
    return stack


def create_key(stack, *args: str) -> str:
    result = stack.cli("keys", "create", *args)
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    CREATED.append(key)
    return key


@pytest.fixture(scope="module")
def keys(stack) -> dict[str, str]:
    """Every key the tests use, made at once; running services pick them up within seconds."""
    made = {
        "ingest": create_key(stack, "--scope", "ingest:write", "--name", "shop backend"),
        "reader": create_key(stack, "--scope", "invoices:read"),
        "monitor": create_key(stack, "--scope", "metrics:read"),
        "customer": create_key(stack, "--customer", "17850"),
        "limited": create_key(stack, "--scope", "invoices:read", "--rate", "0.2", "--burst", "2"),
        "revoked": create_key(stack, "--scope", "invoices:read"),
    }
    for base in stack.service_urls().values():
        # the last key made: once it works, the file version with all of them is loaded
        assert wait_for(lambda: httpx.get(base + "/openapi.json", headers=bearer(made["revoked"])).status_code != 401)
    return made


def every_endpoint(stack) -> list[tuple[str, str]]:
    """(method, url) of every route each service documents, plus the docs themselves."""
    out = []
    for base in stack.service_urls().values():
        schema = httpx.get(base + "/openapi.json", headers=stack.auth).json()
        for path, operations in schema["paths"].items():
            concrete = re.sub(r"\{[^}]+\}", "536365", path)
            out += [(method.upper(), base + concrete) for method in operations]
        out += [("GET", base + p) for p in ("/docs", "/redoc", "/openapi.json")]
    return out


def test_without_a_valid_key_every_endpoint_but_health_is_401(stack):
    endpoints = every_endpoint(stack)
    assert len(endpoints) >= 25
    assert ("POST", stack.ingest_url + "/transactions") in endpoints
    client = httpx.Client(timeout=10)
    for method, url in endpoints:
        for headers in ({}, bearer("ss_000000000000_not-the-secret"), {"X-API-Key": "garbage"},
                        {"Authorization": "Basic dXNlcjpwYXNz"}):
            response = client.request(method, url, headers=headers, content=b"{}")
            if url.endswith("/health"):
                assert response.status_code == 200, url
                continue
            assert response.status_code == 401, (method, url, headers, response.text)
            assert response.json()["error"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"


def test_the_dev_key_is_stored_hashed_only(stack):
    keys_file = (stack.data_dir / "api-keys.json").read_text()
    secret = stack.api_key.split("_", 2)[2]
    assert secret not in keys_file and stack.api_key.split("_")[1] in keys_file
    assert (stack.data_dir / "dev-api-key").stat().st_mode & 0o777 == 0o600


def test_scopes(loaded, keys):
    stack = loaded
    ingest_only, reader, monitor = keys["ingest"], keys["reader"], keys["monitor"]
    post = lambda key: httpx.post(stack.ingest_url + "/transactions", headers=bearer(key),  # noqa: E731
                                  content=orjson.dumps(LINES[0]))
    get = lambda key, url: httpx.get(url, headers=bearer(key))  # noqa: E731
    assert post(ingest_only).status_code == 202
    assert post(reader).status_code == 403
    assert post(reader).json() == {"error": "forbidden", "message": "this key lacks the 'ingest:write' scope"}
    assert get(reader, stack.invoice_url + "/invoices/536365").status_code == 200
    assert get(ingest_only, stack.invoice_url + "/invoices/536365").status_code == 403
    for base in (stack.ingest_url, stack.invoice_url, stack.ops_url("dynamo-writer")):
        assert get(monitor, base + "/metrics").status_code == 200
        assert get(monitor, base + "/ready").status_code == 200
        assert get(reader, base + "/metrics").status_code == 403
    listing = stack.cli("keys", "list").stdout
    assert "shop backend" in listing and "ingest:write" in listing


def test_a_customer_token_reads_only_its_own_customer(loaded, keys):
    stack = loaded
    token = keys["customer"]
    get = lambda path: httpx.get(stack.invoice_url + path, headers=bearer(token))  # noqa: E731
    assert get("/customers/17850").json()["customer_id"] == "17850"
    page = get("/customers/17850/invoices").json()
    assert {i["invoice_no"] for i in page["invoices"]} == {"536365", "536366"}
    assert get("/invoices/536365").json()["customer_id"] == "17850"
    # another customer's data, or a guest invoice: exactly what a missing one looks like
    for path, missing in (("/invoices/536400", "/invoices/999999"), ("/invoices/536367", "/invoices/999998"),
                          ("/customers/12583", "/customers/99999"),
                          ("/customers/12583/invoices", "/customers/99999/invoices")):
        theirs, nothing = get(path), get(missing)
        assert theirs.status_code == nothing.status_code == 404, path
        assert theirs.json()["error"] == "not_found"
        assert theirs.json()["message"].replace("536400", "X").replace("536367", "X").replace("12583", "X") == \
            nothing.json()["message"].replace("999999", "X").replace("999998", "X").replace("99999", "X")
    # and nothing else: no ingest, no metrics
    assert httpx.post(stack.ingest_url + "/transactions", headers=bearer(token), content=b"{}").status_code == 403
    assert httpx.get(stack.invoice_url + "/metrics", headers=bearer(token)).status_code == 403
    # the admin key still sees everything
    assert httpx.get(stack.invoice_url + "/invoices/536400", headers=stack.auth).status_code == 200


def test_rate_limit_per_key(stack, keys):
    key = keys["limited"]  # never used before: its bucket is full
    responses = [httpx.get(stack.invoice_url + "/customers/99999", headers=bearer(key)) for _ in range(3)]
    assert [r.status_code for r in responses] == [404, 404, 429]
    limited = responses[2]
    assert limited.json()["error"] == "too_many_requests"
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["x-ratelimit-limit"] == "2"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert responses[0].headers["x-ratelimit-remaining"] == "1"
    # another key is not affected
    assert httpx.get(stack.invoice_url + "/customers/99999", headers=stack.auth).status_code == 404


def test_a_revoked_key_stops_working(stack, keys):
    key = keys["revoked"]
    assert httpx.get(stack.invoice_url + "/customers/1", headers=bearer(key)).status_code == 404
    key_id = key.split("_")[1]
    assert stack.cli("keys", "revoke", key_id).returncode == 0
    assert wait_for(lambda: httpx.get(stack.invoice_url + "/customers/1", headers=bearer(key)).status_code == 401)


def test_cors_is_off_by_default(stack):
    preflight = httpx.options(stack.ingest_url + "/transactions", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers
    response = httpx.get(stack.invoice_url + "/customers/1", headers=stack.auth | {"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers


def raw_request(url: str, head: bytes) -> bytes:
    """Send raw bytes (what httpx refuses to send) and read the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def test_a_declared_body_over_the_limit_is_413_before_reading(stack):
    answer = raw_request(stack.invoice_url, (
        f"POST /customers/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {stack.api_key}\r\n"
        "Content-Length: 999999999\r\n\r\n").encode())
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert orjson.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "payload_too_large"


def test_unsafe_request_ids_are_replaced(stack):
    for unsafe in ("has space", "x" * 65, "a\tb", "crlf%0d%0aSet-Cookie:x"):
        response = httpx.get(stack.ingest_url + "/health", headers={"X-Request-ID": unsafe})
        assert re.fullmatch(r"[0-9a-f]{24}", response.headers["x-request-id"]), unsafe
        assert "set-cookie" not in response.headers


def test_the_request_id_follows_each_line_into_every_sink_and_log(loaded):
    stack = loaded
    data = stack.data_dir
    assert wait_for(lambda: "warehouse-loader: batch" in stack.log_path.read_text())
    lake = [pq.read_table(p, columns=["event_id", "source"]).to_pylist()
            for p in (data / "lake" / "raw").rglob("*.parquet")]
    lake_sources = {row["event_id"]: row["source"] for rows in lake for row in rows}
    store = dict(sqlite3.connect(data / "store.sqlite3").execute(  # each line: [event_id, ..., source]
        "SELECT line.value ->> 0, line.value ->> 9 FROM invoice_lines, json_each(lines) AS line"))
    reader = DuckDBSnapshotReader(data / "warehouse.duckdb")

    def warehouse_sources():
        conn = reader.connection()
        rows = dict(conn.execute("SELECT event_id, source FROM fact_sales_line").fetchall()) if conn else {}
        return rows if {"sec-1", "sec-2", "sec-3", "sec-4"} <= set(rows) else None

    in_warehouse = wait_for(warehouse_sources)
    for event_id in ("sec-1", "sec-2", "sec-3", "sec-4"):
        assert lake_sources[event_id] == store[event_id] == in_warehouse[event_id] == "http:trace-e2e-1"
    logs = [orjson.loads(line.split("| ", 1)[1]) for line in stack.log_path.read_text().splitlines()
            if "trace-e2e-1" in line]
    assert {"ingest-api", "s3-archiver", "dynamo-writer", "warehouse-loader"} <= {doc["service"] for doc in logs}


def test_keys_are_never_logged(loaded, keys):
    stack = loaded
    log = stack.log_path.read_text()
    secrets = [key.split("_", 2)[2] for key in (stack.api_key, *CREATED)]
    assert len(secrets) >= 5
    service_lines = [line for line in log.splitlines() if re.match(r"^[a-z0-9-]+\s+\| ", line)]
    assert len(service_lines) > 5
    for secret in secrets:
        assert not [line for line in service_lines if secret in line]
    # `up` prints the development key for its user: on its own, and in the dashboard's link
    assert log.count(stack.api_key) == 2
