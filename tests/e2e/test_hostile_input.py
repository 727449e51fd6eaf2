"""Hostile input, case by case (issue 5): always a 4xx with a clear JSON error or a dead
letter with its reason; never a 5xx, never a partial write, never a hung worker."""

from __future__ import annotations

import gzip
import socket
import sqlite3
import time

import httpx
import orjson
import pytest

from tests.e2e.test_security import raw_request

pytestmark = pytest.mark.e2e

LINE = {"InvoiceNo": 536365, "StockCode": "85123A", "Description": "X", "Quantity": 6,
        "InvoiceDate": "12/1/2010 8:26", "UnitPrice": 2.55, "CustomerID": 17850.0, "Country": "United Kingdom"}
JSON = {"Content-Type": "application/json"}
NDJSON = {"Content-Type": "application/x-ndjson"}


def line(**fields) -> bytes:
    return orjson.dumps(LINE | fields)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# (case, body, headers, status, error code or the rejection reason's start)
REQUESTS = [
    # wrong types
    ("quantity is a list", line(Quantity=[1, 2]), JSON, 422, "must be an integer"),
    ("price is an object", line(UnitPrice={"$gt": 0}), JSON, 422, "must be a number"),
    ("invoice is a boolean", line(InvoiceNo=True), JSON, 422, "must be an invoice number"),
    ("country is a number", line(Country=1.5), JSON, 422, "must be text"),
    ("the body is a boolean", b"true", JSON, 400, "malformed_body"),
    ("an array of numbers", b"[1, 2, 3]", JSON, 422, "must be a JSON object"),
    # huge numbers
    ("quantity 1e308", line(Quantity=1e308), JSON, 422, "out of range"),
    ("quantity beyond 64 bits", line().replace(b'"Quantity":6', b'"Quantity":' + b"9" * 40),
     JSON, 422, "out of range"),
    ("price 1e999999 as text", line(UnitPrice="1e999999"), JSON, 422, "out of range"),
    ("date 1e20", line(InvoiceDate=1e20), JSON, 422, "unparseable date"),
    ("customer id 1e40", line(CustomerID=1e40), JSON, 422, "must be letters, digits"),
    ("number literal 1e400", line().replace(b"2.55", b"1e400"), JSON, 400, "malformed_body"),
    # NaN and Infinity
    ("NaN literal", line().replace(b"2.55", b"NaN"), JSON, 400, "malformed_body"),
    ("-Infinity literal", line().replace(b"2.55", b"-Infinity"), JSON, 400, "malformed_body"),
    ("price 'NaN'", line(UnitPrice="NaN"), JSON, 422, "must be a finite number"),
    ("price 'Infinity'", line(UnitPrice="Infinity"), JSON, 422, "must be a finite number"),
    ("quantity 'NaN'", line(Quantity="NaN"), JSON, 422, "must be an integer"),
    # deeply nested JSON
    ("10,000 nested arrays", nested(10_000), JSON, 400, "malformed_body"),
    ("a nested field value", line().replace(b'"Quantity":6', b'"Quantity":' + nested(500)), JSON, 422,
     "must be an integer"),
    ("a nested NDJSON line", nested(5000) + b"\n", NDJSON, 422, "not valid JSON"),
    # 10 MB+ bodies
    ("a 12 MB description", line(Description="x" * 12_000_000), JSON, 422, "longer than 200 characters"),
    ("17 MB declared", b"[" + b"1," * 8_500_000 + b"1]", JSON, 413, "payload_too_large"),
    ("20 MB of zeros, gzipped", gzip.compress(b"0" * 20_000_000), JSON | {"Content-Encoding": "gzip"}, 413,
     "payload_too_large"),
    ("100,001 lines", orjson.dumps([LINE] * 100_001), JSON, 413, "payload_too_large"),
    # invalid UTF-8
    ("invalid UTF-8 in JSON", line(Description="PLACEHOLDER").replace(b"PLACEHOLDER", b"\xff\xfe\xc3"), JSON, 400,
     "malformed_body"),
    ("invalid UTF-8 in an NDJSON line", b'{"InvoiceNo": "\xff"}\n', NDJSON, 422, "not valid JSON"),
    ("a UTF-16 body", orjson.dumps(LINE).decode().encode("utf-16"), JSON, 400, "malformed_body"),
    # invalid gzip
    ("not gzip", b"definitely not gzip", JSON | {"Content-Encoding": "gzip"}, 400, "malformed_body"),
    ("truncated gzip", gzip.compress(line())[:-12], JSON | {"Content-Encoding": "gzip"}, 400, "malformed_body"),
    ("a gzip of invalid JSON", gzip.compress(b"{nope"), JSON | {"Content-Encoding": "gzip"}, 400, "malformed_body"),
    # header injection and odd headers
    ("an Idempotency-Key with a tab", line(), JSON | {"Idempotency-Key": "a\tb"}, 400, "bad_request"),
    ("an Idempotency-Key of 201 chars", line(), JSON | {"Idempotency-Key": "k" * 201}, 400, "bad_request"),
    ("an unknown encoding", line(), JSON | {"Content-Encoding": "br, gzip"}, 415, "unsupported_media_type"),
    ("XML", b"<?xml version='1.0'?><a/>", {"Content-Type": "application/xml"}, 415, "unsupported_media_type"),
    # SQL metacharacters in values that are rejected
    ("SQL in the invoice number", line(InvoiceNo="536365' OR '1'='1"), JSON, 422, "unknown invoice number shape"),
    ("SQL in the customer id", line(CustomerID="1; DROP TABLE lines"), JSON, 422, "must be letters, digits"),
    ("SQL in the event id", line(event_id="x'); DELETE FROM ledger; --"), JSON, 422, "must be 1-128 letters"),
]


