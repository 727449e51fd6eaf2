"""What every HTTP service shares: JSON errors, /health, fast JSON responses."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("shopstream.http")


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


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    for close in reversed(app.state.closers):  # on shutdown, after in-flight requests finished
        close()


def create_app(service: str, **kwargs: Any) -> FastAPI:
    """A FastAPI app with the shared error bodies and /health.

    Append to `app.state.closers` what must run at shutdown (flush, close)."""
    app = FastAPI(default_response_class=FastJSONResponse, lifespan=_lifespan, **kwargs)
    app.state.closers = []

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

    @app.get("/health", tags=["operations"], summary="Liveness")
    def health() -> dict[str, str]:
        return {"status": "ok", "service": service}

    return app
