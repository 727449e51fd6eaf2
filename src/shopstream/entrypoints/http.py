"""What every HTTP service shares: JSON errors, auth, rate limits, request ids, metrics, health.

`create_app(service, container=...)` gives a FastAPI app where every request passes the
front door (`frontdoor.FrontDoor`: request id, API key, rate limit, size limit, metrics),
with `/health` (open), `/ready` and `/metrics`. Each endpoint declares its scope with one
dependency, and a route without one refuses to start (docs/security.md):

    @app.get("/analytics/sales", dependencies=[require_scope("analytics:read")])
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from shopstream import metrics
from shopstream.auth.keys import Principal
from shopstream.observability import NotReady

log = logging.getLogger("shopstream.http")

PUBLIC_PATHS = frozenset({"/health"})
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
READY_TIMEOUT_SECONDS = 2.0


class FastJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ApiError(Exception):
    """An error with a status, a machine-readable code and a sentence for humans."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.extra = extra


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "message": message, **extra}


_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
          422: "unprocessable", 429: "too_many_requests", 503: "unavailable"}


def require_scope(scope: str, customer_scoped: bool = False) -> Any:
    """A dependency: the caller's key must hold `scope` (or `admin`); yields the Principal.

    Customer tokens are refused unless the endpoint says `customer_scoped=True`, which
    promises that it shows a token only its own customer's data (and 404 otherwise).
    """

    async def check(request: Request) -> Principal:  # async: no worker-thread hop per request
        return authorize(getattr(request.state, "principal", None), scope, customer_scoped)

    check.required_scope = scope  # what the route audit looks for
    return Depends(check)


def authorize(principal: Principal | None, scope: str, customer_scoped: bool = False) -> Principal:
    """The checks of `require_scope`, for code that runs outside FastAPI's routing."""
    if principal is None:
        raise ApiError(401, "unauthorized", "this endpoint needs an API key",
                       headers={"WWW-Authenticate": "Bearer"})
    if principal.customer_id is not None and not customer_scoped:
        metrics.AUTH_REJECTIONS.labels("forbidden").inc()
        raise ApiError(403, "forbidden", "a customer token can read only its own customer's "
                       "summary, history and invoices")
    if not principal.allows(scope):
        metrics.AUTH_REJECTIONS.labels("forbidden").inc()
        raise ApiError(403, "forbidden", f"this key lacks the {scope!r} scope")
    return principal


def declared_scope(route: APIRoute) -> str | None:
    for dependant in route.dependant.dependencies:
        scope = getattr(dependant.call, "required_scope", None)
        if scope:
            return scope
    return None


def undeclared_routes(app: FastAPI) -> list[str]:
    """API routes that declare no scope: a new endpoint must say who may call it."""
    public = getattr(app.state, "public_paths", PUBLIC_PATHS)
    return [
        f"{sorted(route.methods)} {route.path}"
        for route in app.routes
        if isinstance(route, APIRoute) and not is_public(route.path, public) and declared_scope(route) is None
    ]


def is_public(path: str, public: frozenset[str]) -> bool:
    """Exact paths, or prefixes written with a trailing slash ("/static/")."""
    return path in public or any(p.endswith("/") and p != "/" and path.startswith(p) for p in public)


Readiness = dict[str, Callable[[], Any]]


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    for close in reversed(app.state.closers):  # on shutdown, after in-flight requests finished
        close()


def create_app(
    service: str, container: Any = None, readiness: Readiness | None = None,
    public_paths: tuple[str, ...] = (), **kwargs: Any,
) -> FastAPI:
    """The shared HTTP layer. `readiness` names the dependencies /ready checks (each a call
    that raises when the dependency is unreachable); `public_paths` are served without a
    key (pages and static assets that hold no data, e.g. ("/", "/static/"))."""
    from shopstream.bootstrap import Container
    from shopstream.entrypoints.frontdoor import FrontDoor

    container = container or Container()
    settings = container.settings
    app = FastAPI(default_response_class=FastJSONResponse, lifespan=_lifespan, **kwargs)
    app.state.closers = []  # what must run at shutdown (flush, close), appended by the service
    metrics.SERVICE.labels(service).set(1)
    public = PUBLIC_PATHS | frozenset(public_paths) | (DOCS_PATHS if settings.public_docs else frozenset())
    app.state.public_paths = public
    app.add_middleware(
        FrontDoor, keyring=container.keyring if settings.auth_enabled else None, settings=settings,
        public_paths=public,
    )
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Content-Encoding",
                           "Idempotency-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID", "X-RateLimit-Limit", "X-RateLimit-Remaining",
                            "X-RateLimit-Reset", "Retry-After"],
        )
    if settings.auth_enabled and not len(container.keyring):
        log.warning("auth is on and no API key is configured: every request but /health gets 401 "
                    "(create one with `shopstream keys create`)")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> Response:
        return FastJSONResponse(
            error_body(error.code, error.message, **error.extra), error.status, headers=error.headers
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        code = _CODES.get(error.status_code, "error")
        message = str(error.detail)
        if error.status_code == 404 and message == "Not Found":
            message = f"nothing at {request.url.path[:200]}"
        return FastJSONResponse(error_body(code, message), error.status_code, headers=getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> Response:
        problems = [
            {"field": ".".join(str(p) for p in e.get("loc", ())[1:]) or "request", "reason": e.get("msg", "")}
            for e in error.errors()
        ]
        return FastJSONResponse(
            error_body("invalid_request", "the request's parameters are invalid", errors=problems), 422
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return FastJSONResponse(error_body("internal", "an unexpected error occurred"), 500)

    @app.get("/health", tags=["operations"], summary="Liveness (no key needed)")
    def health() -> dict[str, str]:
        return {"status": "ok", "service": service}

    checks = dict(readiness or {})

    @app.get("/ready", tags=["operations"], summary="Readiness: every dependency reachable",
             dependencies=[require_scope("metrics:read")])
    async def ready() -> Response:
        async def probe(check: Callable[[], Any]) -> str:
            try:
                await asyncio.wait_for(run_in_threadpool(check), READY_TIMEOUT_SECONDS)
                return "ok"
            except asyncio.TimeoutError:
                return f"no answer within {READY_TIMEOUT_SECONDS:.0f}s"
            except NotReady as reason:
                return str(reason)
            except Exception as error:
                return f"{type(error).__name__}: {str(error)[:200]}"

        results = dict(zip(checks, await asyncio.gather(*(probe(c) for c in checks.values()))))
        failing = sorted(name for name, result in results.items() if result != "ok")
        if failing:
            return FastJSONResponse(
                error_body("unavailable", f"not ready: {', '.join(failing)}",
                           service=service, checks=results),
                503, headers={"Retry-After": "1"},
            )
        return FastJSONResponse({"status": "ready", "service": service, "checks": results})

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics",
             dependencies=[require_scope("metrics:read")], response_class=Response)
    def prometheus_metrics() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    return app
