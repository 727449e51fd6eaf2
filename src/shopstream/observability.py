"""Structured logs and request ids: what every process (API or consumer) shares.

Logs are one JSON object per line (`SHOPSTREAM_LOG_FORMAT=json`, the default) with the
service, the level, the message, the current request id and any `extra={"fields": {...}}`.
The request id comes from the client's `X-Request-ID` when it is safe to echo (visible
ASCII from a small alphabet, at most 64 characters), else a fresh one; it travels with
each accepted line as its `source` (`http:<request id>`), so it is in the raw lake, the
operational store and the warehouse, and every consumer logs the ids of each batch.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

import orjson

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


class NotReady(Exception):
    """Raised by a readiness check (/ready); its message is the reason shown."""


def new_request_id() -> str:
    return os.urandom(12).hex()


def accept_request_id(header: str | None) -> str:
    """The client's id if it is safe to log and echo, else a fresh one."""
    if header and REQUEST_ID_PATTERN.match(header):
        return header
    return new_request_id()


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            doc["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if fields:
            doc.update(fields)
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def configure_logging(service: str, fmt: str = "json", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)

