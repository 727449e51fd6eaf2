"""boto3 clients from settings, and the batched DynamoDB calls every aws adapter shares.

Endpoints, region and credentials are the standard AWS ones (AWS_ENDPOINT_URL,
AWS_REGION / AWS_DEFAULT_REGION, the credentials chain), so the same code runs against
AWS, LocalStack or moto's server. Batch limits are enforced here, not left to the
service: BatchWriteItem <= 25 items (moto accepts 26), BatchGetItem <= 100 keys, and
unprocessed items are retried with capped exponential backoff and full jitter.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlparse

import boto3
from botocore.config import Config

from shopstream.iterutil import batched

T = TypeVar("T")

WRITE_BATCH = 25  # BatchWriteItem's limit on AWS
GET_BATCH = 100  # BatchGetItem's limit
MAX_ATTEMPTS = 12
PARALLEL_CALLS = 8  # chunks in flight per adapter call (boto3 clients are thread-safe)


class RetriesExhausted(RuntimeError):
    pass


def backoff(attempt: int, base: float = 0.05, cap: float = 5.0) -> float:
    """Full jitter: uniform(0, min(cap, base * 2**attempt))."""
    return random.uniform(0, min(cap, base * 2**attempt))


_CLIENTS: dict[tuple[str, str, str | None], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _client(service: str, region: str, endpoint_url: str | None):
    """One client per service and endpoint in a process: they are thread-safe and slow to make."""
    key = (service, region, endpoint_url)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = boto3.session.Session(region_name=region).client(
                service,
                endpoint_url=endpoint_url,
                # No client-side validation: botocore's walk of every item costs more than the
                # call itself on big batches, and the service validates anyway.
                config=Config(retries={"max_attempts": 10, "mode": "standard"}, max_pool_connections=32,
                              connect_timeout=5, read_timeout=60, parameter_validation=False),
            )
        return _CLIENTS[key]


@dataclass
class Aws:
    region: str
    endpoint_url: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pool: ThreadPoolExecutor | None = None

    @classmethod
    def from_settings(cls, settings) -> Aws:
        region = settings.aws_region or boto3.session.Session().region_name or "us-east-1"
        return cls(region=region, endpoint_url=settings.aws_endpoint_url or None)

    def client(self, service: str):
        return _client(service, self.region, self.endpoint_url)

    def map(self, fn: Callable[[T], Any], items: Iterable[T]) -> list[Any]:
        """Run independent calls concurrently (results in order; the first error is raised)."""
        items = list(items)
        if len(items) <= 1:
            return [fn(item) for item in items]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(PARALLEL_CALLS, thread_name_prefix="aws")
        return list(self._pool.map(fn, items))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix/"); the prefix may be empty."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"expected s3://bucket[/prefix], got {uri!r}")
    prefix = parsed.path.strip("/")
    return parsed.netloc, f"{prefix}/" if prefix else ""


# -- DynamoDB ---------------------------------------------------------------------------


def s(value: str) -> dict:
    return {"S": value}


def n(value: int) -> dict:
    return {"N": str(value)}


def batch_write(aws: Aws, table: str, requests: Sequence[dict]) -> None:
    """PutRequest/DeleteRequest items, 25 per call, chunks in parallel, unprocessed retried."""
    ddb = aws.client("dynamodb")

    def write(chunk: list[dict]) -> None:
        pending = {table: chunk}
        for attempt in range(MAX_ATTEMPTS):
            response = ddb.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
            time.sleep(backoff(attempt))
        raise RetriesExhausted(f"BatchWriteItem on {table}: items still unprocessed after {MAX_ATTEMPTS} tries")

    aws.map(write, batched(requests, WRITE_BATCH))


def batch_get(
    aws: Aws, table: str, keys: Sequence[dict], projection: str | None = None,
    names: dict[str, str] | None = None,
) -> list[dict]:
    """Items for the keys that exist (any order), 100 keys per call, strongly consistent."""
    ddb = aws.client("dynamodb")

    def get(chunk: list[dict]) -> list[dict]:
        request: dict[str, Any] = {"Keys": chunk, "ConsistentRead": True}
        if projection:
            request["ProjectionExpression"] = projection
        if names:
            request["ExpressionAttributeNames"] = names
        pending, found = {table: request}, []
        for attempt in range(MAX_ATTEMPTS):
            response = ddb.batch_get_item(RequestItems=pending)
            found += response.get("Responses", {}).get(table, [])
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                return found
            time.sleep(backoff(attempt))
        raise RetriesExhausted(f"BatchGetItem on {table}: keys still unprocessed after {MAX_ATTEMPTS} tries")

    return [item for items in aws.map(get, batched(keys, GET_BATCH)) for item in items]


def paginate(call: Callable[..., dict], **request: Any) -> Iterator[dict]:
    """Every item of a Query or Scan, page after page."""
    while True:
        response = call(**request)
        yield from response.get("Items", [])
        if "LastEvaluatedKey" not in response:
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def error_code(error: Exception) -> str:
    return getattr(error, "response", {}).get("Error", {}).get("Code", "")
