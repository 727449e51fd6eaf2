"""The HTTP contract of ingest-api and invoice-api, over real HTTP against `shopstream up`."""

from __future__ import annotations

import gzip

import httpx
import orjson
import psutil
import pytest

from tests.conftest import wait_for

pytestmark = pytest.mark.e2e

LINE = {"InvoiceNo": 536365, "StockCode": "85123A", "Description": "X", "Quantity": 6,
        "InvoiceDate": "12/1/2010 8:26", "UnitPrice": 2.55, "CustomerID": 17850.0, "Country": "United Kingdom"}


def post(stack, body: bytes, **headers) -> httpx.Response:
    return httpx.post(f"{stack.ingest_url}/transactions", content=body, headers=stack.auth | headers, timeout=30)



def test_a_pandas_row_with_no_content_type_is_accepted(stack):
    # requests.post(url, data=row.to_json()) sends no Content-Type at all
    response = post(stack, orjson.dumps(LINE | {"event_id": "api-1"}))
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": 0, "event_ids": ["api-1"],
                               "rejections": []}
    invoice = wait_for(lambda: httpx.get(f"{stack.invoice_url}/invoices/536365", headers=stack.auth).json().get("lines"))
    assert [line["event_id"] for line in invoice] == ["api-1"]


def test_a_wrong_quantity_is_422_naming_the_field(stack):
    response = post(stack, orjson.dumps(LINE | {"Quantity": "six"}), **{"Content-Type": "application/json"})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "all_lines_rejected"
    assert body["rejections"][0]["errors"] == [{"field": "Quantity", "reason": "must be an integer, got 'six'"}]


def test_ndjson_gzip_with_one_bad_line(stack):
    lines = [orjson.dumps(LINE | {"event_id": f"nd-{i}", "InvoiceNo": 536370 + i}) for i in range(3)]
    lines.insert(1, b'{"InvoiceNo": 1,')  # broken JSON on line index 1
    response = post(stack, gzip.compress(b"\n".join(lines) + b"\n"),
                    **{"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"})
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (3, 1)
    assert body["rejections"][0]["index"] == 1
    assert body["rejections"][0]["errors"][0]["field"] == "line"
    assert body["rejections"][0]["errors"][0]["reason"].startswith("not valid JSON")


def test_an_ndjson_line_reaches_the_lake_exactly_as_sent(stack):
    import pyarrow.parquet as pq

    text = '{"InvoiceNo": "536371",  "StockCode":"85123A", "Description":"Caf\u00e9 \\"X\\"", "Quantity":"6",' \
           ' "InvoiceDate":"12/1/2010 8:26", "UnitPrice":"2.55", "CustomerID":null, "Country":"France",' \
           ' "event_id":"nd-verbatim"}'
    response = post(stack, b"\r\n" + text.encode() + b"\r\n", **{"Content-Type": "application/x-ndjson"})
    assert response.json()["accepted"] == 1

    def raw_in_lake():
        for path in (stack.data_dir / "lake" / "raw").rglob("*.parquet"):
            rows = pq.read_table(path, columns=["event_id", "raw"]).to_pylist()
            found = [row["raw"] for row in rows if row["event_id"] == "nd-verbatim"]
            if found:
                return found
        return None

    assert wait_for(raw_in_lake) == [text]


def test_an_array_with_valid_and_invalid_lines(stack):
    body = [LINE | {"event_id": "arr-0", "InvoiceNo": 536380}, LINE | {"InvoiceDate": "soon"}, 42]
    response = post(stack, orjson.dumps(body), **{"Content-Type": "application/json"})
    assert response.status_code == 202
    result = response.json()
    assert (result["accepted"], result["rejected"]) == (1, 2)
    assert [r["index"] for r in result["rejections"]] == [1, 2]
    assert result["rejections"][1]["errors"] == [{"field": "line", "reason": "must be a JSON object, got int"}]


