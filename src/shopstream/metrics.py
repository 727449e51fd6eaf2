"""Prometheus metrics, defined once per process (prometheus-client's default registry).

Counted per request or per batch, never per line: a batch of 5,000 lines costs one
`inc(5000)`, so the ingest hot path pays nothing per line. A service run as several
worker processes (SHOPSTREAM_INGEST_WORKERS) sets PROMETHEUS_MULTIPROC_DIR: each worker
then writes its samples there and /metrics, whichever worker answers, sums them all.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

disable_created_metrics()  # no *_created series: half the exposition, nothing anyone graphs

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
SIZE_BUCKETS = (1, 10, 100, 500, 1000, 5000, 10_000, 20_000, 50_000, 100_000)

# an info metric as a gauge (exposed the same: shopstream_service_info{service=...} 1), since
# multiprocess mode has no Info
SERVICE = Gauge("shopstream_service_info", "Which shopstream service this process runs", ["service"],
                multiprocess_mode="max")

# HTTP (every API, and the consumers' small operations server)
HTTP_REQUESTS = Counter(
    "shopstream_http_requests", "HTTP requests by route template and status", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "shopstream_http_request_seconds", "HTTP request latency", ["method", "route"], buckets=LATENCY_BUCKETS
)
HTTP_IN_FLIGHT = Gauge("shopstream_http_requests_in_flight", "HTTP requests being served",
                       multiprocess_mode="livesum")
AUTH_REJECTIONS = Counter("shopstream_auth_rejections", "Requests refused by auth", ["reason"])
RATE_LIMITED = Counter("shopstream_rate_limited", "Requests refused with 429 (per key id)", ["key_id"])

# ingest
INGEST_LINES = Counter("shopstream_ingest_lines", "Lines received by outcome", ["outcome"])
INGEST_REQUEST_LINES = Histogram("shopstream_ingest_request_lines", "Lines per request", buckets=SIZE_BUCKETS)
STREAM_APPEND_SECONDS = Histogram(
    "shopstream_stream_append_seconds", "Durable append of one request's events", buckets=LATENCY_BUCKETS
)
DEAD_LETTERS = Counter("shopstream_dead_letters", "Rejected lines stored as dead letters", ["source"])

# consumers
CONSUMER_EVENTS = Counter(
    "shopstream_consumer_events", "Events written to the sink (new, or already there)", ["group", "outcome"]
)
CONSUMER_BATCH_EVENTS = Histogram(
    "shopstream_consumer_batch_events", "Events per consumer batch", ["group"], buckets=SIZE_BUCKETS
)
SINK_WRITE_SECONDS = Histogram(
    "shopstream_sink_write_seconds", "Sink write latency per batch", ["group"], buckets=LATENCY_BUCKETS
)
SINK_WRITE_FAILURES = Counter(
    "shopstream_sink_write_failures", "Failed sink writes (the batch is retried)", ["group", "error"]
)
CONSUMER_LAG = Gauge("shopstream_consumer_lag_events", "Events not yet committed by the group", ["group"])


def exposition() -> tuple[bytes, str]:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:  # every worker's samples, summed
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
