"""ingest-api: POST /transactions -> the stream (202 only once every line is durable)."""

from __future__ import annotations

import logging
import re
import time
import zlib
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from fastapi import Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from shopstream import metrics
from shopstream.auth.keys import Principal
from shopstream.bootstrap import Container
from shopstream.domain.intake import take_in
from shopstream.domain.line import FieldError
from shopstream.domain.parsing import LineParser
from shopstream.entrypoints.http import ApiError, FastJSONResponse, create_app, require_scope
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


def _ndjson_lines(body: bytes) -> tuple[list[Any], dict[int, FieldError]]:
    raws: list[Any] = []
    broken: dict[int, FieldError] = {}
    for text in body.split(b"\n"):
        if not text.strip():
            continue
        try:
            raws.append(orjson.loads(text))
        except orjson.JSONDecodeError as error:
            broken[len(raws)] = FieldError("line", f"not valid JSON: {error}")
            raws.append(text[:1000].decode("utf-8", "replace"))
    return raws, broken


def build_app(container: Container | None = None):
    container = container or Container()
    settings = container.settings
    parse = LineParser(settings.shop_timezone)
    zone = ZoneInfo(settings.shop_timezone)
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

    def accept(
        raws: list[Any], broken: dict[int, FieldError], key: str | None, request_id: str, key_id: str
    ) -> tuple[int, dict]:
        received_at = datetime.now(zone).replace(tzinfo=None)
        # the request id travels with every line as its source, into every sink
        source = f"http:{request_id}"
        intake = take_in(raws, parse, received_at, source, idempotency_key=key, pre_rejected=broken)
        try:
            # Dead letters first: if the append then fails, the 503 below is true
            # (nothing accepted), and a retry rewrites the same dead letters.
            container.dead_letters.write(intake.dead_letters)
            started = time.perf_counter()
            appended = container.stream.append(intake.events)
            metrics.STREAM_APPEND_SECONDS.observe(time.perf_counter() - started)
        except Exception as error:
            log.error("could not store a request's lines durably (%s: %s); answered 503",
                      type(error).__name__, error, extra={"request_id": request_id})
            raise ApiError(
                503, "unavailable", f"the lines could not be stored durably ({type(error).__name__}); "
                "nothing from this request was accepted, retry it", headers={"Retry-After": "1"},
            ) from error
        duplicates = len(intake.events) - appended.appended
        metrics.INGEST_REQUEST_LINES.observe(len(raws))
        metrics.INGEST_LINES.labels("accepted").inc(appended.appended)
        metrics.INGEST_LINES.labels("duplicate").inc(duplicates)
        metrics.INGEST_LINES.labels("rejected").inc(len(intake.dead_letters))
        metrics.DEAD_LETTERS.labels("http").inc(len(intake.dead_letters))
        log.info("accepted %d lines (%d duplicates, %d rejected)", appended.appended, duplicates,
                 len(intake.dead_letters), extra={"request_id": request_id, "fields": {
                     "key_id": key_id, "accepted": appended.appended, "duplicates": duplicates,
                     "rejected": len(intake.dead_letters)}})
        body = {
            "accepted": appended.appended,
            "duplicates": duplicates,
            "rejected": len(intake.dead_letters),
            "event_ids": intake.event_ids,
            "rejections": intake.rejection_report(),
        }
        if not intake.events:
            return 422, {"error": "all_lines_rejected",
                         "message": "no line was accepted; each rejection names the field and the reason",
                         **body}
        return 202, body

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
        limit = settings.max_body_bytes
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        is_ndjson = media_type in NDJSON_TYPES
        # curl -d labels JSON as a form; read it as JSON when it is JSON (checked below)
        is_form = media_type == "application/x-www-form-urlencoded"
        if not (is_ndjson or is_form or media_type in JSON_TYPES or media_type.endswith("+json")):
            raise ApiError(415, "unsupported_media_type",
                           f"cannot read {media_type!r}; send application/json or application/x-ndjson")
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip", "x-gzip", ""):
            raise ApiError(415, "unsupported_media_type",
                           f"cannot read Content-Encoding {encoding!r}; send gzip or nothing")
        key = request.headers.get("idempotency-key")
        if key is not None and not IDEMPOTENCY_KEY.match(key):
            raise ApiError(400, "bad_request", "Idempotency-Key must be 1-200 visible ASCII characters")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ApiError(413, "payload_too_large", f"the body is larger than {limit:,} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "payload_too_large", f"the body is larger than {limit:,} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        if encoding in ("gzip", "x-gzip"):
            body = _read_gzip(body, limit)
        if is_form and body.lstrip()[:1] not in (b"{", b"["):
            raise ApiError(415, "unsupported_media_type",
                           "cannot read form data; send application/json or application/x-ndjson")
        if is_ndjson:
            raws, broken = _ndjson_lines(body)
        else:
            raws, broken = _json_lines(body), {}
        if not raws:
            raise ApiError(400, "malformed_body", "the body holds no transaction lines")
        if len(raws) > settings.max_lines_per_request:
            raise ApiError(413, "payload_too_large",
                           f"{len(raws):,} lines; at most {settings.max_lines_per_request:,} per request")
        status, result = await run_in_threadpool(
            accept, raws, broken, key, request_id_var.get(), caller.key_id)
        return FastJSONResponse(result, status)

    return app
