"""ingest-api: POST /transactions -> the stream (202 only once every line is durable)."""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from fastapi import FastAPI, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from shopstream import metrics
from shopstream.appender import GroupCommit
from shopstream.auth.keys import Principal
from shopstream.bootstrap import Container
from shopstream.domain.intake import Intake, take_in
from shopstream.domain.line import FieldError
from shopstream.domain.parsing import LineParser
from shopstream.entrypoints.frontdoor import FrontDoor
from shopstream.entrypoints.http import (
    ApiError,
    FastJSONResponse,
    authorize,
    create_app,
    error_body,
    require_scope,
)
from shopstream.observability import request_id_var

log = logging.getLogger("shopstream.ingest")

JSON_TYPES = {"", "application/json", "text/plain", "text/json"}
NDJSON_TYPES = {"application/x-ndjson", "application/ndjson", "application/jsonl",
                "application/x-jsonlines", "application/jsonlines"}
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


class FieldProblem(BaseModel):
    field: str
    reason: str


class Rejection(BaseModel):
    index: int
    event_id: str
    errors: list[FieldProblem]


class IngestResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    event_ids: list[str]
    rejections: list[Rejection]


class ErrorBody(BaseModel):
    error: str
    message: str


_LINE_SCHEMA = {
    "type": "object",
    "description": "A transaction line; Kaggle (InvoiceNo ...) or snake_case (invoice_no ...) names.",
    "properties": {
        "InvoiceNo": {"type": ["string", "integer"], "example": "536365"},
        "StockCode": {"type": ["string", "integer"], "example": "85123A"},
        "Description": {"type": ["string", "null"], "example": "WHITE HANGING HEART T-LIGHT HOLDER"},
        "Quantity": {"type": ["integer", "string"], "example": 6},
        "InvoiceDate": {"type": ["string", "integer"], "example": "12/1/2010 8:26"},
        "UnitPrice": {"type": ["number", "string"], "example": 2.55},
        "CustomerID": {"type": ["number", "string", "null"], "example": 17850.0},
        "Country": {"type": "string", "example": "United Kingdom"},
        "event_id": {"type": "string", "description": "optional; makes retries idempotent"},
    },
}
_OPENAPI_BODY = {
    "requestBody": {
        "required": True,
        "description": "One line, a JSON array of lines, or NDJSON; optionally Content-Encoding: gzip.",
        "content": {
            "application/json": {
                "schema": {"oneOf": [_LINE_SCHEMA, {"type": "array", "items": _LINE_SCHEMA}]}
            },
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


def _read_gzip(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise ApiError(400, "malformed_body", f"the body is not valid gzip: {error}") from None
    if len(out) > limit:
        raise ApiError(413, "payload_too_large", f"the decompressed body is larger than {limit:,} bytes")
    if not inflater.eof:
        raise ApiError(400, "malformed_body", "the gzip body is truncated")
    return out


def _json_lines(body: bytes) -> list[Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, "malformed_body", f"the body is not valid JSON: {error}") from None
    if isinstance(doc, dict):
        return [doc]
    if isinstance(doc, list):
        return doc
    raise ApiError(400, "malformed_body", "expected a JSON object or an array of objects")


def _ndjson_lines(body: bytes) -> tuple[list[Any], dict[int, FieldError], list[str]]:
    """The lines parsed, the ones that are not JSON, and each line's text (what the lake
    keeps as received: no need to serialise the parsed line again)."""
    raws: list[Any] = []
    broken: dict[int, FieldError] = {}
    texts: list[str] = []
    try:
        lines: list[str] | list[bytes] = body.decode().split("\n")  # one decode for the whole body
    except UnicodeDecodeError:  # some line is not UTF-8 (so not JSON): line by line
        lines = body.split(b"\n")
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            raws.append(orjson.loads(line))
            texts.append(line if isinstance(line, str) else line.decode())  # orjson checked the UTF-8
        except orjson.JSONDecodeError as error:
            broken[len(raws)] = FieldError("line", f"not valid JSON: {error}")
            raws.append(line[:1000] if isinstance(line, str) else line[:1000].decode("utf-8", "replace"))
            texts.append(raws[-1])
    return raws, broken, texts


class Transactions:
    """POST /transactions, the hot path: read, parse, group-commit to the stream, answer."""

    def __init__(self, container: Container) -> None:
        self.settings = settings = container.settings
        self.parse = LineParser(settings.shop_timezone)
        self.zone = ZoneInfo(settings.shop_timezone)
        self.group = GroupCommit(container.stream, container.dead_letters)

    async def handle(self, headers: Mapping[str, str], chunks: AsyncIterator[bytes]) -> tuple[int, dict]:
        """Returns (status, body); raises ApiError for a request it cannot take."""
        limit = self.settings.max_body_bytes
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        is_ndjson = media_type in NDJSON_TYPES
        # curl -d labels JSON as a form; read it as JSON when it is JSON (checked below)
        is_form = media_type == "application/x-www-form-urlencoded"
        if not (is_ndjson or is_form or media_type in JSON_TYPES or media_type.endswith("+json")):
            raise ApiError(415, "unsupported_media_type",
                           f"cannot read {media_type!r}; send application/json or application/x-ndjson")
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip", "x-gzip", ""):
            raise ApiError(415, "unsupported_media_type",
                           f"cannot read Content-Encoding {encoding!r}; send gzip or nothing")
        key = headers.get("idempotency-key")
        if key is not None and not IDEMPOTENCY_KEY.match(key):
            raise ApiError(400, "bad_request", "Idempotency-Key must be 1-200 visible ASCII characters")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ApiError(413, "payload_too_large", f"the body is larger than {limit:,} bytes")
        parts, size = [], 0
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "payload_too_large", f"the body is larger than {limit:,} bytes")
            parts.append(chunk)
        body = b"".join(parts)
        if encoding in ("gzip", "x-gzip"):
            body = _read_gzip(body, limit)
        if is_form and body.lstrip()[:1] not in (b"{", b"["):
            raise ApiError(415, "unsupported_media_type",
                           "cannot read form data; send application/json or application/x-ndjson")
        if is_ndjson:
            raws, broken, texts = _ndjson_lines(body)
        else:
            raws, broken, texts = _json_lines(body), {}, None
        if not raws:
            raise ApiError(400, "malformed_body", "the body holds no transaction lines")
        if len(raws) > self.settings.max_lines_per_request:
            raise ApiError(413, "payload_too_large",
                           f"{len(raws):,} lines; at most {self.settings.max_lines_per_request:,} per request")
        return await self.accept(raws, broken, key, texts)

    def take(self, raws: list[Any], broken: dict[int, FieldError], key: str | None, source: str,
             texts: list[str] | None = None) -> Intake:
        received_at = datetime.now(self.zone).replace(tzinfo=None)
        return take_in(raws, self.parse, received_at, source, idempotency_key=key, pre_rejected=broken,
                       texts=texts)

    async def accept(self, raws: list[Any], broken: dict[int, FieldError], key: str | None,
                     texts: list[str] | None = None) -> tuple[int, dict]:
        request_id = request_id_var.get()
        source = f"http:{request_id}"  # the request id travels with every line into every sink
        # Small requests are parsed on the event loop: a thread hop costs more than they do.
        if len(raws) <= 32:
            intake = self.take(raws, broken, key, source, texts)
        else:
            intake = await run_in_threadpool(self.take, raws, broken, key, source, texts)
        try:
            appended = await self.group.append(intake)
        except Exception as error:
            log.error("could not store a request's lines durably (%s: %s); answered 503",
                      type(error).__name__, error, extra={"request_id": request_id})
            raise ApiError(
                503, "unavailable", f"the lines could not be stored durably ({type(error).__name__}); "
                "nothing from this request was accepted, retry it", headers={"Retry-After": "1"},
            ) from error
        rejected = len(intake.dead_letters)
        metrics.INGEST_REQUEST_LINES.observe(len(raws))
        metrics.INGEST_LINES.labels("accepted").inc(appended.appended)
        metrics.INGEST_LINES.labels("duplicate").inc(appended.duplicates)
        metrics.INGEST_LINES.labels("rejected").inc(rejected)
        metrics.DEAD_LETTERS.labels("http").inc(rejected)
        if log.isEnabledFor(logging.INFO):
            log.info("accepted %d lines (%d duplicates, %d rejected)", appended.appended, appended.duplicates,
                     rejected, extra={"request_id": request_id, "fields": {
                         "accepted": appended.appended, "duplicates": appended.duplicates, "rejected": rejected}})
        body = {
            "accepted": appended.appended,
            "duplicates": appended.duplicates,
            "rejected": len(intake.dead_letters),
            "event_ids": intake.event_ids,
            "rejections": intake.rejection_report(),
        }
        if not intake.accepted_ids:
            return 422, {"error": "all_lines_rejected",
                         "message": "no line was accepted; each rejection names the field and the reason",
                         **body}
        return 202, body


class FastPath:
    """Serves POST /transactions straight from ASGI, everything else through FastAPI.

    FastAPI's routing, dependency and middleware layers cost more per request than a
    one-line ingest itself (measured: a bare FastAPI endpoint reaches ~40% of a bare
    Starlette one), and one line per POST is how the seed client sends. The FastAPI
    route of the same path stays for the OpenAPI document and behaves the same.
    """

    def __init__(self, app: FastAPI, transactions: Transactions, container: Container) -> None:
        self.app = app
        self.transactions = transactions
        self.route = next(r for r in app.routes if getattr(r, "path", None) == "/transactions")
        settings = container.settings
        # the same key, rate-limit and request-id checks every other route gets
        self.front_door = FrontDoor(
            self._serve, keyring=container.keyring if settings.auth_enabled else None, settings=settings,
            public_paths=app.state.public_paths,
        )

    def __getattr__(self, name: str) -> Any:  # app.state, app.openapi(), ... as on the FastAPI app
        return getattr(self.app, name)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/transactions" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        scope["route"] = self.route  # metrics label requests by route template
        await self.front_door(scope, receive, send)

    async def _serve(self, scope: dict, receive: Any, send: Any) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ConnectionAbortedError("client went away")
                yield message.get("body", b"")
                if not message.get("more_body", False):
                    return

        extra: dict[str, str] = {}
        try:
            authorize(scope.get("state", {}).get("principal"), "ingest:write")
            status, body = await self.transactions.handle(headers, chunks())
        except ApiError as error:
            status, body, extra = error.status, error_body(error.code, error.message, **error.extra), error.headers
        except ConnectionAbortedError:
            return
        except Exception:
            log.exception("unexpected error on POST /transactions")
            status, body = 500, error_body("internal", "an unexpected error occurred")
        payload = orjson.dumps(body)
        response_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        response_headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})


def build_app(container: Container | None = None) -> FastPath:
    container = container or Container()
    app = create_app(
        "ingest-api",
        container,
        readiness={  # the cheapest reads each port offers
            "stream": lambda: container.stream.status(["ingest-api"]),
            "dead_letters": lambda: container.dead_letters.count(),
        },
        title="shopstream ingest API",
        description="Accepts transaction lines; every accepted line reaches the raw lake, "
        "the operational store and the warehouse exactly once.",
    )
    app.state.container = container
    transactions = Transactions(container)
    app.state.closers.append(container.close)

    @app.post(
        "/transactions",
        status_code=202,
        tags=["ingest"],
        summary="Send transaction lines",
        openapi_extra=_OPENAPI_BODY,
        responses={
            202: {"model": IngestResult, "description": "Every accepted line is durably in the stream"},
            400: {"model": ErrorBody, "description": "Malformed body"},
            413: {"model": ErrorBody, "description": "Body or line count over the limit"},
            415: {"model": ErrorBody, "description": "Unsupported media type or encoding"},
            401: {"model": ErrorBody, "description": "No valid API key"},
            403: {"model": ErrorBody, "description": "The key lacks the ingest:write scope"},
            422: {"model": IngestResult, "description": "Every line was rejected"},
            429: {"model": ErrorBody, "description": "Rate limit exceeded; see Retry-After"},
            503: {"model": ErrorBody, "description": "The stream is unavailable; retry"},
        },
    )
    async def post_transactions(
        request: Request, caller: Principal = require_scope("ingest:write")
    ) -> FastJSONResponse:
        status, result = await transactions.handle(request.headers, request.stream())
        return FastJSONResponse(result, status)

    return FastPath(app, transactions, container)
