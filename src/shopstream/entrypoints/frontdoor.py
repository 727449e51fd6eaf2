"""The front door every HTTP request passes, once, before any endpoint (pure ASGI).

In order: a request id (the client's safe `X-Request-ID`, else a new one; echoed back
and put in every log line), the API key (`Authorization: Bearer <key>` or `X-API-Key`;
constant-time check; 401 without a valid one except on public paths), the key's rate
limit (429 with Retry-After; X-RateLimit-* on every answer), the declared body size
(413), then the endpoint; and metrics per request (by route template, never by raw
path, so hostile paths cannot blow up the metric cardinality). Keys are never logged:
only key ids are.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from shopstream import metrics
from shopstream.auth.keyring import KeyRing
from shopstream.auth.keys import ANONYMOUS_ADMIN, Principal
from shopstream.auth.ratelimit import RateLimiter
from shopstream.entrypoints.http import is_public
from shopstream.observability import accept_request_id, request_id_var

log = logging.getLogger("shopstream.http")

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_JSON = (b"content-type", b"application/json")


class FrontDoor:
    def __init__(
        self, app: Any, keyring: KeyRing | None, settings: Any, public_paths: frozenset[str]
    ) -> None:
        self.app = app
        self.keyring = keyring  # None: auth is off (SHOPSTREAM_AUTH_ENABLED=false)
        self.public_paths = public_paths
        self.max_body = settings.max_body_bytes
        rate = settings.rate_limit_per_second
        self.limiter = RateLimiter(rate, settings.rate_limit_burst) if rate > 0 else None
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}  # (method, route, status) -> children

    def _count(self, method: str, template: str, status: int, seconds: float) -> None:
        """A request in the metrics; the labelled children cached (a `labels()` call per
        request was a measurable share of a one-line POST)."""
        key = (method, template, status)
        series = self._series.get(key)
        if series is None:
            series = (metrics.HTTP_REQUESTS.labels(method, template, str(status)),
                      metrics.HTTP_LATENCY.labels(method, template))
            if len(self._series) < 1000:  # route templates x statuses: bounded, but be sure
                self._series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authorization = api_key = request_id = length = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"x-api-key":
                api_key = value
            elif name == b"x-request-id":
                request_id = value
            elif name == b"content-length":
                length = value
        rid = accept_request_id(request_id.decode("latin-1") if request_id else None)
        token = request_id_var.set(rid)
        extra_headers = [(b"x-request-id", rid.encode())]
        status = [500]

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra_headers]
            await send(message)

        started = time.perf_counter()
        metrics.HTTP_IN_FLIGHT.inc()
        try:
            if not is_public(scope["path"], self.public_paths):
                principal = self._authenticate(authorization, api_key)
                if principal is None:
                    reason = "missing" if authorization is None and api_key is None else "invalid"
                    metrics.AUTH_REJECTIONS.labels(reason).inc()
                    message = (
                        "this endpoint needs an API key: "
                        "send Authorization: Bearer <key> (or X-API-Key: <key>)"
                        if reason == "missing" else "the API key is not valid (unknown, revoked or mistyped)"
                    )
                    await _reject(send_with_headers, 401, "unauthorized", message,
                                  [(b"www-authenticate", b"Bearer")])
                    return
                scope.setdefault("state", {})["principal"] = principal
                if self.limiter is not None and principal is not ANONYMOUS_ADMIN:
                    decision = self.limiter.check(
                        principal.key_id, principal.rate_per_second, principal.burst)
                    extra_headers.extend(decision.headers())
                    if not decision.allowed:
                        metrics.RATE_LIMITED.labels(principal.key_id).inc()
                        await _reject(send_with_headers, 429, "too_many_requests",
                                      f"rate limit of this key exceeded; retry in {decision.retry_after}s")
                        return
                if length is not None and length.isdigit() and int(length) > self.max_body:
                    await _reject(send_with_headers, 413, "payload_too_large",
                                  f"the body is larger than {self.max_body:,} bytes")
                    return
            await self.app(scope, receive, send_with_headers)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "-")
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self._count(method, template, status[0], time.perf_counter() - started)
            metrics.HTTP_IN_FLIGHT.dec()
            request_id_var.reset(token)

    def _authenticate(self, authorization: bytes | None, api_key: bytes | None) -> Principal | None:
        if self.keyring is None:
            return ANONYMOUS_ADMIN
        presented = None
        if authorization is not None:
            scheme, _, credentials = authorization.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                presented = credentials.strip()
        elif api_key is not None:
            presented = api_key.decode("latin-1").strip()
        return self.keyring.authenticate(presented) if presented else None


async def _reject(send: Any, status: int, code: str, message: str,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = orjson.dumps({"error": code, "message": message})
    await send({"type": "http.response.start", "status": status,
                "headers": [_JSON, (b"content-length", str(len(body)).encode()), *(headers or ())]})
    await send({"type": "http.response.body", "body": body})
