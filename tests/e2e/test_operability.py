"""/metrics, /health, /ready and JSON logs on every service, as an operator sees them."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest

pytestmark = pytest.mark.e2e

LINE = {"InvoiceNo": 536365, "StockCode": "85123A", "Description": "X", "Quantity": 6,
        "InvoiceDate": "12/1/2010 8:26", "UnitPrice": 2.55, "CustomerID": 17850.0, "Country": "United Kingdom"}


def scrape(stack, url: str) -> dict[str, float]:
    response = httpx.get(url + "/metrics", headers=stack.auth)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in response.text.splitlines() if line and not line.startswith("#")}


def test_metrics_count_requests_lines_batches_and_lag(stack):
    lines = [LINE | {"event_id": f"ops-{i}", "InvoiceNo": 537000 + i} for i in range(300)]
    lines += [LINE | {"Quantity": "many"}] * 7
    response = httpx.post(stack.ingest_url + "/transactions", content=orjson.dumps(lines), headers=stack.auth)
    assert response.status_code == 202
    ingest = scrape(stack, stack.ingest_url)
    assert ingest['shopstream_ingest_lines_total{outcome="accepted"}'] == 300
    assert ingest['shopstream_ingest_lines_total{outcome="rejected"}'] == 7
    assert ingest['shopstream_dead_letters_total{source="http"}'] == 7
    assert ingest['shopstream_http_requests_total{method="POST",route="/transactions",status="202"}'] == 1
    assert ingest['shopstream_ingest_request_lines_sum'] == 307
    assert ingest['shopstream_stream_append_seconds_count'] == 1
    assert ingest['shopstream_service_info{service="ingest-api"}'] == 1
    for group in stack.CONSUMERS:
        deadline = time.monotonic() + 30
        while (m := scrape(stack, stack.ops_url(group))).get(
                f'shopstream_consumer_events_total{{group="{group}",outcome="new"}}', 0) < 300:
            assert time.monotonic() < deadline, group
            time.sleep(0.2)
        assert m[f'shopstream_consumer_lag_events{{group="{group}"}}'] == 0
        assert m[f'shopstream_consumer_batch_events_sum{{group="{group}"}}'] == 300
        assert m[f'shopstream_sink_write_seconds_count{{group="{group}"}}'] >= 1


def test_health_is_open_and_ready_checks_dependencies(stack):
    for url in (stack.ingest_url, stack.invoice_url, *map(stack.ops_url, stack.CONSUMERS)):
        assert httpx.get(url + "/health").json()["status"] == "ok"
        ready = httpx.get(url + "/ready", headers=stack.auth)
        assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text
        assert set(ready.json()["checks"].values()) == {"ok"}


def test_logs_are_json_with_the_service_and_request_id(stack):
    httpx.post(stack.ingest_url + "/transactions", headers=stack.auth | {"X-Request-ID": "log-check-1"},
               content=orjson.dumps(LINE | {"event_id": "log-1"}))
    time.sleep(1)
    docs = [orjson.loads(line.split("| ", 1)[1]) for line in stack.log_path.read_text().splitlines()
            if "| {" in line]
    assert docs and all({"ts", "level", "service", "message"} <= set(d) for d in docs)
    assert any(d["service"] == "ingest-api" and d.get("request_id") == "log-check-1" for d in docs)