def test_idempotency_key_makes_a_retry_harmless(stack):
    body = orjson.dumps([LINE | {"InvoiceNo": 536390}, LINE | {"InvoiceNo": 536391}])
    first = post(stack, body, **{"Idempotency-Key": "order-batch-77"}).json()
    second = post(stack, body, **{"Idempotency-Key": "order-batch-77"}).json()
    assert (first["accepted"], second["accepted"], second["duplicates"]) == (2, 0, 2)
    assert first["event_ids"] == second["event_ids"]


@pytest.mark.parametrize(
    "body, headers, status, error",
    [
        (b'{"InvoiceNo": ', {}, 400, "malformed_body"),
        (b"[]", {}, 400, "malformed_body"),
        (b'"a string"', {}, 400, "malformed_body"),
        (b"\xff\xfe{}", {}, 400, "malformed_body"),
        (b"not gzip", {"Content-Encoding": "gzip"}, 400, "malformed_body"),
        (b"<xml/>", {"Content-Type": "application/xml"}, 415, "unsupported_media_type"),
        (b"{}", {"Content-Encoding": "br"}, 415, "unsupported_media_type"),
        (b"a=1&b=2", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
        (b"[" + b"1," * 9_000_000 + b"1]", {}, 413, "payload_too_large"),
        (gzip.compress(b" " * 20_000_000), {"Content-Encoding": "gzip"}, 413, "payload_too_large"),
        (b"{}", {"Idempotency-Key": "has space"}, 400, "bad_request"),
    ],
)
def test_bad_requests_get_a_clear_4xx(stack, body, headers, status, error):
    response = post(stack, body, **headers)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.json()["message"]


def test_rejected_lines_are_dead_lettered(stack):
    post(stack, orjson.dumps(LINE | {"Quantity": "dead-letter-me", "event_id": "dl-1"}))
    result = stack.cli("status")
    assert result.returncode == 0, result.stderr
    assert "dead letters" in result.stdout


@pytest.mark.parametrize(
    "path, message",
    [
        ("/invoices/999999", "no invoice '999999'"),
        ("/invoices/..%2F..%2Fetc%2Fpasswd", "no invoice '../../etc/passwd' (invoice numbers look like 536365, or C536365 for a cancellation)"),
        ("/customers/99999", "no customer '99999'"),
        ("/customers/99999/invoices", "no customer '99999'"),
        ("/customers/a%27%20OR%201%3D1/invoices", "no customer \"a' OR 1=1\""),
    ],
)
def test_unknown_things_are_404_with_a_clear_body(stack, path, message):
    response = httpx.get(stack.invoice_url + path, headers=stack.auth)
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "message": message}


def test_a_bad_cursor_is_400(stack):
    post(stack, orjson.dumps(LINE | {"event_id": "cursor-1", "InvoiceNo": 536399}))
    wait_for(lambda: httpx.get(f"{stack.invoice_url}/customers/17850", headers=stack.auth).status_code == 200)
    response = httpx.get(f"{stack.invoice_url}/customers/17850/invoices", params={"cursor": "bogus"},
                         headers=stack.auth)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"


def test_health_and_docs(stack):
    for url in (stack.ingest_url, stack.invoice_url):
        assert httpx.get(url + "/health").json()["status"] == "ok"
        assert httpx.get(url + "/docs", headers=stack.auth).status_code == 200
        assert "paths" in httpx.get(url + "/openapi.json", headers=stack.auth).json()


def test_a_killed_service_is_restarted_and_catches_up(stack):
    up = psutil.Process(stack.process.pid)
    writer = next(p for p in up.children() if "dynamo-writer" in " ".join(p.cmdline()))
    writer.kill()
    post(stack, orjson.dumps(LINE | {"event_id": "after-kill", "InvoiceNo": 536500}))
    invoice = wait_for(lambda: httpx.get(f"{stack.invoice_url}/invoices/536500", headers=stack.auth).status_code == 200,
                       timeout=30)
    assert invoice
    replacement = next(p for p in up.children() if "dynamo-writer" in " ".join(p.cmdline()))
    assert replacement.pid != writer.pid
