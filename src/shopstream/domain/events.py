"""Event ids, partitioning, and the dead-letter document."""

from __future__ import annotations

import hashlib
import os
import zlib
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

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


def file_event_ids(content_hash: str, rows: pa.Array) -> pa.Array:
    """file_event_id of each row number in `rows`, a column at a time."""
    prefix = file_event_id(content_hash, 0)[:-1]  # "f<hash16>-"
    return pc.binary_join_element_wise(pa.scalar(prefix), rows.cast(pa.string()), "")


def partition_of(invoice_no: str, partitions: int) -> int:
    """Lines of one invoice always land in one partition, so they stay ordered."""
    return zlib.crc32(invoice_no.encode()) % partitions


def by_partition(table: pa.Table, partitions: int) -> list[tuple[int, pa.Table]]:
    """The table's rows grouped by the partition of their invoice, each group in table
    order: (partition, rows) per partition that has any, partitions ascending. A column at
    a time: one crc32 per distinct invoice, one stable sort, then zero-copy slices."""
    if table.num_rows == 0:
        return []
    invoices = pc.dictionary_encode(table["invoice_no"].combine_chunks())
    of_invoice = pa.array([partition_of(no, partitions) for no in invoices.dictionary.to_pylist()], pa.int32())
    partition = of_invoice.take(invoices.indices)
    order = pc.sort_indices(partition)  # stable: an invoice's lines keep their order
    counts = pc.value_counts(partition)
    sizes = sorted(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()))
    if len(sizes) > 1:
        table = table.take(order)
    parts, start = [], 0
    for number, size in sizes:
        parts.append((number, table.slice(start, size)))
        start += size
    return parts


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
