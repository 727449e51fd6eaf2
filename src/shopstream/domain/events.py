"""Event ids, partitioning, and the dead-letter document."""

from __future__ import annotations

import hashlib
import os
import zlib
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from shopstream.domain.columnar import raw_text
from shopstream.domain.line import DeadLetter, FieldError


def random_event_id() -> str:
    """For clients that send neither an event id nor an Idempotency-Key (128 random bits)."""
    return os.urandom(16).hex()


def idempotency_event_id(key: str, index: int) -> str:
    """A retried request with the same Idempotency-Key yields the same ids."""
    return f"idem-{hashlib.sha256(key.encode()).hexdigest()[:24]}-{index}"


def file_event_id(content_hash: str, row: int) -> str:
    """Row `row` (1-based, header excluded) of the file whose content hash is given."""
    return f"f{content_hash[:16]}-{row}"


def partition_of(invoice_no: str, partitions: int) -> int:
    """Lines of one invoice always land in one partition, so they stay ordered."""
    return zlib.crc32(invoice_no.encode()) % partitions


def partition_positions(invoice_nos: Iterable[str], partitions: int) -> dict[int, list[int]]:
    """Positions of the lines that go to each partition, in order."""
    groups: dict[int, list[int]] = defaultdict(list)
    known: dict[str, int] = {}
    for position, invoice_no in enumerate(invoice_nos):
        partition = known.get(invoice_no)
        if partition is None:
            partition = known[invoice_no] = partition_of(invoice_no, partitions)
        groups[partition].append(position)
    return groups


def dead_letter_document(letter: DeadLetter) -> dict[str, Any]:
    return {
        "event_id": letter.event_id,
        "received_at": letter.received_at.isoformat(),
        "source": letter.source,
        "index": letter.index,
        "errors": [e.as_dict() for e in letter.errors],
        "raw": raw_text(letter.raw),
    }


def dead_letter_from_document(doc: dict[str, Any]) -> DeadLetter:
    return DeadLetter(
        event_id=doc["event_id"],
        received_at=datetime.fromisoformat(doc["received_at"]),
        source=doc["source"],
        index=doc["index"],
        errors=tuple(FieldError(e["field"], e["reason"]) for e in doc["errors"]),
        raw=doc["raw"],
    )