def ledger(stack) -> int:
    with sqlite3.connect(stack.data_dir / "stream.sqlite3") as conn:
        return conn.execute("SELECT count(*) FROM ledger").fetchone()[0]


@pytest.mark.parametrize("case, body, headers, status, expected", REQUESTS, ids=[r[0] for r in REQUESTS])
def test_hostile_bodies_get_a_clear_4xx_and_no_partial_write(stack, case, body, headers, status, expected):
    before = ledger(stack)
    response = httpx.post(stack.ingest_url + "/transactions", content=body, headers=stack.auth | headers, timeout=60)
    assert response.status_code == status, response.text[:500]
    result = response.json()
    assert result["message"]
    if status == 422:
        assert result["error"] == "all_lines_rejected"
        reasons = [e["reason"] for r in result["rejections"] for e in r["errors"]]
        assert reasons and all(reason.startswith(expected) or expected in reason for reason in reasons), reasons
    else:
        assert result["error"] == expected
    assert ledger(stack) == before  # nothing accepted from a refused request


def test_rejected_lines_are_dead_letters_with_their_reasons(stack):
    dead = sqlite3.connect(stack.data_dir / "dead-letters.sqlite3")
    body = b"\n".join([line(event_id="ok-1"), b'{"InvoiceNo": "\xff\xfe"}', nested(3000),
                       line(event_id="bad-nan", UnitPrice="NaN")])
    response = httpx.post(stack.ingest_url + "/transactions", content=body, headers=stack.auth | NDJSON)
    assert response.status_code == 202
    result = response.json()
    assert (result["accepted"], result["rejected"]) == (1, 3)
    stored = {event_id: orjson.loads(doc) for event_id, doc in dead.execute(
        "SELECT event_id, document FROM dead_letters")}
    assert stored["bad-nan"]["errors"] == [{"field": "UnitPrice", "reason": "must be a finite number, got 'NaN'"}]
    ids = result["event_ids"]
    assert stored[ids[1]]["errors"][0]["reason"].startswith("not valid JSON")
    assert stored[ids[2]]["errors"][0]["reason"].startswith("not valid JSON")


SQL = "'); DROP TABLE lines; --"


def test_sql_metacharacters_are_data(stack):
    body = line(event_id="sql-1", InvoiceNo=536999, Description=SQL, StockCode='" OR 1=1', Country="Robert'); --")
    assert httpx.post(stack.ingest_url + "/transactions", content=body, headers=stack.auth).status_code == 202
    deadline = time.monotonic() + 20
    while (response := httpx.get(stack.invoice_url + "/invoices/536999", headers=stack.auth)).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    invoice = response.json()
    assert invoice["lines"][0]["description"] == SQL and invoice["lines"][0]["stock_code"] == '" OR 1=1'
    assert invoice["country"] == "Robert'); --"
    for path in ("/customers/1' OR '1'='1", "/customers/17850%27%20OR%20%271%27%3D%271/invoices",
                 "/invoices/536365' OR 1=1--", "/invoices/536365;DROP TABLE lines"):
        response = httpx.get(stack.invoice_url + path, headers=stack.auth)
        assert response.status_code == 404 and response.json()["error"] == "not_found", path
    response = httpx.get(stack.invoice_url + "/customers/17850/invoices", headers=stack.auth,
                         params={"cursor": "' UNION SELECT * FROM lines --"})
    assert response.status_code == 400 and response.json()["error"] == "bad_request"


@pytest.mark.parametrize("path", [
    "/invoices/../../etc/passwd", "/invoices/..%2F..%2Fetc%2Fpasswd", "/invoices/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/invoices/536365%00.json", "/invoices/..\\..\\windows\\win.ini", "/customers/..%2f..%2f/invoices",
    "/invoices/%ff%fe", "/customers/" + "9" * 5000,
])
def test_path_traversal_in_invoice_numbers_is_404(stack, path):
    answer = raw_request(stack.invoice_url, (
        f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {stack.api_key}\r\n\r\n").encode())
    status = int(answer.split(b" ", 2)[1])
    body = orjson.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert status == 404 and body["error"] == "not_found", answer[:300]


@pytest.mark.parametrize("head", [
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Request-ID: a\r\n b\r\n\r\n",  # obsolete line folding
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Evil\r\n\r\n",  # a header without a colon
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: \x00\r\n\r\n",  # a NUL byte in a header
])
def test_header_injection_is_refused_by_the_http_parser(stack, head):
    answer = raw_request(stack.ingest_url, head)
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500, answer[:300]
    assert b"set-cookie" not in answer.lower()


def test_no_worker_hangs_on_a_client_that_stalls(stack):
    host, port = stack.ingest_url.removeprefix("http://").split(":")
    stalled = []
    for _ in range(20):  # clients that promise a body and never send it
        sock = socket.create_connection((host, int(port)))
        sock.sendall(f"POST /transactions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {stack.api_key}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"InvoiceNo\":".encode())
        stalled.append(sock)
    try:
        started = time.monotonic()
        response = httpx.post(stack.ingest_url + "/transactions", content=line(event_id="not-stuck"),
                              headers=stack.auth, timeout=10)
        assert response.status_code == 202
        assert time.monotonic() - started < 5  # served while 20 stalled requests wait
    finally:
        for sock in stalled:
            sock.close()
    assert httpx.get(stack.ingest_url + "/health", timeout=5).status_code == 200
